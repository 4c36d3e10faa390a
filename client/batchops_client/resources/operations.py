"""`client.operations`: seed 003's calls, many API operations in one request (`/v1/batch*`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union

from batchops_client._core import Page, Plan, pages, poll
from batchops_client._resource import D, Resource, endpoint, paginated, path, without_none
from batchops_client.models.operations import (
    AsyncOperation,
    AsyncOperationList,
    DryRunResult,
    Limits,
    Operation,
    OperationsResult,
)

OperationLike = Union[Operation, Mapping[str, Any]]


def _body(
    operations: Sequence[OperationLike], continue_on_error: Optional[bool], parallel: Optional[bool]
) -> dict[str, Any]:
    """The seed's request body; options left out take the API's defaults (continueOnError true,
    parallel false)."""
    return without_none(
        operations=[_operation(op) for op in operations], continueOnError=continue_on_error, parallel=parallel
    )


def _operation(operation: OperationLike) -> dict[str, Any]:
    if isinstance(operation, Operation):
        # Only what was given: an unset body stays absent rather than an explicit null.
        return operation.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dict(operation)


class Operations(Resource[D]):
    @endpoint
    def execute(
        self,
        operations: Sequence[OperationLike],
        *,
        continue_on_error: Optional[bool] = None,
        parallel: Optional[bool] = None,
        idempotency_key: Optional[str] = None,
    ) -> Plan[OperationsResult]:
        """Run 1-100 operations in one request (`POST /v1/batch`), one after another or with
        `parallel=True` concurrently; results come in request order. With
        `continue_on_error=False` the operations after the first failure are skipped (424).
        The answer is 200 whatever the operations answered: look at `summary` / `succeeded`.
        Retried safely: the same Idempotency-Key returns the first answer instead of running again."""
        body = _body(operations, continue_on_error, parallel)
        answer = yield from self._request("POST", "/v1/batch", json=body, idempotency_key=idempotency_key)
        return OperationsResult.model_validate(answer)

    @endpoint
    def transaction(
        self, operations: Sequence[OperationLike], *, idempotency_key: Optional[str] = None
    ) -> Plan[OperationsResult]:
        """Run operations as a fail-fast sequence (`POST /v1/batch/transaction`): the first failure
        skips the rest. There is no rollback: operations that succeeded before it stay done."""
        body = _body(operations, None, None)
        answer = yield from self._request("POST", "/v1/batch/transaction", json=body, idempotency_key=idempotency_key)
        return OperationsResult.model_validate(answer)

    @endpoint
    def dry_run(
        self,
        operations: Sequence[OperationLike],
        *,
        continue_on_error: Optional[bool] = None,
        parallel: Optional[bool] = None,
    ) -> Plan[DryRunResult]:
        """Validate a batch without running anything (`POST /v1/batch/dry-run`): each result is
        `200 {"valid": true}` or the error the real call would give; `valid` says whether all pass."""
        body = _body(operations, continue_on_error, parallel)
        answer = yield from self._request("POST", "/v1/batch/dry-run", json=body)
        return DryRunResult.model_validate(answer)

    @endpoint
    def limits(self) -> Plan[Limits]:
        """The batch limits, allowed methods and paths, and the caller's rate limits
        (`GET /v1/batch/limits`)."""
        answer = yield from self._request("GET", "/v1/batch/limits")
        return Limits.model_validate(answer)

    @endpoint
    def submit_async(
        self,
        operations: Sequence[OperationLike],
        *,
        continue_on_error: Optional[bool] = None,
        parallel: Optional[bool] = None,
        idempotency_key: Optional[str] = None,
    ) -> Plan[AsyncOperation]:
        """Queue a batch to run in the background (`POST /v1/batch/async`, 202); the answer is the
        QUEUED job (`id`, `status`, `created_at`). Follow it with `get_async` or `wait`."""
        body = _body(operations, continue_on_error, parallel)
        answer = yield from self._request("POST", "/v1/batch/async", json=body, idempotency_key=idempotency_key)
        return AsyncOperation.model_validate(answer["data"])

    @endpoint
    def get_async(self, job_id: str) -> Plan[AsyncOperation]:
        """An async job's status, and its `results` and `summary` once COMPLETED
        (`GET /v1/batch/async/{jobId}`)."""
        answer = yield from self._request("GET", path("/v1/batch/async/{}", job_id))
        return AsyncOperation.model_validate(answer["data"])

    @endpoint
    def wait(
        self,
        job_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: Optional[float] = 600.0,
        on_status: Optional[Callable[[AsyncOperation], Any]] = None,
    ) -> Plan[AsyncOperation]:
        """Poll an async job until COMPLETED or FAILED and return it; `on_status` gets every poll.
        WaitTimeout (with the last state on `.last`) after `timeout` seconds; None waits for ever."""
        return (
            yield from poll(
                lambda: Operations.get_async.plan(self, job_id),
                lambda job: job.finished,
                interval=poll_interval,
                timeout=timeout,
                describe=lambda job: f"async batch {job_id} still {job.status}",
                on_each=on_status,
            )
        )

    @endpoint
    def list_async(
        self, *, limit: Optional[int] = None, status: Optional[str] = None, cursor: Optional[str] = None
    ) -> Plan[AsyncOperationList]:
        """One page of the workspace's async jobs, newest first, without their results
        (`GET /v1/batch/async`; `limit` 1-100, 20 unless given; `status` QUEUED, PROCESSING,
        COMPLETED or FAILED). Pass `next_cursor` as `cursor` for the next page; `iterate_async`
        walks them all."""
        answer = yield from self._request(
            "GET", "/v1/batch/async", params={"limit": limit, "status": status, "cursor": cursor}
        )
        return AsyncOperationList.model_validate(answer)

    @paginated
    def iterate_async(self, *, status: Optional[str] = None, limit: int = 100) -> Plan[Page[AsyncOperation]]:
        """Every async job (with `status`, only those), page after page. A filtered page may be
        empty with more to come: paging goes on while the API gives a cursor."""
        return pages(
            lambda cursor: Operations.list_async.plan(self, cursor=cursor, status=status, limit=limit),
            lambda listed: listed.data,
            lambda listed: listed.next_cursor or None,
        )
