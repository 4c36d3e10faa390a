"""Webhooks (`/v1/webhooks`): subscriptions, their delivery log, and the events they deliver.
The Batches surface speaks snake_case, so the wire keys are the attribute names."""

from __future__ import annotations

from typing import Any, Optional

from batchops_client.models._base import Model


class Webhook(Model):
    """A subscription. `secret` (Standard Webhooks, `whsec_...`) is present only in the answer to
    `webhooks.create`: keep it to verify deliveries."""

    id: str
    url: str
    events: list[str] = []
    status: str = "active"
    created_at: Optional[str] = None
    disabled_at: Optional[str] = None
    disabled_reason: Optional[str] = None
    secret: Optional[str] = None


class WebhookDelivery(Model):
    """One delivery of a subscription's log; `id` is also the `webhook-id` header of every attempt."""

    id: str
    event: str
    status: str
    attempts: int = 0
    last_status_code: Optional[int] = None
    next_attempt_at: Optional[str] = None
    created_at: Optional[str] = None


class WebhookEvent(Model):
    """A verified delivery's body: `{"event", "batch_id", "timestamp", "data"}`."""

    event: Optional[str] = None
    batch_id: Optional[str] = None
    timestamp: Optional[str] = None
    data: Any = None
