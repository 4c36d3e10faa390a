"""What each plan may do: the one table of per-plan limits (request rates of issue 5, and the
Batches surface's quotas from seed 002's table)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from batchops.models.base import Model
from batchops.models.common import Plan


class PlanLimits(Model):
    model_config = ConfigDict(frozen=True)

    requests_per_second: int = Field(gt=0, description="Sustained API requests per second")
    request_burst: int = Field(gt=0, description="Requests allowed at once after a quiet spell")
    tracked_events_per_second: int = Field(gt=0, description="Tracked events per second (bulk-track counts each)")
    concurrent_batches: int = Field(gt=0, description="Unfinished /v1/batches batches at once")
    max_jobs_per_batch: int = Field(gt=0, description="Jobs in one batch; also the highest max_parallel")
    batches_per_day: int | None = Field(gt=0, description="Batches created per UTC day; null: unlimited")


PLAN_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(
        requests_per_second=5,
        request_burst=10,
        tracked_events_per_second=100,
        concurrent_batches=1,
        max_jobs_per_batch=5,
        batches_per_day=3,
    ),
    Plan.PRO: PlanLimits(
        requests_per_second=50,
        request_burst=100,
        tracked_events_per_second=2_000,
        concurrent_batches=3,
        max_jobs_per_batch=20,
        batches_per_day=25,
    ),
    Plan.TEAM: PlanLimits(
        requests_per_second=200,
        request_burst=400,
        tracked_events_per_second=10_000,
        concurrent_batches=10,
        max_jobs_per_batch=100,
        batches_per_day=200,
    ),
    Plan.ENTERPRISE: PlanLimits(
        requests_per_second=1_000,
        request_burst=2_000,
        tracked_events_per_second=50_000,
        concurrent_batches=50,
        max_jobs_per_batch=1_000,
        batches_per_day=None,
    ),
}


def limits_of(plan: Plan) -> PlanLimits:
    return PLAN_LIMITS[plan]
