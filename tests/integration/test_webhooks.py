"""Webhooks of the Batches surface (seed 002): subscriptions, emitting batch events and delivering
them, on moto (DynamoDB, SQS, SES), with a real HTTP server on 127.0.0.1 that verifies our
Standard Webhooks signatures with the `standardwebhooks` library."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from standardwebhooks import Webhook, WebhookVerificationError

from batchops.dal.items import iso
from batchops.dal.webhooks import WebhookRepository
from batchops.errors import InvalidUrlError, NotFoundError, StorageError, UnsafeUrlError
from batchops.executors.webhook_signing import new_signing_secret
from batchops.models.webhooks import WebhookCreate
from batchops.services import webhooks
from batchops.settings import get_settings, reset_settings
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints

WS = "ws-a"
BATCH = "batch_abc123"
REGION = "us-east-1"  # tests/conftest.py's AWS_DEFAULT_REGION


@pytest.fixture
def endpoints(aws, monkeypatch) -> Iterator[JobEndpoints]:
    # template.yaml has no webhook queue yet: the tests make their own.
    url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="WebhookTestQueue")["QueueUrl"]
    monkeypatch.setenv("BATCHOPS_WEBHOOK_QUEUE_URL", url)
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # the receivers are on 127.0.0.1
    reset_settings()
    with job_endpoints() as server:
        yield server


def queued() -> list[dict[str, Any]]:
    """Every visible message on the webhook queue (received, so hidden afterwards)."""
    sqs = boto3.client("sqs", region_name=REGION)
    found: list[Any] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=get_settings().webhook_queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)


def dispatch(message: dict[str, Any]) -> int | None:
    """What the dispatcher does with one message."""
    body = json.loads(message["Body"])
    count = int(message["Attributes"]["ApproximateReceiveCount"])
    return webhooks.deliver(body["workspace_id"], body["delivery_id"], receive_count=count)


def only_delivery_id() -> str:
    messages = queued()
    assert len(messages) == 1, messages
    return str(json.loads(messages[0]["Body"])["delivery_id"])


def subscribe(endpoints: JobEndpoints, path: str, events: list[str], workspace: str = WS) -> dict[str, Any]:
    created = webhooks.create_subscription(workspace, WebhookCreate(url=endpoints.url(path), events=events))
    endpoints.verify_with(path, created["secret"])
    return created


def delivery(delivery_id: str, workspace: str = WS) -> dict[str, Any]:
    item = WebhookRepository(get_settings().table_name).get_delivery(workspace, delivery_id)
    assert item is not None
    return item


def at(monkeypatch, seconds: float) -> datetime:
    """Move the service's clock `seconds` from now (deliveries wait for next_attempt_at)."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    monkeypatch.setattr(webhooks, "_now", lambda: moment)
    return moment


def emit_completed(key: str = "completed", **extra: Any) -> int:
    return webhooks.emit(WS, "batch.completed", BATCH, {"jobs": {"total": 2, "completed": 2}}, event_key=key, **extra)


# ---------------------------------------------------------------- subscriptions
def test_create_shows_the_secret_once_and_list_never(endpoints):
    created = subscribe(endpoints, "/sub", ["batch.completed", "batch.failed"])

    assert created["id"].startswith("wh_")
    assert created["secret"].startswith("whsec_")
    assert created["status"] == "active"
    assert created["events"] == ["batch.completed", "batch.failed"]
    assert created["disabled_at"] is None and created["disabled_reason"] is None
    listed = webhooks.list_subscriptions(WS)
    assert listed == [{k: v for k, v in created.items() if k != "secret"}]
    assert "secret" not in json.dumps(listed) and created["secret"] not in json.dumps(listed)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook"])
def test_unsafe_urls_are_refused(endpoints, url):
    with pytest.raises(UnsafeUrlError) as refused:
        webhooks.create_subscription(WS, WebhookCreate(url=url, events=["batch.completed"]))

    assert refused.value.code == "UNSAFE_URL"
    assert webhooks.list_subscriptions(WS) == []


def test_a_url_that_is_not_http_is_invalid(endpoints):
    with pytest.raises(InvalidUrlError) as refused:
        webhooks.create_subscription(WS, WebhookCreate(url="ftp://example.com/x", events=["batch.completed"]))

    assert refused.value.code == "INVALID_URL"


def test_another_workspace_finds_nothing(endpoints):
    created = subscribe(endpoints, "/sub", ["batch.completed"])

    for attempt in (
        lambda: webhooks.delete_subscription("ws-b", created["id"]),
        lambda: webhooks.list_deliveries("ws-b", created["id"]),
    ):
        with pytest.raises(NotFoundError) as missing:
            attempt()
        assert missing.value.code == "WEBHOOK_NOT_FOUND"
    assert webhooks.list_subscriptions("ws-b") == []
    assert [w["id"] for w in webhooks.list_subscriptions(WS)] == [created["id"]]

    webhooks.delete_subscription(WS, created["id"])
    assert webhooks.list_subscriptions(WS) == []
    with pytest.raises(NotFoundError):
        webhooks.delete_subscription(WS, created["id"])


# ---------------------------------------------------------------- emit and deliver
def test_subscription_and_batch_webhook_get_signed_deliveries(endpoints):
    subscription = subscribe(endpoints, "/sub", ["batch.progress"])
    batch_secret = new_signing_secret()
    endpoints.verify_with("/batch", batch_secret)
    data = {"progress": {"percentage": 75, "jobs_completed": 3, "jobs_running": 1, "jobs_remaining": 1}}

    created = webhooks.emit(
        WS,
        "batch.progress",
        BATCH,
        data,
        event_key=f"{BATCH}:progress:75",
        batch_webhook=(endpoints.url("/batch"), batch_secret),
    )

    assert created == 2
    messages = queued()
    assert len(messages) == 2
    assert [dispatch(m) for m in messages] == [None, None]
    ids = {json.loads(m["Body"])["delivery_id"] for m in messages}
    for path, secret, other in (("/sub", subscription["secret"], batch_secret), ("/batch", batch_secret, None)):
        [call] = endpoints.calls_to(path)
        assert call.verified  # the receiver verified it with this path's secret
        assert call.headers["webhook-id"] in ids
        assert call.headers["content-type"] == "application/json"
        assert call.body["event"] == "batch.progress"
        assert call.body["batch_id"] == BATCH
        assert call.body["data"] == data
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", call.body["timestamp"])
        stored = delivery(call.headers["webhook-id"])
        assert stored["status"] == "delivered" and stored["attempts"] == 1
        Webhook(secret).verify(stored["payload_json"], call.headers)  # the exact body that was sent
        if other is not None:  # signed with the subscription's secret, not the batch's
            with pytest.raises(WebhookVerificationError):
                Webhook(other).verify(stored["payload_json"], call.headers)
    [entry] = webhooks.list_deliveries(WS, subscription["id"])
    assert entry["status"] == "delivered"
    assert entry["attempts"] == 1
    assert entry["last_status_code"] == 200
    assert entry["next_attempt_at"] is None
    assert entry["event"] == "batch.progress"
    assert entry["id"] == endpoints.calls_to("/sub")[0].headers["webhook-id"]


def test_the_same_event_key_is_sent_once(endpoints):
    subscribe(endpoints, "/sub", ["batch.progress"])

    assert webhooks.emit(WS, "batch.progress", BATCH, {"progress": {"percentage": 50}}, event_key="p:50") == 1
    # A repeat (the outbox sending again after a crash) stores no second delivery; it queues the
    # still-unattempted one again, in case its first message never reached SQS.
    assert webhooks.emit(WS, "batch.progress", BATCH, {"progress": {"percentage": 50}}, event_key="p:50") == 0
    messages = queued()
    assert len(messages) == 2
    assert [dispatch(m) for m in messages] == [None, None]
    assert len(endpoints.calls_to("/sub")) == 1
    # Once attempted, a repeat queues nothing more.
    assert webhooks.emit(WS, "batch.progress", BATCH, {"progress": {"percentage": 50}}, event_key="p:50") == 0
    assert queued() == []

    assert webhooks.emit(WS, "batch.progress", BATCH, {"progress": {"percentage": 75}}, event_key="p:75") == 1


def test_only_subscribed_events_are_delivered(endpoints):
    subscribe(endpoints, "/done", ["batch.completed"])
    progress = subscribe(endpoints, "/progress", ["batch.progress", "batch.failed"])

    assert webhooks.emit(WS, "batch.progress", BATCH, {}, event_key="p:25") == 1
    [message] = queued()
    assert dispatch(message) is None

    assert endpoints.calls_to("/done") == []
    assert len(endpoints.calls_to("/progress")) == 1
    assert len(webhooks.list_deliveries(WS, progress["id"])) == 1
    assert webhooks.emit(WS, "batch.started", BATCH, {}, event_key="started") == 0


def test_a_500_is_retried_with_a_delay_then_delivered(endpoints, monkeypatch):
    subscription = subscribe(endpoints, "/sub", ["batch.completed"])
    endpoints.script("/sub", Reply(500), Reply(200))
    emit_completed()
    delivery_id = only_delivery_id()

    delay = webhooks.deliver(WS, delivery_id, receive_count=1)

    assert delay is not None and 1 <= delay <= get_settings().webhook_retry_base_seconds
    [entry] = webhooks.list_deliveries(WS, subscription["id"])
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("pending", 1, 500)
    assert entry["next_attempt_at"] is not None
    # A message arriving before the delivery is due (a duplicate) waits; it does not call again.
    at(monkeypatch, -60)
    early = webhooks.deliver(WS, delivery_id, receive_count=2)
    assert early is not None and early >= 60
    assert len(endpoints.calls_to("/sub")) == 1

    at(monkeypatch, delay + 1)
    assert webhooks.deliver(WS, delivery_id, receive_count=3) is None

    [entry] = webhooks.list_deliveries(WS, subscription["id"])
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("delivered", 2, 200)
    assert entry["next_attempt_at"] is None
    calls = endpoints.calls_to("/sub")
    assert len(calls) == 2 and all(c.verified for c in calls)
    assert {c.headers["webhook-id"] for c in calls} == {delivery_id}


def test_a_429_waits_at_least_its_retry_after(endpoints):
    subscribe(endpoints, "/sub", ["batch.completed"])
    endpoints.script("/sub", Reply(429, headers={"Retry-After": "120"}))
    emit_completed()
    delivery_id = only_delivery_id()
    before = datetime.now(UTC)

    delay = webhooks.deliver(WS, delivery_id, receive_count=1)

    assert delay is not None and delay >= 120
    stored = delivery(delivery_id)
    assert stored["last_status_code"] == 429
    assert datetime.fromisoformat(stored["next_attempt_at"]) >= before + timedelta(seconds=120)


def test_a_410_disables_the_subscription(endpoints):
    subscription = subscribe(endpoints, "/gone", ["batch.completed", "batch.failed"])
    endpoints.script("/gone", Reply(410))
    emit_completed()

    assert webhooks.deliver(WS, only_delivery_id(), receive_count=1) is None

    [listed] = webhooks.list_subscriptions(WS)
    assert listed["status"] == "disabled"
    assert "410" in listed["disabled_reason"]
    assert listed["disabled_at"] is not None
    [entry] = webhooks.list_deliveries(WS, subscription["id"])
    assert (entry["status"], entry["last_status_code"]) == ("failed", 410)
    assert webhooks.emit(WS, "batch.failed", BATCH, {}, event_key="failed") == 0
    assert queued() == []
    assert len(endpoints.calls_to("/gone")) == 1


def test_the_last_receive_marks_failed_and_is_done_with_the_message(endpoints):
    subscribe(endpoints, "/sub", ["batch.completed"])
    endpoints.script("/sub", Reply(503))
    emit_completed()
    delivery_id = only_delivery_id()

    # None: the message is deleted, not left to the DLQ (a failed delivery is not poison).
    assert webhooks.deliver(WS, delivery_id, receive_count=get_settings().webhook_max_receives) is None

    stored = delivery(delivery_id)
    assert (stored["status"], stored["attempts"], stored["last_status_code"]) == ("failed", 1, 503)
    assert "next_attempt_at" not in stored
    # A duplicate of the message finds the delivery finished: nothing is sent again.
    assert webhooks.deliver(WS, delivery_id, receive_count=get_settings().webhook_max_receives + 1) is None
    assert len(endpoints.calls_to("/sub")) == 1


def test_a_duplicate_message_for_a_delivered_delivery_does_nothing(endpoints, monkeypatch):
    subscribe(endpoints, "/sub", ["batch.completed"])
    emit_completed()
    delivery_id = only_delivery_id()
    assert webhooks.deliver(WS, delivery_id, receive_count=1) is None

    at(monkeypatch, 3600)
    assert webhooks.deliver(WS, delivery_id, receive_count=1) is None

    assert len(endpoints.calls_to("/sub")) == 1
    stored = delivery(delivery_id)
    assert (stored["status"], stored["attempts"]) == ("delivered", 1)


def test_two_messages_at_once_send_one_attempt(endpoints):
    subscribe(endpoints, "/slow", ["batch.completed"])
    endpoints.script("/slow", Reply(200, delay=0.5))
    emit_completed()
    delivery_id = only_delivery_id()
    results: list[int | None] = []

    threads = [
        threading.Thread(target=lambda: results.append(webhooks.deliver(WS, delivery_id, receive_count=1)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # One sent it; the other lost the claim (dropped: the winner's message covers it) or found
    # it leased (hidden until the lease ends, then dropped as a duplicate).
    assert len(results) == 2 and None in results
    assert all(r is None or r >= 1 for r in results)
    assert len(endpoints.calls_to("/slow")) == 1
    stored = delivery(delivery_id)
    assert (stored["status"], stored["attempts"]) == ("delivered", 1)


def test_a_message_for_a_leased_delivery_waits_for_the_lease(endpoints, monkeypatch):
    subscribe(endpoints, "/sub", ["batch.completed"])
    emit_completed()
    delivery_id = only_delivery_id()
    lease_until = datetime.now(UTC) + timedelta(seconds=70)
    repo = WebhookRepository(get_settings().table_name)
    assert repo.record_attempt(  # another message claimed attempt 1 and is calling right now
        WS, delivery_id, from_attempts=0, status="pending", attempts=1, fields={"lease_until": iso(lease_until)}
    )

    wait = webhooks.deliver(WS, delivery_id, receive_count=1)

    assert wait is not None and 60 <= wait <= 71
    assert endpoints.calls_to("/sub") == []
    # That sender died: once its lease is over, the next message takes over as attempt 2.
    at(monkeypatch, 71)
    assert webhooks.deliver(WS, delivery_id, receive_count=2) is None
    stored = delivery(delivery_id)
    assert (stored["status"], stored["attempts"]) == ("delivered", 2)
    assert "lease_until" not in stored


def test_a_deleted_subscription_fails_its_pending_delivery(endpoints):
    subscription = subscribe(endpoints, "/sub", ["batch.completed"])
    emit_completed()
    delivery_id = only_delivery_id()
    webhooks.delete_subscription(WS, subscription["id"])

    assert webhooks.deliver(WS, delivery_id, receive_count=1) is None

    assert endpoints.calls_to("/sub") == []
    stored = delivery(delivery_id)
    assert (stored["status"], stored["attempts"]) == ("failed", 0)


def test_an_internal_address_is_refused_at_call_time(endpoints, monkeypatch):
    secret = new_signing_secret()
    emit_completed(batch_webhook=(endpoints.url("/batch"), secret))
    delivery_id = only_delivery_id()
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "false")  # as deployed: 127.0.0.1 is never called
    reset_settings()

    assert webhooks.deliver(WS, delivery_id, receive_count=1) is None

    assert endpoints.calls_to("/batch") == []
    stored = delivery(delivery_id)
    assert stored["status"] == "failed"
    assert stored["last_error"].startswith("UNSAFE_URL")


def test_a_delivery_sqs_refused_stays_pending_and_the_repeat_queues_it(endpoints, monkeypatch, caplog):
    subscription = subscribe(endpoints, "/sub", ["batch.completed"])
    queue_url = get_settings().webhook_queue_url
    monkeypatch.setenv("BATCHOPS_WEBHOOK_QUEUE_URL", "")
    reset_settings()

    # The emitter hears of it (the batch's outbox keeps the event and sends it again).
    with pytest.raises(StorageError):
        emit_completed()
    [entry] = webhooks.list_deliveries(WS, subscription["id"])
    assert (entry["status"], entry["attempts"]) == ("pending", 0)
    assert any(r.levelname == "ERROR" and "could not be queued" in r.getMessage() for r in caplog.records)

    monkeypatch.setenv("BATCHOPS_WEBHOOK_QUEUE_URL", queue_url)
    reset_settings()
    assert emit_completed() == 0  # no second delivery, but its message is sent now
    [message] = queued()
    assert dispatch(message) is None
    assert len(endpoints.calls_to("/sub")) == 1


# ---------------------------------------------------------------- email
def sent_emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def test_completion_email_through_ses(endpoints):
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=get_settings().email_sender)
    data = {"name": "Q3 Codebase Analysis", "jobs": {"total": 2, "completed": 2, "failed": 0}}

    assert webhooks.emit(WS, "batch.completed", BATCH, data, event_key="completed", email="team@company.com") == 1
    delivery_id = only_delivery_id()
    assert webhooks.deliver(WS, delivery_id, receive_count=1) is None

    [message] = sent_emails()
    assert message.subject == f"batchops: batch {BATCH} completed"
    # The client's text (the batch's name) stays out of mail sent from batchops' own sender.
    assert "Q3 Codebase Analysis" not in message.body
    assert message.source == get_settings().email_sender
    assert message.destinations["ToAddresses"] == ["team@company.com"]
    assert BATCH in message.body and "total 2" in message.body
    stored = delivery(delivery_id)
    assert (stored["status"], stored["attempts"], stored["target_kind"]) == ("delivered", 1, "email")
    assert stored["provider_message_id"] == message.id
    # Cancellation sends no email; progress neither.
    assert webhooks.emit(WS, "batch.cancelled", BATCH, data, event_key="cancelled", email="team@company.com") == 0
    assert webhooks.emit(WS, "batch.progress", BATCH, data, event_key="p", email="team@company.com") == 0


def test_an_ses_refusal_is_retried(endpoints, monkeypatch):
    # A sender that is not verified yet (the template's one is): SES answers MessageRejected.
    monkeypatch.setenv("BATCHOPS_EMAIL_SENDER", "not-yet-verified@example.com")
    reset_settings()
    assert webhooks.emit(WS, "batch.failed", BATCH, {}, event_key="failed", email="team@company.com") == 1
    delivery_id = only_delivery_id()

    delay = webhooks.deliver(WS, delivery_id, receive_count=1)

    assert delay is not None and delay >= 1
    stored = delivery(delivery_id)
    assert (stored["status"], stored["attempts"]) == ("pending", 1)
    assert "MessageRejected" in stored["last_error"]
    assert sent_emails() == []

    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=get_settings().email_sender)
    at(monkeypatch, delay + 1)
    assert webhooks.deliver(WS, delivery_id, receive_count=2) is None
    [message] = sent_emails()
    assert message.subject == f"batchops: batch {BATCH} failed"
    assert delivery(delivery_id)["status"] == "delivered"


def test_notification_emails_are_capped_per_workspace_per_day(endpoints, monkeypatch):
    """Any address a client names gets mail from batchops' sender: a workspace may set off at most
    NOTIFICATION_EMAILS_PER_DAY of them (docs/threat-model.md, API6); the rest fail, unsent."""
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=get_settings().email_sender)
    monkeypatch.setattr(webhooks, "NOTIFICATION_EMAILS_PER_DAY", 2)
    for n in range(3):
        webhooks.emit(WS, "batch.failed", f"{BATCH}-{n}", {}, event_key=f"failed-{n}", email=f"to{n}@company.com")
    outcomes = {}
    for message in queued():
        assert dispatch(message) is None
        stored = delivery(json.loads(message["Body"])["delivery_id"])
        outcomes[stored["email"]] = (stored["status"], stored.get("last_error"))
    assert sorted(status for status, _ in outcomes.values()) == ["delivered", "delivered", "failed"]
    assert [error for status, error in outcomes.values() if status == "failed"] == [webhooks.EMAIL_LIMIT_REACHED]
    assert len(sent_emails()) == 2
    # Another workspace has its own allowance.
    webhooks.emit("ws-other", "batch.failed", BATCH, {}, event_key="failed", email="other@company.com")
    for message in queued():
        assert dispatch(message) is None
    assert len(sent_emails()) == 3
