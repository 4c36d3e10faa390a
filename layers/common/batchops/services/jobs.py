"""Jobs (seed 001): registered HTTP endpoints that runs call. This part: create, read, list,
update and delete, with the endpoint URL checked for SSRF at every write.

A batchops workspace is a Strait project: `project_id` is the workspace id. A body or a query may
name only the caller's own; any other is a project that does not exist for the caller (404,
never 403: DESIGN §5).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from batchops.dal.items import iso
from batchops.dal.jobs import JOB_CHANGED, JobRepository
from batchops.errors import ConflictError, NotFoundError, ValidationFailedError
from batchops.executors import url_safety
from batchops.executors.webhook_signing import SECRET_PREFIX, new_signing_secret
from batchops.models.common import Caller
from batchops.models.jobs import (
    CORE_JOB_FIELDS,
    SECRET_SETTINGS,
    Job,
    JobCreate,
    JobPage,
    JobUpdate,
    StraitJobSettings,
)
from batchops.settings import get_settings

SECRET_FIELD = "signing_secret"  # noqa: S105 - a field name, not a secret
# Optional settings that are URLs: checked like endpoint_url, though batchops never calls them.
URL_SETTINGS = ("fallback_endpoint_url", "webhook_url")
# A delete that keeps finding the job changed under it (each try re-reads it) gives up with 409.
DELETE_ATTEMPTS = 3


def _repository() -> JobRepository:
    return JobRepository(get_settings().table_name)


def check_project(workspace_id: str, project_id: str | None) -> None:
    """The one project check of the Jobs surface: left out, the caller's workspace is meant
    (Strait takes the project from the API key); any other is a project the caller cannot see,
    so it does not exist (404, as another workspace's job, run or batch operation)."""
    if project_id is not None and project_id != workspace_id:
        raise NotFoundError(f"Project {project_id} not found", code="PROJECT_NOT_FOUND")


def _check_url(url: str) -> None:
    # Loopback only in local mode (the local stack and tests); template.yaml never sets it.
    url_safety.check_url(url, allow_loopback=get_settings().local_mode)


def _check_urls(fields: dict[str, Any]) -> None:
    for name in ("endpoint_url", *URL_SETTINGS):
        if fields.get(name) is not None:
            try:
                _check_url(fields[name])
            except ValidationFailedError as error:
                raise ValidationFailedError(
                    error.message, code=error.code, details=[{"field": name, "error": error.message}]
                ) from None


def _signing_secret(settings: StraitJobSettings) -> str | None:
    """The Standard Webhooks secret a job's calls are signed with, from Strait's
    `endpoint_signing_secret` (or its alias `webhook_secret`, which wins, as in Strait).
    A `whsec_` secret is used as given; any other string is the HMAC key itself."""
    given = settings.webhook_secret or settings.endpoint_signing_secret
    if given is None:
        return None
    if given.startswith(SECRET_PREFIX):
        encoded = given[len(SECRET_PREFIX) :]
        try:
            if len(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)) >= 16:
                return given
        except (binascii.Error, ValueError):
            pass
    return SECRET_PREFIX + base64.b64encode(given.encode()).decode()


def view(job: dict[str, Any]) -> Job:
    """A job as the API shows it. The signing secret is shown once, at creation, never again;
    Strait's fields every job has are filled in for jobs stored before they existed."""
    shown = {k: v for k, v in job.items() if k != SECRET_FIELD}
    shown.setdefault("slug", None)
    shown.setdefault("version", 1)
    shown["paused"] = False
    return Job.model_validate(shown)


def create_job(caller: Caller, request: JobCreate) -> Job:
    check_project(caller.workspace_id, request.project_id)
    given = request.model_dump(exclude={"project_id", *SECRET_SETTINGS})
    _check_urls(given)
    now = iso(datetime.now(UTC))
    actor = f"apikey:{caller.key_id}"
    job = {
        "id": f"job_{uuid.uuid4().hex}",
        "project_id": caller.workspace_id,
        # Strait leaves unset settings out of a job; batchops' own fields always have a value.
        **{k: v for k, v in given.items() if v is not None or k in CORE_JOB_FIELDS},
        "headers": request.headers or {},
        SECRET_FIELD: _signing_secret(request) or new_signing_secret(),
        "version": 1,
        "created_by": actor,
        "updated_by": actor,
        "created_at": now,
        "updated_at": now,
    }
    _repository().create(caller.workspace_id, job)
    return view(job).model_copy(update={SECRET_FIELD: job[SECRET_FIELD]})


def find_job(workspace_id: str, job_id: str) -> dict[str, Any]:
    job = _repository().get(workspace_id, job_id)
    if job is None:
        raise NotFoundError(f"Job {job_id} not found", code="JOB_NOT_FOUND")
    return job


def get_job(workspace_id: str, job_id: str, *, project_id: str | None = None) -> Job:
    check_project(workspace_id, project_id)
    return view(find_job(workspace_id, job_id))


def list_jobs(
    workspace_id: str,
    *,
    limit: int,
    cursor: str | None,
    project_id: str | None = None,
    slug: str | None = None,
    tag_key: str | None = None,
    tag_value: str | None = None,
) -> JobPage:
    """Newest first. `slug` finds the one job with it, or none (a page, never a 404, as in Strait)."""
    check_project(workspace_id, project_id)
    if tag_value is not None and tag_key is None:
        raise ValidationFailedError(
            "tag_key is required when tag_value is given",
            details=[{"field": "tag_value", "error": "needs tag_key"}],
        )
    repo = _repository()
    if slug is not None:
        job = repo.get_by_slug(workspace_id, slug)
        matches = job is not None and (tag_key is None or _has_tag(job, tag_key, tag_value))
        return JobPage.of([view(job)] if job is not None and matches else [], None)
    jobs, next_cursor = repo.list(workspace_id, limit=limit, cursor=cursor, tag_key=tag_key, tag_value=tag_value)
    return JobPage.of([view(j) for j in jobs], next_cursor)


def _has_tag(job: dict[str, Any], key: str, value: str | None) -> bool:
    tags = job.get("tags") or {}
    return key in tags and (value is None or tags[key] == value)


def update_job(caller: Caller, job_id: str, request: JobUpdate) -> Job:
    check_project(caller.workspace_id, request.project_id)
    before = find_job(caller.workspace_id, job_id)
    changes = request.model_dump(exclude_unset=True, exclude={"project_id", *SECRET_SETTINGS})
    _check_urls(changes)
    after = dict(before)
    for name, value in changes.items():
        if value is not None:
            after[name] = value
        elif name not in CORE_JOB_FIELDS:
            # null clears an optional setting; batchops' own fields keep their value.
            after.pop(name, None)
    after["headers"] = after.get("headers") or {}
    secret = _signing_secret(request)
    if secret is not None:
        after[SECRET_FIELD] = secret
    after["version"] = int(before.get("version", 1)) + 1
    after["updated_by"] = f"apikey:{caller.key_id}"
    after["updated_at"] = iso(datetime.now(UTC))
    _repository().replace(caller.workspace_id, before, after)
    return view(after)


def delete_job(workspace_id: str, job_id: str) -> None:
    """Delete the job as it is now: the delete is conditional on the version read, so a rename
    racing it cannot leave the new name or slug behind; it is read again and retried instead."""
    repo = _repository()
    for attempt in range(DELETE_ATTEMPTS):
        try:
            repo.delete(workspace_id, find_job(workspace_id, job_id))
            return
        except ConflictError as error:
            if error.code != JOB_CHANGED or attempt == DELETE_ATTEMPTS - 1:
                raise
