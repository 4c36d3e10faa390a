"""One Logger, Metrics and Tracer for the whole process, created on first use.

Powertools reads its POWERTOOLS_* environment when these objects are built, so they
are built lazily (no env reads at import).

Powertools' Tracer imports the X-Ray SDK (and botocore's patching) when it is constructed, even
with POWERTOOLS_TRACE_DISABLED=true: about 230 ms of CPU on every cold start (measured:
`Tracer()` in a fresh interpreter, 232 ms). So a Tracer is built only when the stack traces
(template parameter Tracing=Active sets POWERTOOLS_TRACE_DISABLED=false); otherwise `tracer()`
is a stand-in whose decorators and subsegments do nothing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from batchops.models.operations import BatchResponse

Handler = TypeVar("Handler", bound=Callable[..., Any])
_TRUE = {"1", "true", "yes", "on"}


@lru_cache(maxsize=1)
def logger() -> Logger:
    return Logger()


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    # Read-only routes publish no business metric; Powertools would warn on every such call.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    return Metrics()


class Subsegment(Protocol):
    def put_annotation(self, key: str, value: Any) -> None: ...


class Provider(Protocol):
    def in_subsegment(self, name: str) -> AbstractContextManager[Subsegment]: ...


class FunctionTracer(Protocol):
    """What batchops uses of Powertools' Tracer."""

    @property
    def provider(self) -> Provider: ...

    def capture_lambda_handler(
        self, lambda_handler: None = None, capture_response: bool | None = None
    ) -> Callable[[Handler], Handler]: ...


class _NoSubsegment:
    def put_annotation(self, key: str, value: Any) -> None:
        return None


class _NoProvider:
    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[Subsegment]:
        yield _NoSubsegment()


class _Untraced:
    """Powertools' Tracer as batchops uses it, doing nothing: tracing is off."""

    provider: Provider = _NoProvider()

    def capture_lambda_handler(
        self, lambda_handler: None = None, capture_response: bool | None = None
    ) -> Callable[[Handler], Handler]:
        return lambda handler: handler


def tracing_enabled() -> bool:
    """The stack traces when POWERTOOLS_TRACE_DISABLED is false (Tracing=Active) and this is Lambda;
    Powertools' own rule also turns a Tracer off anywhere else."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE
    return not disabled and "AWS_LAMBDA_FUNCTION_NAME" in os.environ


@lru_cache(maxsize=1)
def tracer() -> FunctionTracer:
    if not tracing_enabled():
        return _Untraced()
    from aws_lambda_powertools import Tracer

    return cast(FunctionTracer, Tracer())


def record_batch(mode: str, result: BatchResponse, duration_ms: float) -> None:
    """EMF metrics of one operations batch, per mode (Sync, Transaction, Async). Executed counts
    operations that were attempted: not those skipped, nor those the deadline never reached."""
    summary = result.summary
    not_run = sum(
        1 for r in result.results if r.status == 504 and isinstance(r.body, dict) and r.body.get("code") == "TIMEOUT"
    )
    emitter = metrics()
    emitter.add_metric(
        name=f"{mode}OperationsExecuted", unit=MetricUnit.Count, value=summary.total - summary.skipped - not_run
    )
    emitter.add_metric(name=f"{mode}OperationsFailed", unit=MetricUnit.Count, value=summary.failed)
    emitter.add_metric(name=f"{mode}OperationsSkipped", unit=MetricUnit.Count, value=summary.skipped)
    emitter.add_metric(name=f"{mode}BatchDuration", unit=MetricUnit.Milliseconds, value=duration_ms)
