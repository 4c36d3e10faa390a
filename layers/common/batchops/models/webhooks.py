"""Webhooks of the Batches surface (seed 002, "Webhook Events"), in the seed's snake_case: the
subscription request with its bounds, the event and status vocabularies, and the response shapes
for the OpenAPI document."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import ConfigDict, Field, field_validator

from batchops.models.base import Model
from batchops.models.validation import HTTP_URL_PATTERN

BatchEvent = Literal[
    "batch.created",
    "batch.started",
    "batch.progress",
    "batch.job_completed",
    "batch.completed",
    "batch.failed",
    "batch.cancelled",
]
BATCH_EVENTS: tuple[BatchEvent, ...] = get_args(BatchEvent)
# The events that also send the batch's notification email (options.notification.email): the
# batch is over and someone may be waiting for it. A cancellation was asked for by a client, who
# knows already, so it sends none.
EMAIL_EVENTS = ("batch.completed", "batch.failed")

WebhookStatus = Literal["active", "disabled"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
# subscription: a workspace subscription (POST /v1/webhooks); batch: a batch's own
# options.notification.webhook; email: a batch's options.notification.email.
TargetKind = Literal["subscription", "batch", "email"]


class WebhookCreate(Model):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="http(s) URL on a public address; private, loopback and link-local addresses are refused",
        json_schema_extra={"pattern": HTTP_URL_PATTERN},
    )
    events: list[BatchEvent] = Field(min_length=1, description="The events to receive, each at most once")

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[BatchEvent]) -> list[BatchEvent]:
        # Rejected rather than silently merged: a repeated event is most likely a typo for another one.
        repeated = sorted({event for event in value if value.count(event) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once; name each event once")
        return value


# ---------------------------------------------------------------- response shapes (OpenAPI)
class Webhook(Model):
    id: str
    url: str
    events: list[BatchEvent]
    status: WebhookStatus = Field(description="disabled: the receiver answered 410 Gone; nothing more is sent")
    created_at: str
    disabled_at: str | None
    disabled_reason: str | None


class CreatedWebhook(Webhook):
    secret: str = Field(
        description="Standard Webhooks signing secret (whsec_...); shown only in this response, keep it safe"
    )


class WebhookDelivery(Model):
    id: str = Field(description="Also the webhook-id header of every attempt: receivers drop repeats by it")
    event: BatchEvent
    status: DeliveryStatus
    attempts: int = Field(description="Attempts started so far")
    last_status_code: int | None = Field(description="HTTP status of the last attempt; null without one")
    next_attempt_at: str | None = Field(description="When a pending delivery is tried next")
    created_at: str
