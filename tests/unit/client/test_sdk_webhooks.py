"""`client.webhooks` against respx (subscriptions and their delivery log, in the Batches surface's
envelope) and `verify` / `verify_webhook` on deliveries signed as the server signs them
(Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature over id.timestamp.body)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import respx
from standardwebhooks.webhooks import Webhook as StandardWebhook

from batchops_client import AsyncBatchopsClient, BatchopsClient, BatchopsError, ConflictError, NotFoundError
from batchops_client.errors import WebhookVerificationError
from batchops_client.models.webhooks import Webhook, WebhookDelivery, WebhookEvent
from batchops_client.resources.webhooks import verify_webhook

BASE = "http://api.test"
HOOK = {
    "id": "wh_1",
    "url": "https://example.com/hook",
    "events": ["batch.completed", "batch.failed"],
    "status": "active",
    "created_at": "2026-01-01T00:00:00Z",
    "disabled_at": None,
    "disabled_reason": None,
}
DELIVERY = {
    "id": "dlv_1",
    "event": "batch.completed",
    "status": "delivered",
    "attempts": 1,
    "last_status_code": 200,
    "next_attempt_at": None,
    "created_at": "2026-01-01T00:00:05Z",
}


def client() -> BatchopsClient:
    return BatchopsClient("bo_test", BASE, sleep=lambda seconds: None)


@respx.mock(base_url=BASE)
def test_create_posts_url_and_events_and_returns_the_secret(respx_mock):
    route = respx_mock.post("/v1/webhooks").respond(201, json={"success": True, "data": {**HOOK, "secret": "whsec_x"}})
    hook = client().webhooks.create("https://example.com/hook", ("batch.completed", "batch.failed"))
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "url": "https://example.com/hook",
        "events": ["batch.completed", "batch.failed"],
    }
    assert request.headers["Idempotency-Key"] and request.headers["Authorization"] == "Bearer bo_test"
    assert isinstance(hook, Webhook) and (hook.id, hook.secret, hook.status) == ("wh_1", "whsec_x", "active")


@respx.mock(base_url=BASE)
def test_list_delete_and_deliveries(respx_mock):
    respx_mock.get("/v1/webhooks").respond(200, json={"success": True, "data": [HOOK, {**HOOK, "id": "wh_2"}]})
    deleted = respx_mock.delete("/v1/webhooks/wh%201").respond(204)
    respx_mock.get("/v1/webhooks/wh_1/deliveries").respond(200, json={"success": True, "data": [DELIVERY]})
    api = client()
    hooks = api.webhooks.list()
    assert [hook.id for hook in hooks] == ["wh_1", "wh_2"] and hooks[0].secret is None
    assert api.webhooks.delete("wh 1") is None and deleted.call_count == 1
    (delivery,) = api.webhooks.deliveries("wh_1")
    assert isinstance(delivery, WebhookDelivery)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)


@respx.mock(base_url=BASE)
def test_refusals_are_typed(respx_mock):
    respx_mock.delete("/v1/webhooks/wh_9").respond(
        404, json={"error": "Webhook wh_9 not found", "code": "WEBHOOK_NOT_FOUND"}
    )
    respx_mock.post("/v1/webhooks").respond(
        409, json={"error": "A workspace has at most 20 webhooks", "code": "WEBHOOK_LIMIT_REACHED"}
    )
    with pytest.raises(NotFoundError) as missing:
        client().webhooks.delete("wh_9")
    with pytest.raises(ConflictError) as full:
        client().webhooks.create("https://example.com/hook", ["batch.completed"])
    assert missing.value.code == "WEBHOOK_NOT_FOUND" and full.value.code == "WEBHOOK_LIMIT_REACHED"


def test_the_async_client_lists_and_creates():
    async def scenario():
        async with AsyncBatchopsClient("bo_test", BASE) as api:
            return await api.webhooks.list(), await api.webhooks.create("https://example.com/h", ["batch.failed"])

    with respx.mock(base_url=BASE) as mock:
        mock.get("/v1/webhooks").respond(200, json={"success": True, "data": [HOOK]})
        mock.post("/v1/webhooks").respond(201, json={"success": True, "data": {**HOOK, "secret": "whsec_y"}})
        listed, created = asyncio.run(scenario())
    assert listed[0].id == "wh_1" and created.secret == "whsec_y"


# ---------------------------------------------------------------- verifying deliveries

# As the server makes them (executors/webhook_signing.py): whsec_ + base64 of 24 random bytes.
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
# As services/webhooks.emit writes it: compact, not ASCII-escaped.
BODY = json.dumps(
    {"event": "batch.completed", "batch_id": "batch_1", "timestamp": "2026-01-01T00:00:00Z", "data": {"note": "né"}},
    separators=(",", ":"),
    ensure_ascii=False,
)


def signed(body: str, secret: str = SECRET, at: datetime | None = None, message_id: str = "dlv_1") -> dict[str, str]:
    moment = at or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": StandardWebhook(secret).sign(message_id, moment, body),
    }


def test_a_signed_delivery_verifies_to_its_event():
    event = verify_webhook(BODY.encode(), signed(BODY), SECRET)
    assert isinstance(event, WebhookEvent)
    assert (event.event, event.batch_id, event.data) == ("batch.completed", "batch_1", {"note": "né"})
    # Text as well as bytes, headers in any case (as a framework may hand them on), and the method.
    title_case = {key.title(): value for key, value in signed(BODY).items()}
    assert client().webhooks.verify(BODY, title_case, SECRET)["batch_id"] == "batch_1"


def test_the_async_clients_verify_is_a_plain_call():
    api = AsyncBatchopsClient("bo_test", BASE)
    assert api.webhooks.verify(BODY, signed(BODY), SECRET).event == "batch.completed"
    asyncio.run(api.close())


@pytest.mark.parametrize(
    ("payload", "headers", "secret", "reason"),
    # Headers are signed when the test runs, not at collection: a suite that reaches this test more
    # than 5 minutes after collecting it would otherwise see every timestamp as too old.
    [
        (BODY.replace("completed", "failed"), lambda: signed(BODY), SECRET, "No matching signature"),
        (
            BODY,
            lambda: signed(BODY, secret="whsec_" + base64.b64encode(b"another secret here!").decode()),
            SECRET,
            "No matching",
        ),
        (BODY, lambda: signed(BODY, at=datetime.now(UTC) - timedelta(minutes=10)), SECRET, "too old"),
        (BODY, lambda: signed(BODY, at=datetime.now(UTC) + timedelta(minutes=10)), SECRET, "too new"),
        (
            BODY,
            lambda: {k: v for k, v in signed(BODY).items() if k != "webhook-signature"},
            SECRET,
            "Missing required headers",
        ),
        (BODY, lambda: {**signed(BODY), "webhook-signature": "garbage"}, SECRET, "malformed webhook"),
        (BODY, lambda: signed(BODY), "whsec_", "secret is empty"),
    ],
    ids=["tampered", "wrong-secret", "stale", "future", "unsigned", "malformed-signature", "empty-secret"],
)
def test_what_was_not_signed_with_the_secret_is_refused(payload, headers, secret, reason):
    with pytest.raises(WebhookVerificationError, match=reason) as refused:
        verify_webhook(payload, headers(), secret)
    assert isinstance(refused.value, BatchopsError) and refused.value.code == "WEBHOOK_VERIFICATION_FAILED"


def test_a_signed_body_that_is_not_an_object_is_refused():
    with pytest.raises(WebhookVerificationError, match="not a JSON object"):
        verify_webhook("[1]", signed("[1]"), SECRET)
