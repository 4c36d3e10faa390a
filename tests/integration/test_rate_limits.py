"""Per-workspace token buckets (issue 5 groundwork) in the real table on moto: the plan table,
bursts, refill, Retry-After, headers, isolation between workspaces and budgets."""

from __future__ import annotations

import pytest

from batchops.errors import RateLimitedError
from batchops.models.common import Plan
from batchops.models.plans import PLAN_LIMITS
from batchops.services.rate_limits import spend_events, spend_request

pytestmark = pytest.mark.usefixtures("aws")
T0 = 1_800_000_000 * 1_000_000  # a fixed "now", in microseconds
SECOND = 1_000_000


def test_the_plan_table_matches_the_contract():
    table = {
        p: (lim.requests_per_second, lim.request_burst, lim.tracked_events_per_second) for p, lim in PLAN_LIMITS.items()
    }
    assert table == {
        Plan.FREE: (5, 10, 100),
        Plan.PRO: (50, 100, 2_000),
        Plan.TEAM: (200, 400, 10_000),
        Plan.ENTERPRISE: (1_000, 2_000, 50_000),
    }


def test_a_burst_then_429_with_retry_after_then_refill():
    budgets = [spend_request("ws-a", Plan.FREE, now_us=T0) for _ in range(10)]  # burst 10 at one instant
    assert [b.remaining for b in budgets] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert budgets[0].headers()["RateLimit-Limit"] == "5" and budgets[-1].reset_seconds >= 1
    with pytest.raises(RateLimitedError) as refused:
        spend_request("ws-a", Plan.FREE, now_us=T0)
    assert refused.value.retry_after_seconds == 1  # one token every 200 ms: never 0
    assert refused.value.message == "Rate limit exceeded. Please retry later."
    # 5 per second: a second later, five more.
    later = [spend_request("ws-a", Plan.FREE, now_us=T0 + SECOND) for _ in range(5)]
    assert later[-1].remaining == 0
    with pytest.raises(RateLimitedError):
        spend_request("ws-a", Plan.FREE, now_us=T0 + SECOND)


def test_an_idle_bucket_is_full_again():
    for _ in range(10):
        spend_request("ws-a", Plan.FREE, now_us=T0)
    assert spend_request("ws-a", Plan.FREE, now_us=T0 + 60 * SECOND).remaining == 9


def test_workspaces_and_budgets_do_not_share_buckets():
    for _ in range(10):
        spend_request("ws-a", Plan.FREE, now_us=T0)
    assert spend_request("ws-b", Plan.FREE, now_us=T0).remaining == 9
    assert spend_events("ws-a", Plan.FREE, 50, now_us=T0).remaining == 50


def test_events_are_spent_by_count_with_a_one_second_bucket():
    assert spend_events("ws-a", Plan.FREE, 100, now_us=T0).remaining == 0
    with pytest.raises(RateLimitedError) as refused:
        spend_events("ws-a", Plan.FREE, 60, now_us=T0 + SECOND // 2)  # 50 refilled, 60 asked
    assert refused.value.retry_after_seconds == 1
    assert spend_events("ws-a", Plan.FREE, 50, now_us=T0 + SECOND // 2).remaining == 0


def test_a_take_larger_than_the_bucket_needs_a_full_one_and_leaves_a_debt():
    # 5,000 events on 100/s: allowed from a full bucket, then nothing for 50 s.
    assert spend_events("ws-a", Plan.FREE, 5_000, now_us=T0).remaining == 0
    with pytest.raises(RateLimitedError) as refused:
        spend_events("ws-a", Plan.FREE, 1, now_us=T0 + 10 * SECOND)
    assert refused.value.retry_after_seconds == 40  # 39.01 s until room for one event, rounded up
    assert refused.value.headers == {"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "40"}
    with pytest.raises(RateLimitedError) as again:
        spend_events("ws-a", Plan.FREE, 5_000, now_us=T0 + 30 * SECOND)
    assert again.value.retry_after_seconds == 20  # another oversized take waits for a full bucket
    assert spend_events("ws-a", Plan.FREE, 5_000, now_us=T0 + 50 * SECOND).remaining == 0


def test_a_refusal_names_the_budget_and_its_headers():
    for _ in range(10):
        spend_request("ws-a", Plan.FREE, now_us=T0)
    with pytest.raises(RateLimitedError) as refused:
        spend_request("ws-a", Plan.FREE, now_us=T0)
    assert refused.value.headers == {"RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}
    assert refused.value.details == [{"field": "requests", "error": "over the plan's 5 requests per second"}]


def test_enterprise_event_rate_keeps_its_precision():
    assert spend_events("ws-a", Plan.ENTERPRISE, 50_000, now_us=T0).remaining == 0
    assert spend_events("ws-a", Plan.ENTERPRISE, 500, now_us=T0 + SECOND // 100).remaining == 0
