"""Jobs surface (seed 001): /v1/jobs and their triggers. Plain snake_case objects, no envelope,
in Strait's shapes where the seed is silent. The services answer with the response models; their
`body()` is what is sent."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from batchops.api.context import current_caller, current_idempotency_key
from batchops.api.openapi import GENERATED_ID, errors, responses
from batchops.api.router import SurfaceRouter
from batchops.models.jobs import (
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    BulkTriggerRequest,
    BulkTriggerResponse,
    DryRunResponse,
    Job,
    JobCreate,
    JobPage,
    JobUpdate,
    TriggerRequest,
    TriggerResponse,
)
from batchops.services import jobs, runs

router = SurfaceRouter("Jobs")

JobId = Annotated[str, Path(min_length=1, max_length=100, pattern=GENERATED_ID, description="The job's id")]
Limit = Annotated[int, Query(ge=1, description="Page size: 50 unless given; more than 100 is served 100 (Strait)")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
ProjectId = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="The caller's workspace (the default); any other is 404"),
]


@router.post(
    "/v1/jobs",
    status_code=201,
    summary="Register a job (its signing secret is shown once)",
    responses=responses(201, Job, 404, 409, 422),
)
def create_job(request: Annotated[JobCreate, Body()]) -> dict[str, Any]:
    return jobs.create_job(current_caller(), request).body()


@router.get("/v1/jobs", summary="Jobs of this workspace, newest first", responses=responses(200, JobPage, 404, 422))
def list_jobs(
    limit: Limit = DEFAULT_PAGE_LIMIT,
    cursor: Cursor = None,
    project_id: ProjectId = None,
    slug: Annotated[str | None, Query(max_length=255, description="Only the job with this slug")] = None,
    tag_key: Annotated[str | None, Query(max_length=64)] = None,
    tag_value: Annotated[str | None, Query(max_length=256, description="Needs tag_key")] = None,
) -> dict[str, Any]:
    return jobs.list_jobs(
        current_caller().workspace_id,
        limit=min(limit, MAX_PAGE_LIMIT),
        cursor=cursor,
        project_id=project_id,
        slug=slug,
        tag_key=tag_key,
        tag_value=tag_value,
    ).body()


@router.get("/v1/jobs/{jobID}", summary="One job", responses=responses(200, Job, 404, 422))
def get_job(jobID: JobId, project_id: ProjectId = None) -> dict[str, Any]:
    return jobs.get_job(current_caller().workspace_id, jobID, project_id=project_id).body()


@router.route(
    "PATCH",
    "/v1/jobs/{jobID}",
    summary="Change a job (the endpoint URL is checked again)",
    responses=responses(200, Job, 404, 409, 422),
)
def update_job(jobID: JobId, request: Annotated[JobUpdate, Body()]) -> dict[str, Any]:
    return jobs.update_job(current_caller(), jobID, request).body()


@router.route("DELETE", "/v1/jobs/{jobID}", status_code=204, summary="Delete a job (its runs are kept)")
def delete_job(jobID: JobId) -> Response[str]:
    jobs.delete_job(current_caller().workspace_id, jobID)
    return Response(status_code=204, body="")


@router.post(
    "/v1/jobs/{jobID}/trigger",
    status_code=201,
    summary="Create one run (200 with the earlier run for a repeated idempotency key)",
    description=(
        "The run-level idempotency key is the `Idempotency-Key` (or `X-Idempotency-Key`) header, "
        "or the body's `idempotency_key`. A dry run answers 200 with what would run."
    ),
    responses={
        **responses(201, TriggerResponse, 404, 409, 422),
        200: {
            "description": "The job's existing run for this idempotency key (`idempotency_hit: true`), or a dry run",
            "content": {"application/json": {"model": TriggerResponse | DryRunResponse}},
        },
    },
)
def trigger_job(jobID: JobId, request: Annotated[TriggerRequest, Body()]) -> Response[Any]:
    answer = runs.trigger(current_caller(), jobID, request, current_idempotency_key())
    status = 200 if answer.idempotency_hit or answer.dry_run else 201
    return Response(status, content_types.APPLICATION_JSON, answer.body.body())


def _bulk(job_id: str, request: BulkTriggerRequest) -> dict[str, Any]:
    return runs.trigger_bulk(current_caller(), job_id, request).body()


_BULK_RESPONSES = {**responses(201, BulkTriggerResponse, 404, 409, 422), **errors(503)}


@router.post(
    "/v1/jobs/{jobID}/trigger-bulk",
    status_code=201,
    summary="Create up to 500 runs and their batch operation (the seed's path)",
    responses=_BULK_RESPONSES,
)
def trigger_job_bulk(jobID: JobId, request: Annotated[BulkTriggerRequest, Body()]) -> dict[str, Any]:
    return _bulk(jobID, request)


@router.post(
    "/v1/jobs/{jobID}/trigger/bulk",
    status_code=201,
    summary="Create up to 500 runs and their batch operation (Strait's path, as its SDK calls it)",
    responses=_BULK_RESPONSES,
)
def trigger_job_bulk_strait(jobID: JobId, request: Annotated[BulkTriggerRequest, Body()]) -> dict[str, Any]:
    return _bulk(jobID, request)
