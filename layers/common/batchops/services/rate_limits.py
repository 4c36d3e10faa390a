"""Per-workspace rate limits (issue 5 groundwork): a request budget per plan with a burst, and an
events-per-second budget for tracking, each a token bucket in DynamoDB. Gives the
RateLimit-Limit / -Remaining / -Reset values, and Retry-After when refused (whole seconds,
never zero)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from batchops.dal.rate_limits import take
from batchops.errors import RateLimitedError
from batchops.models.common import Plan
from batchops.models.plans import limits_of
from batchops.settings import get_settings

LIMITED = "Rate limit exceeded. Please retry later."


def clock_us() -> int:
    """Now, in microseconds (tests replace it to hold time still)."""
    return int(time.time() * 1_000_000)


@dataclass(frozen=True)
class Budget:
    limit: int  # per second
    remaining: int
    reset_seconds: int  # until a token is available again

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


def _spend(workspace_id: str, bucket: str, *, per_second: int, burst: int, cost: int, now_us: int | None) -> Budget:
    interval_us = max(1, 1_000_000 // per_second)
    now = clock_us() if now_us is None else now_us
    result = take(
        get_settings().table_name, workspace_id, bucket, cost=cost, interval_us=interval_us, burst=burst, now_us=now
    )
    ahead = max(0, result.tat_us - now)  # how far the bucket is from full, in microseconds
    remaining = max(0, (burst * interval_us - ahead) // interval_us)
    if not result.allowed:
        # Room for `cost` tokens comes once the bucket has drained that far; a take larger than
        # the bucket waits for a full one (see dal.rate_limits).
        wait_us = ahead - max(0, burst - cost) * interval_us
        retry_after = max(1, math.ceil(wait_us / 1_000_000))
        refused = Budget(per_second, 0, retry_after)
        raise RateLimitedError(
            LIMITED,
            retry_after_seconds=retry_after,
            headers=refused.headers(),
            details=[{"field": bucket, "error": f"over the plan's {per_second:,} {bucket} per second"}],
        )
    reset = 0 if remaining > 0 else max(1, math.ceil((ahead - (burst - 1) * interval_us) / 1_000_000))
    return Budget(per_second, remaining, reset)


def spend_request(workspace_id: str, plan: Plan, now_us: int | None = None) -> Budget:
    limits = limits_of(plan)
    return _spend(
        workspace_id,
        "requests",
        per_second=limits.requests_per_second,
        burst=limits.request_burst,
        cost=1,
        now_us=now_us,
    )


def spend_events(workspace_id: str, plan: Plan, events: int, now_us: int | None = None) -> Budget:
    """Tracked events: the bucket holds one second of the plan's budget."""
    per_second = limits_of(plan).tracked_events_per_second
    return _spend(workspace_id, "events", per_second=per_second, burst=per_second, cost=events, now_us=now_us)


DAY_US = 86_400 * 1_000_000


def allow_per_day(workspace_id: str, bucket: str, *, per_day: int, now_us: int | None = None) -> bool:
    """Spend one of `per_day` for the workspace (a bucket refilled evenly over a day, full at
    `per_day`); False when none is left. For actions a client sets off but never waits on."""
    now = clock_us() if now_us is None else now_us
    result = take(
        get_settings().table_name,
        workspace_id,
        bucket,
        cost=1,
        interval_us=DAY_US // per_day,
        burst=per_day,
        now_us=now,
    )
    return result.allowed
