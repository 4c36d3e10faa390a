"""Webhooks of the Batches surface (seed 002): workspace subscriptions, emitting batch events, and
delivering each one, signed and retried.

An event is emitted once per target as a *delivery*: a stored item whose id is derived from the
target and the caller's event key, written only if absent, so the same event emitted twice (a
redelivered worker message, two items finishing at once) creates and sends nothing the second
time. Each new delivery gets one message on the webhook queue; the dispatcher calls `deliver` per
message. A delivery keeps the exact body it sends on every attempt and its id is the
`webhook-id` header each time, so receivers can drop repeats (Standard Webhooks).

Delivery is at least once. An attempt first claims the delivery (attempt count n -> n+1, with a
short lease) by a conditional write, calls the target, and records the outcome by a conditional
write on (pending, n+1); a duplicate message finds the delivery finished (and is dropped) or
leased or not yet due (and is hidden until then), and sends nothing. Retries hide the message
for the backoff delay; on the queue's last receive a retryable failure marks the delivery failed
and the message is done with. The DLQ receives only messages no attempt could be made for (an
AWS outage through every receive, a lease held to the last receive): their deliveries are still
pending, so a redrive finishes them. A delivery recorded as failed is final, and a redriven copy
of it would send nothing.

Not here yet: a sweep that resends overdue pending deliveries (a message SQS refused at emission,
or one lost before its delivery finished). It needs a sparse index of pending deliveries (a key
in dal/keys.py, e.g. on gsi2 by next_attempt_at); every delivery already carries
next_attempt_at, and `deliver` is safe to call for any of them any number of times.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit

from batchops.dal.email import send_email
from batchops.dal.items import iso
from batchops.dal.messaging import delay_message, send_messages
from batchops.dal.webhooks import WebhookRepository, public_delivery, public_webhook
from batchops.errors import ConflictError, NotFoundError, StorageError
from batchops.executors import http_call, url_safety
from batchops.executors.webhook_signing import new_signing_secret, signed_headers
from batchops.models.webhooks import BATCH_EVENTS, EMAIL_EVENTS, WebhookCreate
from batchops.observability import logger, metrics
from batchops.services import rate_limits
from batchops.services.run_policy import MAX_DELAY_SECONDS, retry_delay, retryable
from batchops.settings import get_settings

# Each call to a receiver must finish within this, and at most this much of its answer is read.
CALL_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
# A claimed attempt owns its delivery until the call's timeout plus this; later, another message
# may take the delivery over (its claimer died mid-call).
LEASE_MARGIN_SECONDS = 60
# Every emission reads and fans out to all of a workspace's subscriptions: keep that bounded.
MAX_SUBSCRIPTIONS = 20
MAX_LOG_ENTRIES = 100
USER_AGENT = "batchops-webhooks/1"
WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
GONE_REASON = "The receiver answered 410 Gone"


def _repository() -> WebhookRepository:
    return WebhookRepository(get_settings().table_name)


def _now() -> datetime:
    return datetime.now(UTC)


def _count(name: str) -> None:
    metrics().add_metric(name=name, unit=MetricUnit.Count, value=1)


# ---------------------------------------------------------------- subscriptions
def create_subscription(workspace_id: str, request: WebhookCreate) -> dict[str, Any]:
    """Register a subscription; the answer carries its signing secret, the only time it is shown.

    The URL's form and literal address are checked here (UnsafeUrlError / InvalidUrlError), and
    again after DNS resolution before every call, so a name that later points inside is refused."""
    url_safety.check_url(request.url, allow_loopback=get_settings().local_mode)
    repo = _repository()
    if len(repo.list(workspace_id)) >= MAX_SUBSCRIPTIONS:
        raise ConflictError(
            f"A workspace has at most {MAX_SUBSCRIPTIONS} webhooks; delete one first", code="WEBHOOK_LIMIT_REACHED"
        )
    secret = new_signing_secret()
    webhook: dict[str, Any] = {
        "id": f"wh_{uuid.uuid4().hex}",
        "workspace_id": workspace_id,
        "url": request.url,
        "events": list(request.events),
        "status": "active",
        "created_at": iso(_now()),
        "signing_secret": secret,
    }
    if not repo.put(workspace_id, webhook):
        raise ConflictError("A webhook with this id exists; try again", code="WEBHOOK_EXISTS")
    return {**public_webhook(webhook), "secret": secret}


def list_subscriptions(workspace_id: str) -> list[dict[str, Any]]:
    """Every subscription of the workspace, oldest first, without secrets."""
    return [public_webhook(item) for item in _repository().list(workspace_id)]


def _not_found(webhook_id: str) -> NotFoundError:
    return NotFoundError(f"Webhook {webhook_id} not found", code=WEBHOOK_NOT_FOUND)


def delete_subscription(workspace_id: str, webhook_id: str) -> None:
    """Deliveries still pending for it fail at their next attempt; its log expires with its TTL."""
    if not _repository().delete(workspace_id, webhook_id):
        raise _not_found(webhook_id)


def list_deliveries(workspace_id: str, webhook_id: str, *, limit: int = MAX_LOG_ENTRIES) -> list[dict[str, Any]]:
    """A subscription's delivery log, newest first (at most 100 entries)."""
    repo = _repository()
    if repo.get(workspace_id, webhook_id) is None:
        raise _not_found(webhook_id)
    bounded = max(1, min(limit, MAX_LOG_ENTRIES))
    return [
        public_delivery(item) for item in repo.list_deliveries(workspace_id, "subscription", webhook_id, limit=bounded)
    ]


# ---------------------------------------------------------------- emitting
def _timestamp(moment: datetime) -> str:
    """The seed's payload timestamp: UTC to the second, with Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _delivery_id(target: str, batch_id: str, event: str, event_key: str) -> str:
    digest = hashlib.sha256(f"{target}|{batch_id}|{event}|{event_key}".encode()).hexdigest()
    return f"whd_{digest[:32]}"


# Notification emails a workspace may have sent per day. The recipient is any address a client
# names (seed 002's options.notification.email), from batchops' own verified sender: without a cap
# batchops would relay as much mail as batch quotas allow (docs/threat-model.md, API6).
NOTIFICATION_EMAILS_PER_DAY = 100
EMAIL_LIMIT_REACHED = "The workspace's daily limit of notification emails was reached; this one was not sent"
# Client-written text stays out of the email (its subject and body come from batchops' sender, so
# a batch named like a phishing lure must not read as one): the batch is named by its id only.
_CLIENT_TEXT = ("name", "metadata", "description")


def _email(event: str, batch_id: str, data: dict[str, Any], timestamp: str) -> tuple[str, str]:
    """Subject and plain text of a notification email, fixed at emission like a webhook body."""
    verb = event.removeprefix("batch.")
    lines = [f"Batch {batch_id} {verb} at {timestamp}."]
    jobs = data.get("jobs")
    if isinstance(jobs, dict):
        counts = ", ".join(f"{key} {value}" for key, value in jobs.items() if isinstance(value, int))
        if counts:
            lines.append(f"Jobs: {counts}.")
    shown = {key: value for key, value in data.items() if key not in _CLIENT_TEXT}
    lines += [
        "",
        "Event data:",
        json.dumps(shown, indent=2, ensure_ascii=False, default=str),
        "",
        "You receive this email because the batch was created with options.notification.email.",
    ]
    return f"batchops: batch {batch_id} {verb}", "\n".join(lines)


def emit(
    workspace_id: str,
    event: str,
    batch_id: str,
    data: dict[str, Any],
    *,
    event_key: str,
    batch_webhook: tuple[str, str] | None = None,
    email: str | None = None,
) -> int:
    """Emit one batch event to every target; return how many deliveries were created.

    Targets: the batch's own webhook (`batch_webhook` = (url, the batch's signing secret)); every
    active subscription of the workspace that lists `event` (in a worker, as read when its
    invocation started: `dal.webhooks.subscriptions_read_once` says why that is the promise);
    and the notification `email` for batch.completed and batch.failed only (a cancellation was
    asked for by a client, who knows already). `event_key` names the occurrence (e.g.
    f"{batch_id}:progress:50"): emitting the same key again creates and sends nothing. The
    payload is the seed's {"event", "batch_id", "timestamp", "data"}, one body text for all targets and all attempts.

    Safe to repeat, and repeated until it succeeds: the caller keeps the event in the batch's
    outbox until this returns. A repeat stores no second delivery, and queues again each delivery
    of the event that is still pending (its message may never have reached SQS; a duplicate
    message is harmless, an attempt being claimed conditionally). Raises StorageError when SQS
    would not take every message (metric WebhookEnqueueFailed)."""
    if event not in BATCH_EVENTS:
        raise ValueError(f"unknown batch event {event!r}")
    settings = get_settings()
    repo = _repository()
    now = _now()
    timestamp = _timestamp(now)
    body = json.dumps(
        {"event": event, "batch_id": batch_id, "timestamp": timestamp, "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    targets: list[tuple[str, dict[str, Any]]] = []
    if batch_webhook is not None:
        url, secret = batch_webhook
        if not secret:
            raise ValueError("a batch webhook needs the batch's signing secret")
        targets.append(
            (f"batch:{batch_id}", {"target_kind": "batch", "target_id": batch_id, "url": url, "signing_secret": secret})
        )
    for webhook in repo.subscriptions_to_notify(workspace_id):
        if webhook.get("status") == "active" and event in (webhook.get("events") or []):
            targets.append(
                (
                    f"subscription:{webhook['id']}",
                    {"target_kind": "subscription", "target_id": webhook["id"], "url": webhook["url"]},
                )
            )
    if email and event in EMAIL_EVENTS:
        subject, text = _email(event, batch_id, data, timestamp)
        targets.append(
            (
                f"email:{batch_id}:{email}",
                {"target_kind": "email", "target_id": batch_id, "email": email, "subject": subject, "text": text},
            )
        )
    created_at = iso(now)
    expires_at = int(now.timestamp()) + settings.job_retention_seconds
    created: list[str] = []
    to_queue: list[str] = []
    for target, fields in targets:
        delivery_id = _delivery_id(target, batch_id, event, event_key)
        delivery = {
            "id": delivery_id,
            "workspace_id": workspace_id,
            **fields,
            "batch_id": batch_id,
            "event": event,
            "event_key": event_key,
            "payload_json": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": created_at,
            "created_at": created_at,
            "expires_at": expires_at,
        }
        if repo.put_new_delivery(delivery):
            created.append(delivery_id)
            to_queue.append(delivery_id)
        else:
            stored = repo.get_delivery(workspace_id, delivery_id)
            if stored is not None and stored.get("status") == "pending" and not int(stored.get("attempts") or 0):
                to_queue.append(delivery_id)
    if to_queue:
        _enqueue(workspace_id, to_queue)
    return len(created)


def _enqueue(workspace_id: str, delivery_ids: list[str]) -> None:
    queue_url = get_settings().webhook_queue_url
    messages: list[dict[str, Any] | str] = [{"workspace_id": workspace_id, "delivery_id": d} for d in delivery_ids]
    unsent = send_messages(queue_url, messages) if queue_url else list(range(len(delivery_ids)))
    if unsent:
        lost = [delivery_ids[i] for i in unsent]
        logger().error(
            "Webhook deliveries could not be queued; they stay pending and are queued again",
            extra={"workspace_id": workspace_id, "delivery_ids": lost, "queue_configured": bool(queue_url)},
        )
        metrics().add_metric(name="WebhookEnqueueFailed", unit=MetricUnit.Count, value=len(lost))
        raise StorageError(f"{len(lost)} webhook deliveries not queued yet")


# ---------------------------------------------------------------- delivering
@dataclass(frozen=True)
class _Result:
    """One attempt's outcome, in delivery terms."""

    kind: Literal["delivered", "retry", "failed", "gone"]
    status_code: int | None = None
    error: str | None = None
    retry_after: str | None = None
    provider_id: str | None = None


def _classify(outcome: http_call.CallOutcome) -> _Result:
    """2xx delivered; 410 gone; 408, 429, 5xx, timeouts and connection errors retried; any other
    status (redirects are not followed) and an unsafe or invalid URL fail at once."""
    status = outcome.http_status
    if status is not None:
        if 200 <= status < 300:
            return _Result("delivered", status)
        note = "; redirects are not followed" if 300 <= status < 400 else ""
        error = f"The receiver answered HTTP {status}{note}"
        if status == 410:
            return _Result("gone", status, error)
        return _Result("retry" if retryable(status) else "failed", status, error, outcome.retry_after)
    error = f"{outcome.error_code}: {outcome.message}"[:500]
    return _Result("retry" if outcome.error_code in ("TIMEOUT", "CONNECTION_ERROR") else "failed", None, error)


def _call(url: str, secret: str, delivery_id: str, body: str) -> _Result:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # Signed at each attempt (a fresh timestamp), always with the delivery id as webhook-id.
        **signed_headers(secret, delivery_id, body),
    }
    outcome = http_call.call(
        url,
        method="POST",
        headers=headers,
        body=body,
        timeout_seconds=CALL_TIMEOUT_SECONDS,
        max_body_bytes=MAX_RESPONSE_BYTES,
        allow_loopback=get_settings().local_mode,
    )
    return _classify(outcome)


def _send_email(workspace_id: str, delivery: dict[str, Any]) -> _Result:
    if not rate_limits.allow_per_day(workspace_id, "notification_emails", per_day=NOTIFICATION_EMAILS_PER_DAY):
        return _Result("failed", None, EMAIL_LIMIT_REACHED)
    try:
        message_id = send_email(get_settings().email_sender, delivery["email"], delivery["subject"], delivery["text"])
    except StorageError as error:  # SES refused or was unreachable: retried like a 5xx
        return _Result("retry", None, error.message)
    return _Result("delivered", provider_id=message_id)


def _seconds_until(moment: str, now: datetime) -> int:
    return max(1, min(MAX_DELAY_SECONDS, math.ceil((datetime.fromisoformat(moment) - now).total_seconds())))


def deliver(workspace_id: str, delivery_id: str, *, receive_count: int) -> int | None:
    """One queue message of a delivery: None when the message is done with (delete it), else the
    seconds to hide it before the next attempt.

    When this was the last attempt (the queue's last receive, or as many attempts as the queue
    allows receives) and it failed in a retryable way, the delivery is marked failed (metric
    WebhookExhausted) and the message is done with: it is not poison, and in the DLQ it would
    only raise an alarm a redrive could not clear."""
    settings = get_settings()
    repo = _repository()
    delivery = repo.get_delivery(workspace_id, delivery_id)
    if delivery is None:
        logger().warning("Message for a webhook delivery that does not exist", extra={"delivery_id": delivery_id})
        return None
    if delivery["status"] != "pending":
        return None  # a duplicate message of a finished delivery
    now = _now()
    attempts = int(delivery["attempts"])
    last_receive = receive_count >= settings.webhook_max_receives
    lease = delivery.get("lease_until")
    if lease and str(lease) > iso(now):
        if last_receive:
            # Hidden again, this message would only go to the DLQ with nothing wrong with it. The
            # sender's own message stays until it records the attempt and, should it die, comes
            # back after the lease (the queue's visibility timeout is longer than any lease).
            return None
        # Another message is sending it right now. Come back after its lease rather than drop
        # this message: should that sender die, this may be the message that finishes the job.
        return _seconds_until(str(lease), now)
    due = delivery.get("next_attempt_at")
    if due and not last_receive:
        wait = _seconds_until(str(due), now)
        if wait > 1:  # an early duplicate: come back when the delivery is due
            return wait

    kind = delivery["target_kind"]
    secret = delivery.get("signing_secret")
    if kind == "subscription":
        webhook = repo.get(workspace_id, delivery["target_id"])
        if webhook is None or webhook.get("status") != "active":
            reason = "The webhook was deleted" if webhook is None else "The webhook is disabled"
            if repo.record_attempt(
                workspace_id,
                delivery_id,
                from_attempts=attempts,
                status="failed",
                attempts=attempts,
                fields={"last_error": reason, "next_attempt_at": None, "finished_at": iso(now)},
            ):
                _count("WebhookFailed")
            return None
        secret = webhook["signing_secret"]

    attempt = attempts + 1
    lease_until = now + timedelta(seconds=CALL_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
    claimed = repo.record_attempt(
        workspace_id,
        delivery_id,
        from_attempts=attempts,
        status="pending",
        attempts=attempt,
        fields={"lease_until": iso(lease_until), "last_attempt_at": iso(now)},
    )
    if not claimed:
        return None  # another message claimed this attempt first

    if kind == "email":
        result = _send_email(workspace_id, delivery)
    else:
        result = _call(str(delivery["url"]), str(secret), delivery_id, str(delivery["payload_json"]))
    exhausted = last_receive or attempt >= settings.webhook_max_receives
    return _record(workspace_id, delivery, attempt, result, exhausted=exhausted)


def _record(
    workspace_id: str, delivery: dict[str, Any], attempt: int, result: _Result, *, exhausted: bool
) -> int | None:
    settings = get_settings()
    repo = _repository()
    delivery_id = str(delivery["id"])
    now = _now()
    base = {"last_status_code": result.status_code, "last_error": result.error, "lease_until": None}

    def end(status: str, **fields: Any) -> bool:
        return repo.record_attempt(
            workspace_id,
            delivery_id,
            from_attempts=attempt,
            status=status,
            attempts=attempt,
            fields={**base, "next_attempt_at": None, "finished_at": iso(now), **fields},
        )

    if result.kind == "delivered":
        if end("delivered", provider_message_id=result.provider_id):
            _count("WebhookDelivered")
        return None
    if result.kind == "gone":
        if delivery["target_kind"] == "subscription" and repo.disable(
            workspace_id, delivery["target_id"], reason=GONE_REASON, at=iso(now)
        ):
            _count("WebhookDisabled")
            logger().info("Webhook disabled: its receiver answered 410", extra={"webhook_id": delivery["target_id"]})
        if end("failed"):
            _count("WebhookFailed")
        return None
    if result.kind == "failed":
        if end("failed"):
            _count("WebhookFailed")
        return None
    if exhausted:
        if end("failed"):
            _count("WebhookExhausted")
            logger().error(
                "Webhook delivery failed on its last attempt",
                extra={"delivery_id": delivery_id, "attempts": attempt, "error": result.error},
            )
        return None
    delay = retry_delay(attempt, settings.webhook_retry_base_seconds, result.retry_after)
    retried = repo.record_attempt(
        workspace_id,
        delivery_id,
        from_attempts=attempt,
        status="pending",
        attempts=attempt,
        fields={**base, "next_attempt_at": iso(now + timedelta(seconds=delay))},
    )
    if not retried:
        return None
    _count("WebhookRetried")
    return delay


def defer(receipt_handle: str, seconds: int) -> None:
    """Hide a webhook message for `seconds` (what `deliver` returned)."""
    delay_message(get_settings().webhook_queue_url, receipt_handle, seconds)
