"""Runs and batch operations (seed 001): /v1/runs and /v1/batch-operations, read only.

The project is the caller's workspace (Strait takes it from the API key): `project_id` may be
left out, and another workspace's is 404 like an unknown id. The services answer with the
response models; their `body()` is what is sent."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from batchops.api.context import current_caller
from batchops.api.openapi import GENERATED_ID, responses
from batchops.api.router import SurfaceRouter
from batchops.errors import ValidationFailedError
from batchops.models.jobs import (
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    BatchOperation,
    BatchOperationPage,
    Run,
    RunPage,
    RunState,
)
from batchops.services import runs

router = SurfaceRouter("Runs")

Limit = Annotated[int, Query(ge=1, description="Page size: 50 unless given; more than 100 is served 100 (Strait)")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
ProjectId = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="The caller's workspace (the default); any other is 404"),
]
Label = Annotated[str | None, Query(max_length=256)]


@router.get("/v1/runs/{runID}", summary="One run", responses=responses(200, Run, 404, 422))
def get_run(
    runID: Annotated[str, Path(min_length=1, max_length=100, pattern=GENERATED_ID)], project_id: ProjectId = None
) -> dict[str, Any]:
    return runs.get_run(current_caller().workspace_id, runID, project_id=project_id).body()


def _states(values: list[str] | None) -> tuple[RunState, ...]:
    """`statuses` as Strait takes it: repeated, or comma-separated."""
    names = [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in {state.value for state in RunState}]
    if unknown:
        allowed = ", ".join(RunState)
        raise ValidationFailedError(
            "Invalid status filter",
            details=[{"field": "statuses", "error": f"{unknown[0]!r} is not one of {allowed}"}],
        )
    return tuple(RunState(name) for name in names)


@router.get(
    "/v1/runs",
    summary="Runs, newest first",
    description="A page holds at most `limit` runs, and fewer when they would not fit one answer (`has_more`).",
    responses=responses(200, RunPage, 404, 422),
)
def list_runs(
    project_id: ProjectId = None,
    job_id: Annotated[str | None, Query(max_length=100)] = None,
    batch_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[RunState | None, Query()] = None,
    statuses: Annotated[list[str] | None, Query(description="Several statuses: repeated or comma-separated")] = None,
    tag_key: Annotated[str | None, Query(max_length=64)] = None,
    tag_value: Label = None,
    metadata_key: Annotated[str | None, Query(max_length=64)] = None,
    metadata_value: Label = None,
    limit: Limit = DEFAULT_PAGE_LIMIT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    return runs.list_runs(
        current_caller().workspace_id,
        limit=min(limit, MAX_PAGE_LIMIT),
        cursor=cursor,
        project_id=project_id,
        job_id=job_id,
        batch_id=batch_id,
        statuses=(*([status] if status else []), *_states(statuses)),
        tag_key=tag_key,
        tag_value=tag_value,
        metadata_key=metadata_key,
        metadata_value=metadata_value,
    ).body()


@router.get(
    "/v1/batch-operations",
    summary="Bulk-trigger batch operations of the caller's project, newest first",
    responses=responses(200, BatchOperationPage, 404, 422),
)
def list_batch_operations(
    project_id: ProjectId = None, limit: Limit = DEFAULT_PAGE_LIMIT, cursor: Cursor = None
) -> dict[str, Any]:
    return runs.list_batch_operations(
        current_caller().workspace_id, project_id, limit=min(limit, MAX_PAGE_LIMIT), cursor=cursor
    ).body()


@router.get(
    "/v1/batch-operations/{batchID}",
    summary="One batch operation",
    responses=responses(200, BatchOperation, 404, 422),
)
def get_batch_operation(
    batchID: Annotated[str, Path(min_length=1, max_length=100, pattern=GENERATED_ID)], project_id: ProjectId = None
) -> dict[str, Any]:
    return runs.get_batch_operation(current_caller().workspace_id, project_id, batchID).body()
