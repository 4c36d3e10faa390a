"""`client.jobs`, `client.runs`, `client.batch_operations`: seed 001's calls in Strait's shapes
(`/v1/jobs`, `/v1/runs`, `/v1/batch-operations`).

Lists are cursor pages (`limit` 50 unless given, at most 100; `next_cursor` while `has_more`).
A filtered page can be short or even empty with more to come, so `iterate` follows `has_more`,
never the page's length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Callable, Optional, Union

from batchops_client._core import Page, Plan, pages, poll
from batchops_client._resource import D, Resource, endpoint, paginated, path, without_none
from batchops_client.models.jobs import (
    BatchOperation,
    BatchOperationList,
    BulkTrigger,
    Job,
    JobList,
    Run,
    RunCounts,
    RunList,
    TriggerDryRun,
    TriggeredRun,
)

# The API serves at most this many items a page.
MAX_PAGE = 100
When = Union[str, datetime]


def _fields(body: Optional[Mapping[str, Any]], named: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A request body from a dict (sent as given: its None values are JSON null), the named
    keyword arguments that are not None, and any other wire fields given as keywords."""
    fields = dict(body or {})
    fields.update(without_none(**named))
    fields.update(settings)
    return _iso(fields)


def _iso(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`scheduled_at` and other times given as datetimes, as the RFC 3339 text the API takes."""
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in fields.items()}


CursorList = Union[JobList, RunList, BatchOperationList]


def _cursor_page(listed: CursorList) -> Optional[str]:
    return listed.next_cursor if listed.has_more and listed.next_cursor else None


def _cursor_pages(
    fetch: Callable[[Optional[str]], Plan[Union[JobList, RunList, BatchOperationList]]],
) -> Plan[Page[Any]]:
    """Every item of a cursor-paged list (jobs, runs, batch operations): `data`, `has_more`, `next_cursor`."""
    return pages(fetch, lambda listed: listed.data, _cursor_page)


class Jobs(Resource[D]):
    @endpoint
    def create(
        self,
        body: Optional[Mapping[str, Any]] = None,
        /,
        *,
        name: Optional[str] = None,
        endpoint_url: Optional[str] = None,
        method: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout_secs: Optional[int] = None,
        max_attempts: Optional[int] = None,
        retry_backoff_secs: Optional[int] = None,
        dedup_window_secs: Optional[int] = None,
        enabled: Optional[bool] = None,
        slug: Optional[str] = None,
        description: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
        **settings: Any,
    ) -> Plan[Job]:
        """Register a job (`POST /v1/jobs`, 201): `name` (unique in the workspace) and
        `endpoint_url` are required, given as keywords or in a dict (Strait's SDK style); any
        other Strait setting (`run_ttl_secs`, `retry_strategy`, ...) as a keyword too. The answer
        carries `signing_secret`, shown only here."""
        named = {
            "name": name,
            "endpoint_url": endpoint_url,
            "method": method,
            "headers": None if headers is None else dict(headers),
            "timeout_secs": timeout_secs,
            "max_attempts": max_attempts,
            "retry_backoff_secs": retry_backoff_secs,
            "dedup_window_secs": dedup_window_secs,
            "enabled": enabled,
            "slug": slug,
            "description": description,
            "tags": None if tags is None else dict(tags),
        }
        answer = yield from self._request(
            "POST", "/v1/jobs", json=_fields(body, named, settings), idempotency_key=idempotency_key
        )
        return Job.model_validate(answer)

    @endpoint
    def get(self, job_id: str, *, project_id: Optional[str] = None) -> Plan[Job]:
        """One job (`GET /v1/jobs/{jobID}`)."""
        answer = yield from self._request("GET", path("/v1/jobs/{}", job_id), params={"project_id": project_id})
        return Job.model_validate(answer)

    @endpoint
    def update(self, job_id: str, body: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Plan[Job]:
        """Change a job (`PATCH /v1/jobs/{jobID}`): only the fields sent change. Keywords that are
        None are left out; to clear an optional setting (JSON null), pass it in `body`
        (`update(job_id, {"description": None})`)."""
        sent = dict(body or {})
        sent.update(without_none(**fields))
        answer = yield from self._request("PATCH", path("/v1/jobs/{}", job_id), json=_iso(sent))
        return Job.model_validate(answer)

    @endpoint
    def delete(self, job_id: str) -> Plan[None]:
        """Delete a job (`DELETE /v1/jobs/{jobID}`, 204); its runs are kept."""
        yield from self._request("DELETE", path("/v1/jobs/{}", job_id))
        return None

    @endpoint
    def trigger(
        self,
        job_id: str,
        *,
        payload: Any = None,
        priority: Optional[int] = None,
        tags: Optional[Mapping[str, str]] = None,
        metadata: Optional[Mapping[str, str]] = None,
        ttl_secs: Optional[int] = None,
        scheduled_at: Optional[When] = None,
        concurrency_key: Optional[str] = None,
        debounce_key: Optional[str] = None,
        batch_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Plan[TriggeredRun]:
        """Create one run (`POST /v1/jobs/{jobID}/trigger`): `payload` any JSON value ({} unless
        given), `priority` 0-10 (5 and above go ahead of any backlog), `scheduled_at` a future
        time. `idempotency_key` becomes the run's key, for good: a trigger with a key a run
        already has answers that run (`idempotency_hit`) and creates nothing. Without one, each
        call gets a fresh key that its own retries repeat."""
        body = without_none(
            payload=payload,
            priority=priority,
            tags=None if tags is None else dict(tags),
            metadata=None if metadata is None else dict(metadata),
            ttl_secs=ttl_secs,
            scheduled_at=scheduled_at,
            concurrency_key=concurrency_key,
            debounce_key=debounce_key,
            batch_key=batch_key,
            # The API takes the header's key as the run's; a body key that differs is a 422, so
            # the one given goes in both.
            idempotency_key=idempotency_key,
        )
        answer = yield from self._request(
            "POST", path("/v1/jobs/{}/trigger", job_id), json=_iso(body), idempotency_key=idempotency_key
        )
        return TriggeredRun.model_validate(answer)

    @endpoint
    def trigger_dry_run(
        self,
        job_id: str,
        *,
        payload: Any = None,
        priority: Optional[int] = None,
        ttl_secs: Optional[int] = None,
        scheduled_at: Optional[When] = None,
    ) -> Plan[TriggerDryRun]:
        """What a trigger would run, validated, creating nothing (`POST /v1/jobs/{jobID}/trigger`
        with `dry_run: true`)."""
        body = without_none(
            payload=payload, priority=priority, ttl_secs=ttl_secs, scheduled_at=scheduled_at, dry_run=True
        )
        answer = yield from self._request("POST", path("/v1/jobs/{}/trigger", job_id), json=_iso(body))
        return TriggerDryRun.model_validate(answer)

    @endpoint
    def trigger_bulk(
        self, job_id: str, items: Sequence[Mapping[str, Any]], *, idempotency_key: Optional[str] = None
    ) -> Plan[BulkTrigger]:
        """Create up to 500 runs and their batch operation (`POST /v1/jobs/{jobID}/trigger-bulk`,
        201). Each item is a trigger's `payload`, `priority`, `idempotency_key`, `tags`,
        `ttl_secs`, `scheduled_at`, `concurrency_key`; run keys are the items' own
        `idempotency_key`s (the request's Idempotency-Key only makes a retried request answer
        the same). Follow it with `batch_operations.wait(result.batch_id)`."""
        body = {"items": [_iso(item) for item in items]}
        answer = yield from self._request(
            "POST", path("/v1/jobs/{}/trigger-bulk", job_id), json=body, idempotency_key=idempotency_key
        )
        return BulkTrigger.model_validate(answer)

    @paginated
    def runs(self, job_id: str, *, status: Optional[str] = None, limit: int = MAX_PAGE) -> Plan[Page[Run]]:
        """Every run of one job, newest first (`GET /v1/runs?job_id=`): `client.runs` has the
        other filters, `client.batch_operations` the bulk triggers' records."""
        return Runs.iterate.plan(self, job_id=job_id, status=status, limit=limit)

    @paginated
    def iterate(
        self,
        *,
        slug: Optional[str] = None,
        tag_key: Optional[str] = None,
        tag_value: Optional[str] = None,
        project_id: Optional[str] = None,
        limit: int = MAX_PAGE,
    ) -> Plan[Page[Job]]:
        """Every job of the workspace (with the filters, the matching ones), newest first."""
        filters: dict[str, Any] = {
            "slug": slug,
            "tag_key": tag_key,
            "tag_value": tag_value,
            "project_id": project_id,
            "limit": limit,
        }
        return _cursor_pages(lambda cursor: Jobs.list.plan(self, cursor=cursor, **filters))

    # Last: inside this class, later annotations would take `list` for this method.
    @endpoint
    def list(
        self,
        *,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        slug: Optional[str] = None,
        tag_key: Optional[str] = None,
        tag_value: Optional[str] = None,
        project_id: Optional[str] = None,
    ) -> Plan[JobList]:
        """One page of jobs, newest first (`GET /v1/jobs`; `limit` 50 unless given, at most 100;
        `slug` the one job with that slug; `tag_value` needs `tag_key`). Pass `next_cursor` as
        `cursor` for the next page; `iterate` walks them all."""
        params = {
            "limit": limit,
            "cursor": cursor,
            "slug": slug,
            "tag_key": tag_key,
            "tag_value": tag_value,
            "project_id": project_id,
        }
        answer = yield from self._request("GET", "/v1/jobs", params=params)
        return JobList.model_validate(answer)


class Runs(Resource[D]):
    @endpoint
    def get(self, run_id: str, *, project_id: Optional[str] = None) -> Plan[Run]:
        """One run: its status, attempts, result or error (`GET /v1/runs/{runID}`)."""
        answer = yield from self._request("GET", path("/v1/runs/{}", run_id), params={"project_id": project_id})
        return Run.model_validate(answer)

    @endpoint
    def wait(
        self,
        run_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: Optional[float] = 600.0,
        on_status: Optional[Callable[[Run], Any]] = None,
    ) -> Plan[Run]:
        """Poll a run until completed, failed, canceled, timed_out or expired and return it;
        `on_status` gets every poll. WaitTimeout (`.last` the last state) after `timeout`
        seconds; None waits for ever."""
        return (
            yield from poll(
                lambda: Runs.get.plan(self, run_id),
                lambda run: run.finished,
                interval=poll_interval,
                timeout=timeout,
                describe=lambda run: f"run {run_id} still {run.status}",
                on_each=on_status,
            )
        )

    @paginated
    def iterate(
        self,
        *,
        job_id: Optional[str] = None,
        batch_id: Optional[str] = None,
        status: Optional[str] = None,
        statuses: Optional[Sequence[str]] = None,
        tag_key: Optional[str] = None,
        tag_value: Optional[str] = None,
        metadata_key: Optional[str] = None,
        metadata_value: Optional[str] = None,
        project_id: Optional[str] = None,
        limit: int = MAX_PAGE,
    ) -> Plan[Page[Run]]:
        """Every run matching the filters, newest first, page after page (a filtered page may be
        empty with more to come; this goes on while the API says `has_more`)."""
        filters: dict[str, Any] = {
            "job_id": job_id,
            "batch_id": batch_id,
            "status": status,
            "statuses": statuses,
            "tag_key": tag_key,
            "tag_value": tag_value,
            "metadata_key": metadata_key,
            "metadata_value": metadata_value,
            "project_id": project_id,
            "limit": limit,
        }
        return _cursor_pages(lambda cursor: Runs.list.plan(self, cursor=cursor, **filters))

    @endpoint
    def list(
        self,
        *,
        job_id: Optional[str] = None,
        batch_id: Optional[str] = None,
        status: Optional[str] = None,
        statuses: Optional[Sequence[str]] = None,
        tag_key: Optional[str] = None,
        tag_value: Optional[str] = None,
        metadata_key: Optional[str] = None,
        metadata_value: Optional[str] = None,
        project_id: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Plan[RunList]:
        """One page of runs, newest first (`GET /v1/runs`): `status` one status, `statuses`
        several; `batch_id` a bulk trigger's runs. `limit` 50 unless given, at most 100."""
        params = {
            "job_id": job_id,
            "batch_id": batch_id,
            "status": status,
            # The API takes several statuses repeated or comma-separated.
            "statuses": None if statuses is None else ",".join(statuses),
            "tag_key": tag_key,
            "tag_value": tag_value,
            "metadata_key": metadata_key,
            "metadata_value": metadata_value,
            "project_id": project_id,
            "limit": limit,
            "cursor": cursor,
        }
        answer = yield from self._request("GET", "/v1/runs", params=params)
        return RunList.model_validate(answer)


class BatchOperations(Resource[D]):
    @endpoint
    def get(self, batch_id: str, *, project_id: Optional[str] = None) -> Plan[BatchOperation]:
        """One bulk trigger's batch operation (`GET /v1/batch-operations/{batchID}`)."""
        answer = yield from self._request(
            "GET", path("/v1/batch-operations/{}", batch_id), params={"project_id": project_id}
        )
        return BatchOperation.model_validate(answer)

    @endpoint
    def wait(
        self,
        batch_id: str,
        *,
        poll_interval: float = 2.0,
        timeout: Optional[float] = 600.0,
        on_status: Optional[Callable[[BatchOperation], Any]] = None,
    ) -> Plan[BatchOperation]:
        """Poll a batch operation until `finished_at` is set (every run it created has finished)
        and return it; `on_status` gets every poll. WaitTimeout after `timeout` seconds."""
        return (
            yield from poll(
                lambda: BatchOperations.get.plan(self, batch_id),
                lambda operation: operation.finished,
                interval=poll_interval,
                timeout=timeout,
                describe=lambda operation: f"batch operation {batch_id} still processing",
                on_each=on_status,
            )
        )

    @endpoint
    def run_counts(self, batch_id: str) -> Plan[RunCounts]:
        """How many of a batch operation's runs are in each status, read from its runs
        (`GET /v1/runs?batch_id=`, every page): the batch operation record itself has no counts."""
        counts: dict[str, int] = {}
        cursor: Optional[str] = None
        while True:
            listed = yield from Runs.list.plan(self, batch_id=batch_id, limit=MAX_PAGE, cursor=cursor)
            for run in listed.data:
                counts[run.status] = counts.get(run.status, 0) + 1
            cursor = _cursor_page(listed)
            if cursor is None:
                break
        known = {key: value for key, value in counts.items() if key in RunCounts.model_fields}
        return RunCounts(total=sum(counts.values()), **known)

    @paginated
    def iterate(self, *, project_id: Optional[str] = None, limit: int = MAX_PAGE) -> Plan[Page[BatchOperation]]:
        """Every bulk-trigger batch operation of the workspace, newest first."""
        return _cursor_pages(
            lambda cursor: BatchOperations.list.plan(self, cursor=cursor, project_id=project_id, limit=limit)
        )

    @endpoint
    def list(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None, project_id: Optional[str] = None
    ) -> Plan[BatchOperationList]:
        """One page of bulk-trigger batch operations, newest first (`GET /v1/batch-operations`)."""
        answer = yield from self._request(
            "GET", "/v1/batch-operations", params={"limit": limit, "cursor": cursor, "project_id": project_id}
        )
        return BatchOperationList.model_validate(answer)
