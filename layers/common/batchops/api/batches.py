"""Batches surface (seed 002): /v1/batches and /v1/webhooks, in the seed's envelope
`{"success": true, "data": ...}` and snake_case."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from batchops.api.context import current_caller
from batchops.api.openapi import GENERATED_ID, errors, responses
from batchops.api.router import SurfaceRouter
from batchops.models.batches import (
    BatchCancel,
    BatchCreate,
    BatchPage,
    BatchRetry,
    BatchStatus,
    BatchView,
    CreatedBatch,
    Priority,
    envelope_of,
)
from batchops.models.webhooks import CreatedWebhook, WebhookCreate
from batchops.services import batches, webhooks

router = SurfaceRouter("Batches")

BatchId = Annotated[str, Path(min_length=1, max_length=100, pattern=GENERATED_ID, description="The batch's id")]
WebhookId = Annotated[
    str, Path(min_length=1, max_length=100, pattern=GENERATED_ID, description="The subscription's id")
]
Flag = Annotated[bool, Query(description="true/false (or 1/0)")]
Sort = Literal["created_at", "-created_at", "started_at", "-started_at", "priority", "-priority", "name", "-name"]
FILE_TYPES = ("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/pdf")


def ok(data: Any, status: int = 200, **extra: Any) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, {"success": True, "data": data, **extra})


@router.post(
    "/v1/batches",
    status_code=201,
    summary="Create a batch of jobs (its signing secret is shown once)",
    responses=responses(201, envelope_of(CreatedBatch), 422, 503),
)
def create_batch(request: Annotated[BatchCreate, Body()]) -> Response[Any]:
    """422 INVALID_JOB_CONFIG / UNSAFE_URL (with the job's index), BATCH_SIZE_EXCEEDED or
    INSUFFICIENT_RESOURCES come before the plan's quotas (429 QUOTA_EXCEEDED with Retry-After)."""
    return ok(batches.create_batch(current_caller(), request), 201)


@router.get("/v1/batches", summary="Batches of this workspace", responses=responses(200, BatchPage, 422))
def list_batches(
    status: Annotated[BatchStatus | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    priority: Annotated[Priority | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    sort: Annotated[Sort, Query(description="A field, `-` first for descending")] = "-created_at",
) -> Response[Any]:
    found, pagination = batches.list_batches(
        current_caller().workspace_id,
        status=status,
        batch_type=type,
        priority=priority,
        page=page,
        per_page=per_page,
        sort=sort,
    )
    return ok(found, pagination=pagination)


@router.get(
    "/v1/batches/{batch_id}",
    summary="A batch's status and progress",
    responses=responses(200, envelope_of(BatchView), 404),
)
def get_batch(
    batch_id: BatchId,
    include_jobs: Flag = False,
    job_status: Annotated[
        Literal["queued", "running", "completed", "failed", "cancelled", "timed_out"] | None, Query()
    ] = None,
) -> Response[Any]:
    view = batches.get_batch(current_caller().workspace_id, batch_id, include_jobs=include_jobs, job_status=job_status)
    return ok(view)


@router.get(
    "/v1/batches/{batch_id}/results",
    summary="A batch's results: JSON, or a CSV, XLSX or PDF file",
    returns_files=True,
    responses={
        200: {
            "description": "JSON results, or the file (Content-Disposition: attachment)",
            "content": {"application/json": {}, **{t: {} for t in FILE_TYPES}},
        },
        303: {"description": "The export is too large for a response: Location is its presigned link"},
        **errors(400, 401, 404, 422, 429),
    },
)
def get_batch_results(
    batch_id: BatchId,
    format: Annotated[Literal["json", "csv", "xlsx", "pdf"], Query()] = "json",
    include_raw: Flag = False,
    jobs: Annotated[str | None, Query(max_length=10_000, description="Comma-separated job ids")] = None,
) -> Response[Any]:
    wanted = [j.strip() for j in jobs.split(",") if j.strip()] if jobs else None
    found = batches.results(current_caller().workspace_id, batch_id, fmt=format, include_raw=include_raw, jobs=wanted)
    if isinstance(found, dict):
        return ok(found)
    if found.data is None:
        return Response(
            303,
            content_types.APPLICATION_JSON,
            {"success": True, "data": {"download_url": found.link}},
            headers={"Location": str(found.link)},
        )
    # Bytes leave Lambda base64-encoded, which API Gateway decodes only for its BinaryMediaTypes
    # (PDF, XLSX); CSV is text and goes as text.
    text = found.content_type.startswith("text/")
    return Response(
        200,
        found.content_type,
        found.data.decode("utf-8") if text else found.data,
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )


@router.route(
    "DELETE",
    "/v1/batches/{batch_id}",
    summary="Cancel a queued or running batch",
    responses=responses(200, envelope_of(CreatedBatch), 404, 409),
)
def cancel_batch(batch_id: BatchId, request: Annotated[BatchCancel | None, Body()] = None) -> Response[Any]:
    return ok(batches.cancel_batch(current_caller().workspace_id, batch_id, request or BatchCancel()))


@router.post(
    "/v1/batches/{batch_id}/retry",
    status_code=201,
    summary="Retry failed, cancelled or timed-out jobs in a new batch",
    responses=responses(201, envelope_of(CreatedBatch), 404, 409, 422),
)
def retry_batch(batch_id: BatchId, request: Annotated[BatchRetry | None, Body()] = None) -> Response[Any]:
    return ok(batches.retry_batch(current_caller(), batch_id, request or BatchRetry()), 201)


@router.post(
    "/v1/webhooks",
    status_code=201,
    summary="Subscribe a URL to batch events (its secret is shown once)",
    responses=responses(201, envelope_of(CreatedWebhook), 409, 422),
)
def create_webhook(request: Annotated[WebhookCreate, Body()]) -> Response[Any]:
    return ok(webhooks.create_subscription(current_caller().workspace_id, request), 201)


@router.get("/v1/webhooks", summary="This workspace's webhook subscriptions")
def list_webhooks() -> Response[Any]:
    return ok(webhooks.list_subscriptions(current_caller().workspace_id))


@router.route("DELETE", "/v1/webhooks/{webhook_id}", status_code=204, summary="Delete a subscription")
def delete_webhook(webhook_id: WebhookId) -> Response[str]:
    webhooks.delete_subscription(current_caller().workspace_id, webhook_id)
    return Response(status_code=204, body="")


@router.get("/v1/webhooks/{webhook_id}/deliveries", summary="A subscription's delivery log, newest first")
def list_webhook_deliveries(webhook_id: WebhookId) -> Response[Any]:
    return ok(webhooks.list_deliveries(current_caller().workspace_id, webhook_id))
