"""One Logger, Metrics and Tracer for the whole process, created on first use.

Powertools reads its POWERTOOLS_* environment when these objects are built, so they
are built lazily (no env reads at import). Tracer's X-Ray SDK import is the costly
part of a cold start; Powertools loads it lazily and disables it off Lambda.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics, Tracer


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
