"""Jobs (seed 001): registered HTTP endpoints that runs call. This part: create, read, list,
update and delete, with the endpoint URL checked for SSRF at every write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from batchops.dal.items import iso
from batchops.dal.jobs import JobRepository
from batchops.errors import NotFoundError
from batchops.executors import url_safety
from batchops.executors.webhook_signing import new_signing_secret
from batchops.models.jobs import JobCreate, JobUpdate
from batchops.settings import get_settings

SECRET_FIELD = "signing_secret"  # noqa: S105 - a field name, not a secret


def _repository() -> JobRepository:
    return JobRepository(get_settings().table_name)


def _check_url(url: str) -> None:
    # Loopback only in local mode (the local stack and tests); template.yaml never sets it.
    url_safety.check_url(url, allow_loopback=get_settings().local_mode)


def _public(job: dict[str, Any]) -> dict[str, Any]:
    """The signing secret is shown once, at creation, never again."""
    return {k: v for k, v in job.items() if k != SECRET_FIELD}


def create_job(workspace_id: str, request: JobCreate) -> dict[str, Any]:
    _check_url(request.endpoint_url)
    now = iso(datetime.now(UTC))
    job = {
        "id": f"job_{uuid.uuid4().hex}",
        "project_id": workspace_id,
        **request.model_dump(),
        "headers": request.headers or {},
        SECRET_FIELD: new_signing_secret(),
        "created_at": now,
        "updated_at": now,
    }
    _repository().create(workspace_id, job)
    return job


def find_job(workspace_id: str, job_id: str) -> dict[str, Any]:
    job = _repository().get(workspace_id, job_id)
    if job is None:
        raise NotFoundError(f"Job {job_id} not found", code="JOB_NOT_FOUND")
    return job


def get_job(workspace_id: str, job_id: str) -> dict[str, Any]:
    return _public(find_job(workspace_id, job_id))


def list_jobs(workspace_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    jobs, next_cursor = _repository().list(workspace_id, limit=limit, cursor=cursor)
    return [_public(j) for j in jobs], next_cursor


def update_job(workspace_id: str, job_id: str, request: JobUpdate) -> dict[str, Any]:
    before = find_job(workspace_id, job_id)
    changes = request.model_dump(exclude_unset=True)
    if "endpoint_url" in changes:
        _check_url(changes["endpoint_url"])
    after = {**before, **{k: v for k, v in changes.items() if v is not None or k == "headers"}}
    after["headers"] = after.get("headers") or {}
    after["updated_at"] = iso(datetime.now(UTC))
    _repository().replace(workspace_id, before, after)
    return _public(after)


def delete_job(workspace_id: str, job_id: str) -> None:
    _repository().delete(workspace_id, find_job(workspace_id, job_id))
