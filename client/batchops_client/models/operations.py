"""Operations (seed 003, `/v1/batch*`): many API calls in one request, in the seed's camelCase.

Attributes are snake_case (`limits.max_operations`); `model["maxOperations"]` and `to_dict()`
keep the API's own keys.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field, model_validator

from batchops_client.models._base import Model

# An async job in one of these states changes no more.
FINISHED = frozenset({"COMPLETED", "FAILED"})


class Operation(Model):
    """One call of a batch, to build a request with (a plain dict works as well):
    `method` POST, PATCH or DELETE, `path` a route of `limits().allowed_paths`."""

    id: str
    method: str
    path: str
    body: Any = None
    headers: Optional[dict[str, str]] = None


class OperationResult(Model):
    """One operation's outcome: its own HTTP status and answer body, in request order."""

    id: str
    status: int
    body: Any = None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> Optional[str]:
        """The error code of a failed or skipped operation (`SKIPPED`, `TIMEOUT`, `INTERRUPTED`, ...)."""
        code = self.body.get("code") if isinstance(self.body, dict) else None
        return code if isinstance(code, str) else None

    @property
    def skipped(self) -> bool:
        """Not attempted because an earlier operation failed (424 SKIPPED)."""
        return self.code == "SKIPPED"

    @property
    def timed_out(self) -> bool:
        """Not started before the batch's deadline, and never will be: it had no effect."""
        return self.status == 504 and self.code == "TIMEOUT"

    @property
    def interrupted(self) -> bool:
        """Started, outcome unknown: check its effect before sending it again."""
        return self.status == 500 and self.code == "INTERRUPTED"


class Summary(Model):
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class OperationsResult(Model):
    """`operations.execute` / `transaction`: every operation's result and the counts."""

    results: list[OperationResult] = []
    summary: Summary = Summary()

    @property
    def succeeded(self) -> bool:
        """Every operation answered 2xx (none failed, none skipped)."""
        return self.summary.failed == 0 and self.summary.skipped == 0

    @property
    def failed(self) -> list[OperationResult]:
        return [result for result in self.results if not result.succeeded and not result.skipped]


class DryRunResult(OperationsResult):
    """`operations.dry_run`: per operation `200 {"valid": true}` when the call would be accepted,
    else the status and error body the real call would give. Nothing ran."""

    @property
    def valid(self) -> bool:
        return all(result.succeeded for result in self.results)


class RateLimits(Model):
    requests_per_second: int = Field(alias="requestsPerSecond")
    request_burst: int = Field(alias="requestBurst")
    tracked_events_per_second: int = Field(alias="trackedEventsPerSecond")


class Limits(Model):
    """`operations.limits`: the batch limits and the caller's plan budgets."""

    max_operations: int = Field(alias="maxOperations")
    timeout_ms: int = Field(alias="timeoutMs")
    allowed_methods: list[str] = Field(default=[], alias="allowedMethods")
    allowed_paths: list[str] = Field(default=[], alias="allowedPaths")
    max_body_bytes: Optional[int] = Field(default=None, alias="maxBodyBytes")
    max_operation_body_bytes: Optional[int] = Field(default=None, alias="maxOperationBodyBytes")
    plan: Optional[str] = None
    rate_limits: Optional[RateLimits] = Field(default=None, alias="rateLimits")


class AsyncOperation(Model):
    """An async batch job (`/v1/batch/async`): QUEUED -> PROCESSING -> COMPLETED (every operation
    attempted; some may have failed) or FAILED (the job could not run; see `error`).
    `results` and `summary` are null until COMPLETED, and list items carry no `results`.

    The submit answer names the job `jobId`; it is `id` here as in every other answer."""

    id: str
    status: str
    results: Optional[list[OperationResult]] = None
    summary: Optional[Summary] = None
    error: Optional[str] = None
    created_at: Optional[str] = Field(default=None, alias="createdAt")
    started_at: Optional[str] = Field(default=None, alias="startedAt")
    completed_at: Optional[str] = Field(default=None, alias="completedAt")

    @model_validator(mode="before")
    @classmethod
    def _job_id_is_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data and "jobId" in data:
            return {**data, "id": data["jobId"]}
        return data

    @property
    def job_id(self) -> str:
        return self.id

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        """COMPLETED with no failed or skipped operation."""
        if self.status != "COMPLETED":
            return False
        return self.summary is None or (self.summary.failed == 0 and self.summary.skipped == 0)


class AsyncOperationList(Model):
    """`operations.list_async`: one page, newest first. A filtered page may be short or even
    empty while `next_cursor` is set: page on while it is not None."""

    data: list[AsyncOperation] = []
    next_cursor: Optional[str] = Field(default=None, alias="nextCursor")
