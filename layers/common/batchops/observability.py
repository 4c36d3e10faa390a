"""One Logger, Metrics and Tracer for the whole process, created on first use.

Powertools reads its POWERTOOLS_* environment when these objects are built, so they
are built lazily (no env reads at import). Tracer's X-Ray SDK import is the costly
part of a cold start; Powertools loads it lazily and disables it off Lambda.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit


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


def record_batch(mode: str, total: int, failed: int, skipped: int, duration_ms: float) -> None:
    """EMF metrics of one operations batch, per mode (Sync, Transaction, Async)."""
    emitter = metrics()
    emitter.add_metric(name=f"{mode}OperationsExecuted", unit=MetricUnit.Count, value=total)
    emitter.add_metric(name=f"{mode}OperationsFailed", unit=MetricUnit.Count, value=failed)
    emitter.add_metric(name=f"{mode}OperationsSkipped", unit=MetricUnit.Count, value=skipped)
    emitter.add_metric(name=f"{mode}BatchDuration", unit=MetricUnit.Milliseconds, value=duration_ms)
