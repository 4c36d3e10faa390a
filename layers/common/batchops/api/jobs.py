"""Jobs surface (seed 001): /v1/jobs and their triggers. Plain snake_case objects, no envelope."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from batchops.api.context import current_caller
from batchops.api.openapi import responses
from batchops.api.router import SurfaceRouter
from batchops.models.jobs import BulkTriggerRequest, BulkTriggerResponse, JobCreate, JobUpdate, Run, TriggerRequest
from batchops.services import jobs, runs

router = SurfaceRouter("Jobs")

JobId = Annotated[str, Path(min_length=1, max_length=100, description="The job's id")]


@router.post("/v1/jobs", status_code=201, summary="Register a job (its signing secret is shown once)")
def create_job(request: Annotated[JobCreate, Body()]) -> dict[str, Any]:
    return jobs.create_job(current_caller().workspace_id, request)


@router.get("/v1/jobs", summary="Jobs of this workspace, newest first")
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    found, next_cursor = jobs.list_jobs(current_caller().workspace_id, limit=limit, cursor=cursor)
    return {"data": found, "next_cursor": next_cursor}


@router.get("/v1/jobs/{jobID}", summary="One job")
def get_job(jobID: JobId) -> dict[str, Any]:
    return jobs.get_job(current_caller().workspace_id, jobID)


@router.route("PATCH", "/v1/jobs/{jobID}", summary="Change a job (the endpoint URL is checked again)")
def update_job(jobID: JobId, request: Annotated[JobUpdate, Body()]) -> dict[str, Any]:
    return jobs.update_job(current_caller().workspace_id, jobID, request)


@router.route("DELETE", "/v1/jobs/{jobID}", status_code=204, summary="Delete a job (its runs are kept)")
def delete_job(jobID: JobId) -> Response[str]:
    jobs.delete_job(current_caller().workspace_id, jobID)
    return Response(status_code=204, body="")


@router.post(
    "/v1/jobs/{jobID}/trigger",
    status_code=202,
    summary="Create one run (200 with the earlier run when it is a duplicate)",
    responses={**responses(202, Run, 404, 409, 422), 200: {"description": "Duplicate: the existing run"}},
)
def trigger_job(jobID: JobId, request: Annotated[TriggerRequest, Body()]) -> Response[Any]:
    run, deduplicated = runs.trigger(current_caller().workspace_id, jobID, request)
    if deduplicated:
        return Response(200, content_types.APPLICATION_JSON, {**run, "deduplicated": True})
    return Response(202, content_types.APPLICATION_JSON, run)


@router.post(
    "/v1/jobs/{jobID}/trigger-bulk",
    status_code=201,
    summary="Create up to 500 runs and their batch operation",
    responses=responses(201, BulkTriggerResponse, 404, 409, 422),
)
def trigger_job_bulk(jobID: JobId, request: Annotated[BulkTriggerRequest, Body()]) -> dict[str, Any]:
    return runs.trigger_bulk(current_caller(), jobID, request)
