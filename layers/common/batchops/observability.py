"""One Logger, Metrics and Tracer for the whole process, created on first use.

Powertools reads its POWERTOOLS_* environment when these objects are built, so they
are built lazily (no env reads at import). Tracer's X-Ray SDK import is the costly
part of a cold start; Powertools loads it lazily and disables it off Lambda.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from batchops.models.operations import BatchResponse


@lru_cache(maxsize=1)
def logger() -> Logger:
    return Logger()


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    # Read-only routes publish no business metric; Powertools would warn on every such call.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    return Metrics()


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    return Tracer()


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
