"""`client.batches`: the Batches document's calls under its SDK's names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import httpx

from batchops_client._core import Page, Plan, Send, checked, pages, poll
from batchops_client._resource import D, Resource, endpoint, paginated, path, without_none
from batchops_client.errors import BatchopsError
from batchops_client.models.batches import (
    Batch,
    BatchList,
    BatchResults,
    CancelledBatch,
    CreatedBatch,
    Progress,
    RetriedBatch,
)

RESULT_FORMATS = ("json", "csv", "xlsx", "pdf")
# API Gateway returns a binary body as bytes only when Accept names its type.
ACCEPT = {
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


class Batches(Resource[D]):
    @endpoint
    def create(
        self,
        name: str,
        jobs: Sequence[dict[str, Any]],
        *,
        description: Optional[str] = None,
        type: Optional[str] = None,
        priority: Optional[str] = None,
        options: Optional[dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Plan[CreatedBatch]:
        """Create a batch of jobs (`POST /v1/batches`); the answer carries `signing_secret`,
        shown only here. Retried safely: every attempt sends the same Idempotency-Key."""
        body = without_none(
            name=name, jobs=list(jobs), description=description, type=type, priority=priority, options=options
        )
        answer = yield from self._request("POST", "/v1/batches", json=body, idempotency_key=idempotency_key)
        return CreatedBatch.model_validate(answer["data"])

    @endpoint
    def get_status(self, batch_id: str, *, include_jobs: bool = False, job_status: Optional[str] = None) -> Plan[Batch]:
        """A batch's status, progress and job counts (`GET /v1/batches/{batch_id}`)."""
        params = {"include_jobs": _flag(include_jobs), "job_status": job_status}
        answer = yield from self._request("GET", path("/v1/batches/{}", batch_id), params=params)
        return Batch.model_validate(answer["data"])

    get = get_status

    @endpoint
    def list(
        self,
        *,
        status: Optional[str] = None,
        type: Optional[str] = None,
        priority: Optional[str] = None,
        page: Optional[int] = None,
        per_page: Optional[int] = None,
        sort: Optional[str] = None,
    ) -> Plan[BatchList]:
        """One page of the workspace's batches with its `pagination`; `iterate` walks them all."""
        params = {
            "status": status,
            "type": type,
            "priority": priority,
            "page": page,
            "per_page": per_page,
            "sort": sort,
        }
        answer = yield from self._request("GET", "/v1/batches", params=params)
        return BatchList.model_validate(answer)

    @paginated
    def iterate(
        self,
        *,
        status: Optional[str] = None,
        type: Optional[str] = None,
        priority: Optional[str] = None,
        per_page: int = 100,
        sort: Optional[str] = None,
    ) -> Plan[Page[Batch]]:
        """Every batch matching the filters, page after page."""
        filters: dict[str, Any] = {"status": status, "type": type, "priority": priority, "per_page": per_page}

        def after(listed: BatchList) -> Optional[int]:
            at = listed.pagination
            return at.page + 1 if at.page < at.total_pages else None

        return pages(lambda page: Batches.list.plan(self, page=page, sort=sort, **filters), _data, after, at=1)

    @endpoint
    def get_results(
        self,
        batch_id: str,
        *,
        format: str = "json",
        include_raw: bool = False,
        jobs: Union[Sequence[str], str, None] = None,
        output: Union[str, Path, None] = None,
    ) -> Plan[Union[BatchResults, bytes, Path]]:
        """A batch's results: `BatchResults` for `json`, the file's bytes for `csv`, `xlsx` and
        `pdf`. With `output` (a folder, or a file name ending in the format), the results are
        written there as `<batch_id>.<format>` and the path is returned. An export too large for
        a Lambda response comes as a 303 to a presigned S3 URL, which is followed."""
        if format not in RESULT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(RESULT_FORMATS)}, not {format!r}")
        params = without_none(
            format=format,
            include_raw=_flag(include_raw),
            jobs=jobs if isinstance(jobs, str) or jobs is None else ",".join(jobs),
        )
        request = Send(
            "GET", path("/v1/batches/{}/results", batch_id), params=params, headers={"Accept": ACCEPT[format]}
        )
        response = yield from checked(request, self._policy)
        if response.status_code == 303:
            location = response.headers.get("Location") or _download_url(response)
            if not location:
                raise BatchopsError("the API answered 303 without a Location", status=303)
            # The presigned URL is its own credential: sent without the API key.
            response = yield from checked(Send("GET", str(response.url.join(location)), plain=True), self._policy)
        content = response.content
        if output is not None:
            return _write(Path(output), batch_id, format, content)
        if format == "json":
            body = response.json()
            return BatchResults.model_validate(body.get("data", body))
        return content

    # The seed's Node SDK name, and the old Python SDK's.
    results = get_results

    @endpoint
    def cancel(
        self, batch_id: str, *, reason: Optional[str] = None, cancel_running_jobs: Optional[bool] = None
    ) -> Plan[CancelledBatch]:
        """Cancel a queued or running batch (`DELETE /v1/batches/{batch_id}`)."""
        body = without_none(reason=reason, cancel_running_jobs=cancel_running_jobs)
        answer = yield from self._request("DELETE", path("/v1/batches/{}", batch_id), json=body or None)
        return CancelledBatch.model_validate(answer["data"])

    @endpoint
    def retry(
        self,
        batch_id: str,
        *,
        job_ids: Optional[Sequence[str]] = None,
        max_retries: Optional[int] = None,
        retry_delay_minutes: Optional[float] = None,
        idempotency_key: Optional[str] = None,
    ) -> Plan[RetriedBatch]:
        """Run a finished batch's failed jobs again (all of them without `job_ids`) as a new batch."""
        body = without_none(
            job_ids=None if job_ids is None else tuple(job_ids),
            max_retries=max_retries,
            retry_delay_minutes=retry_delay_minutes,
        )
        answer = yield from self._request(
            "POST", path("/v1/batches/{}/retry", batch_id), json=body, idempotency_key=idempotency_key
        )
        return RetriedBatch.model_validate(answer["data"])

    @endpoint
    def wait_for_completion(
        self,
        batch_id: str,
        *,
        on_progress: Optional[Callable[[Progress], Any]] = None,
        poll_interval: float = 2.0,
        timeout: Optional[float] = 600.0,
        on_status: Optional[Callable[[Batch], Any]] = None,
    ) -> Plan[Batch]:
        """Poll until the batch is completed, failed, cancelled or timed out, and return it.
        `on_progress` gets its `progress` after every poll (`on_status` the whole batch);
        WaitTimeout after `timeout` seconds (None waits for ever)."""

        def report(batch: Batch) -> None:
            if on_progress is not None:
                on_progress(batch.progress)
            if on_status is not None:
                on_status(batch)

        return (
            yield from poll(
                lambda: Batches.get_status.plan(self, batch_id),
                lambda batch: batch.finished,
                interval=poll_interval,
                timeout=timeout,
                describe=lambda batch: f"batch {batch_id} still {batch.status}",
                on_each=report,
            )
        )


def _data(listed: BatchList) -> list[Batch]:
    return listed.data


def _download_url(redirect: httpx.Response) -> Optional[str]:
    """The export's link in a 303's body (`data.download_url`), for a proxy that drops Location."""
    try:
        data = redirect.json().get("data") or {}
    except (ValueError, AttributeError):
        return None
    url = data.get("download_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else None


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _write(output: Path, batch_id: str, file_format: str, content: bytes) -> Path:
    """`output` itself when it names a `.<format>` file, else `<output>/<batch_id>.<format>`."""
    # `.name`: a batch id cannot steer the file out of the folder.
    named = output.suffix.lower() == f".{file_format}"
    target = output if named else output / Path(f"{batch_id}.{file_format}").name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return target
