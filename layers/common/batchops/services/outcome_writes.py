"""Writing what an attempt did, after the attempt: retried in place a few times.

A worker that has called an endpoint must record the outcome. If that write gives up, the outcome
is lost: the redelivery finds the work leased and drops it, and after the lease the endpoint is
called again (or, on the last attempt, the work fails INTERRUPTED after a call that may have
succeeded). So a refused write (a throttle, an outage that outlasted botocore's retries, a
transaction cancelled by a conflict on a busy batch item) is tried again here, as the same
conditional write, which makes a repeat harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from batchops.observability import logger

T = TypeVar("T")

# The pause before each retry: 1.5 s in all, inside the time workers keep back for recording
# (run worker: 5 s of its Lambda timeout; Batches job worker: its safety margin).
OUTCOME_WRITE_PAUSES = (0.1, 0.2, 0.4, 0.8)


def write_outcome(write: Callable[[], T], *, what: str, pauses: tuple[float, ...] = OUTCOME_WRITE_PAUSES) -> T:
    """`write()`, tried again after each pause when it raises; the last try's error propagates."""
    for pause in pauses:
        try:
            return write()
        except Exception:  # noqa: BLE001 - any refusal: the same conditional write again, later
            logger().warning(f"Could not record {what}; retrying", exc_info=True)
            time.sleep(pause)
    return write()
