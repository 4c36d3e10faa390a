"""What each plan may do: the one table of per-plan limits (issue 5; the Batches surface adds its
quotas here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from batchops.models.common import Plan


class PlanLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    requests_per_second: int = Field(gt=0, description="Sustained API requests per second")
    request_burst: int = Field(gt=0, description="Requests allowed at once after a quiet spell")
    tracked_events_per_second: int = Field(gt=0, description="Tracked events per second (bulk-track counts each)")


PLAN_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(requests_per_second=5, request_burst=10, tracked_events_per_second=100),
    Plan.PRO: PlanLimits(requests_per_second=50, request_burst=100, tracked_events_per_second=2_000),
    Plan.TEAM: PlanLimits(requests_per_second=200, request_burst=400, tracked_events_per_second=10_000),
    Plan.ENTERPRISE: PlanLimits(requests_per_second=1_000, request_burst=2_000, tracked_events_per_second=50_000),
}


def limits_of(plan: Plan) -> PlanLimits:
    return PLAN_LIMITS[plan]
