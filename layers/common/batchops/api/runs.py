"""Runs and batch operations (seed 001): /v1/runs and /v1/batch-operations, read only."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from batchops.api.context import current_caller
from batchops.api.openapi import responses
from batchops.api.router import SurfaceRouter
from batchops.models.jobs import BatchOperation, BatchOperationPage, Run, RunPage, RunStatus
from batchops.services import runs

router = SurfaceRouter("Runs")

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
ProjectId = Annotated[str, Query(min_length=1, max_length=100, description="Must be the caller's workspace")]


@router.get("/v1/runs/{runID}", summary="One run", responses=responses(200, Run, 404))
def get_run(runID: Annotated[str, Path(min_length=1, max_length=100)]) -> dict[str, Any]:
    return runs.get_run(current_caller().workspace_id, runID)


@router.get("/v1/runs", summary="Runs, newest first", responses=responses(200, RunPage, 422))
def list_runs(
    job_id: Annotated[str | None, Query(max_length=100)] = None,
    batch_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> dict[str, Any]:
    found, next_cursor = runs.list_runs(
        current_caller().workspace_id, job_id=job_id, batch_id=batch_id, status=status, limit=limit, cursor=cursor
    )
    return {"data": found, "next_cursor": next_cursor}


@router.get(
    "/v1/batch-operations",
    summary="Bulk-trigger batch operations of a project, newest first",
    responses=responses(200, BatchOperationPage, 404, 422),
)
def list_batch_operations(project_id: ProjectId, limit: Limit = 20, cursor: Cursor = None) -> dict[str, Any]:
    found, next_cursor = runs.list_batch_operations(
        current_caller().workspace_id, project_id, limit=limit, cursor=cursor
    )
    return {"data": found, "next_cursor": next_cursor}


@router.get(
    "/v1/batch-operations/{batchID}",
    summary="One batch operation with live run counts",
    responses=responses(200, BatchOperation, 404, 422),
)
def get_batch_operation(
    batchID: Annotated[str, Path(min_length=1, max_length=100)], project_id: ProjectId
) -> dict[str, Any]:
    return runs.get_batch_operation(current_caller().workspace_id, project_id, batchID)
