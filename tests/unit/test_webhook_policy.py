"""Webhook rules without AWS: the subscription request's bounds, how an attempt's outcome is
judged, delivery ids, and the notification email's text."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from batchops.executors.http_call import CallOutcome
from batchops.models.webhooks import BATCH_EVENTS, WebhookCreate
from batchops.services import webhooks

URL = "https://hooks.example.com/batches"


def test_every_seed_event_can_be_subscribed():
    assert WebhookCreate(url=URL, events=list(BATCH_EVENTS)).events == list(BATCH_EVENTS)


def test_a_repeated_event_is_rejected_by_name():
    with pytest.raises(ValidationError) as refused:
        WebhookCreate(url=URL, events=["batch.completed", "batch.failed", "batch.completed"])

    assert "batch.completed more than once" in str(refused.value)


@pytest.mark.parametrize(
    "body",
    [
        {"url": URL, "events": []},
        {"url": URL, "events": ["batch.exploded"]},
        {"url": "", "events": ["batch.completed"]},
        {"url": "https://x.example/" + "a" * 2048, "events": ["batch.completed"]},
        {"url": URL, "events": ["batch.completed"], "secret": "mine"},
        {"events": ["batch.completed"]},
    ],
)
def test_bad_requests_are_refused(body):
    with pytest.raises(ValidationError):
        WebhookCreate.model_validate(body)


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        (CallOutcome(http_status=200), "delivered"),
        (CallOutcome(http_status=204), "delivered"),
        (CallOutcome(http_status=410), "gone"),
        (CallOutcome(http_status=408), "retry"),
        (CallOutcome(http_status=429, retry_after="120"), "retry"),
        (CallOutcome(http_status=500), "retry"),
        (CallOutcome(http_status=503), "retry"),
        (CallOutcome(http_status=400), "failed"),
        (CallOutcome(http_status=404), "failed"),
        (CallOutcome(http_status=301), "failed"),
        (CallOutcome(error_code="TIMEOUT", message="slow"), "retry"),
        (CallOutcome(error_code="CONNECTION_ERROR", message="refused"), "retry"),
        (CallOutcome(error_code="UNSAFE_URL", message="private"), "failed"),
        (CallOutcome(error_code="INVALID_URL", message="bad"), "failed"),
    ],
)
def test_outcomes(outcome, kind):
    result = webhooks._classify(outcome)

    assert result.kind == kind
    assert result.status_code == outcome.http_status
    assert (result.error is None) == (kind == "delivered")


def test_retry_after_is_kept_for_the_delay():
    assert webhooks._classify(CallOutcome(http_status=429, retry_after="120")).retry_after == "120"


def test_a_redirect_says_it_is_not_followed():
    assert "redirects are not followed" in (webhooks._classify(CallOutcome(http_status=302)).error or "")


def test_delivery_ids_are_deterministic_per_target_and_occurrence():
    one = webhooks._delivery_id("subscription:wh_1", "batch_1", "batch.progress", "batch_1:progress:50")

    assert one == webhooks._delivery_id("subscription:wh_1", "batch_1", "batch.progress", "batch_1:progress:50")
    assert re.fullmatch(r"whd_[0-9a-f]{32}", one)
    others = {
        webhooks._delivery_id("subscription:wh_2", "batch_1", "batch.progress", "batch_1:progress:50"),
        webhooks._delivery_id("batch:batch_1", "batch_1", "batch.progress", "batch_1:progress:50"),
        webhooks._delivery_id("subscription:wh_1", "batch_1", "batch.progress", "batch_1:progress:75"),
    }
    assert one not in others and len(others) == 3


def test_payload_timestamp_is_the_seeds_form():
    moment = datetime(2024, 9, 16, 10, 45, 0, 123456, tzinfo=UTC)

    assert webhooks._timestamp(moment) == "2024-09-16T10:45:00Z"


def test_email_names_the_batch_by_its_id_and_carries_no_client_text():
    # Mail from batchops' own sender to any address a client names: the batch's name (client text,
    # a phishing lure or a header injection attempt) is in neither the subject nor the body.
    subject, text = webhooks._email(
        "batch.completed", "batch_1", {"name": "Q3\nAnalysis", "jobs": {"total": 2, "failed": 0}}, "T"
    )
    assert subject == "batchops: batch batch_1 completed"
    assert "batch_1" in text and "total 2, failed 0" in text
    assert "Analysis" not in text

    subject, _ = webhooks._email("batch.failed", "batch_1", {}, "T")
    assert subject == "batchops: batch batch_1 failed"


def test_an_unknown_event_cannot_be_emitted():
    with pytest.raises(ValueError, match="unknown batch event"):
        webhooks.emit("ws-a", "batch.exploded", "batch_1", {}, event_key="x")
