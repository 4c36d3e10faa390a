"""`batchops webhooks ...`: webhook subscriptions (`/v1/webhooks`) and checking a delivery."""

from __future__ import annotations

from typing import IO, Optional

import click

from batchops_client.cli._base import BatchopsGroup
from batchops_client.cli.options import make_client
from batchops_client.cli.output import FAILED, InputError, error_line, examples, show_record, show_table
from batchops_client.errors import WebhookVerificationError
from batchops_client.resources.webhooks import verify_webhook

WEBHOOK_COLUMNS = [("ID", "id"), ("URL", "url"), ("EVENTS", "events"), ("STATUS", "status"), ("CREATED", "created_at")]
DELIVERY_COLUMNS = [
    ("ID", "id"),
    ("EVENT", "event"),
    ("STATUS", "status"),
    ("ATTEMPTS", "attempts"),
    ("LAST HTTP", "last_status_code"),
    ("NEXT ATTEMPT", "next_attempt_at"),
    ("CREATED", "created_at"),
]
EVENTS = (
    "batch.created",
    "batch.started",
    "batch.progress",
    "batch.job_completed",
    "batch.completed",
    "batch.failed",
    "batch.cancelled",
)


@click.group(
    cls=BatchopsGroup,
    epilog=examples(
        "batchops webhooks create --url https://example.com/hooks --event batch.completed",
        "batchops webhooks deliveries wh_123",
    ),
)
def webhooks() -> None:
    """Webhook subscriptions: create, list, delete, delivery log; verify a delivery's signature."""


@webhooks.command(
    epilog="""\b
Example:
  batchops webhooks create --url https://example.com/hooks/batchops --event batch.completed --event batch.failed"""
)
@click.option("--url", required=True, help="HTTPS endpoint that receives the deliveries")
@click.option("--event", "events", multiple=True, required=True, type=click.Choice(EVENTS), help="repeatable")
@click.option("--idempotency-key", help="Idempotency-Key header (default: a new one)")
def create(url: str, events: tuple[str, ...], idempotency_key: Optional[str]) -> None:
    """Subscribe a URL to batch events (POST /v1/webhooks). Its secret is shown only here."""
    hook = make_client(click.get_current_context()).webhooks.create(url, list(events), idempotency_key=idempotency_key)
    show_record(hook, title=f"webhook {hook.id} created")


@webhooks.command(
    "list",
    epilog="""\b
Example:
  batchops webhooks list""",
)
def list_webhooks() -> None:
    """The workspace's subscriptions (GET /v1/webhooks)."""
    show_table(make_client(click.get_current_context()).webhooks.list(), WEBHOOK_COLUMNS)


@webhooks.command(
    epilog="""\b
Example:
  batchops webhooks delete wh_123"""
)
@click.argument("webhook_id")
def delete(webhook_id: str) -> None:
    """Delete a subscription (DELETE /v1/webhooks/{id})."""
    make_client(click.get_current_context()).webhooks.delete(webhook_id)
    show_record({"deleted": webhook_id})


@webhooks.command(
    epilog="""\b
Example:
  batchops webhooks deliveries wh_123"""
)
@click.argument("webhook_id")
def deliveries(webhook_id: str) -> None:
    """A subscription's delivery log, newest first (GET /v1/webhooks/{id}/deliveries)."""
    items = make_client(click.get_current_context()).webhooks.deliveries(webhook_id)
    show_table(items, DELIVERY_COLUMNS, title=f"deliveries of {webhook_id}")


@webhooks.command(
    epilog="""\b
Example:
  batchops webhooks verify body.json --secret whsec_... \\
    --header 'webhook-id: msg_2x' --header 'webhook-timestamp: 1765100000' \\
    --header 'webhook-signature: v1,K5oZ...'"""
)
@click.argument("payload", type=click.File("rb"))
@click.option(
    "--secret", envvar="BATCHOPS_WEBHOOK_SECRET", required=True, help="whsec_... [env: BATCHOPS_WEBHOOK_SECRET]"
)
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="a delivery header (repeatable)")
def verify(payload: IO[bytes], secret: str, headers: tuple[str, ...]) -> None:
    """Check a delivery's Standard Webhooks signature locally (no API call) and show its event.
    PAYLOAD is the body exactly as received (- for stdin). Exits 1 when the check fails."""
    parsed: dict[str, str] = {}
    for header in headers:
        name, colon, value = header.partition(":")
        if not colon or not name.strip():
            raise InputError(f"--header {header!r}: expected 'NAME: VALUE'")
        parsed[name.strip().lower()] = value.strip()
    try:
        event = verify_webhook(payload.read(), parsed, secret)
    except WebhookVerificationError as error:
        click.echo(error_line(error), err=True)
        raise click.exceptions.Exit(FAILED) from error
    show_record(event, title="signature valid")
