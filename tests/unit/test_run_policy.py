"""Jobs groundwork (issue 4): request bounds, payload de-duplication hashing, retry rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import ValidationError

from batchops.models.jobs import (
    BulkTriggerRequest,
    JobCreate,
    JobUpdate,
    RunStatus,
    TriggerRequest,
    payload_bytes,
)
from batchops.services.run_policy import (
    MAX_DELAY_SECONDS,
    payload_hash,
    retry_after_seconds,
    retry_delay,
    retryable,
)


def test_job_defaults_and_bounds():
    job = JobCreate(name="send-email", endpoint_url="https://example.com/hook")
    assert (
        job.method,
        job.timeout_secs,
        job.max_attempts,
        job.retry_backoff_secs,
        job.dedup_window_secs,
        job.enabled,
    ) == (
        "POST",
        30,
        3,
        2,
        0,
        True,
    )
    for field, bad in (
        ("timeout_secs", 0),
        ("timeout_secs", 901),
        ("max_attempts", 0),
        ("max_attempts", 11),
        ("retry_backoff_secs", 0),
        ("dedup_window_secs", -1),
        ("dedup_window_secs", 86401),
        ("method", "TRACE"),
        ("name", ""),
        ("name", "has space"),
    ):
        with pytest.raises(ValidationError):
            JobCreate.model_validate({"name": "j", "endpoint_url": "https://example.com", field: bad})
    with pytest.raises(ValidationError, match="set by batchops"):
        JobCreate(name="j", endpoint_url="https://example.com", headers={"Webhook-Signature": "forged"})
    with pytest.raises(ValidationError):
        JobUpdate.model_validate({"max_attempts": 11})
    assert JobUpdate.model_validate({"enabled": False}).model_dump(exclude_unset=True) == {"enabled": False}


def test_bulk_items_are_one_to_five_hundred():
    BulkTriggerRequest.model_validate({"items": [{"payload": {"n": 1}}] * 500})
    for count in (0, 501):
        with pytest.raises(ValidationError):
            BulkTriggerRequest.model_validate({"items": [{"payload": {}}] * count})
    assert TriggerRequest().payload == {}


def test_run_statuses_know_when_they_are_finished():
    assert [s.value for s in RunStatus if s.finished] == ["completed", "failed", "cancelled", "timed_out"]


def test_payload_hash_ignores_key_order_and_spacing_but_not_values():
    assert payload_hash({"a": 1, "b": [1, 2]}) == payload_hash({"b": [1, 2], "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})
    assert payload_hash({"a": "é"}) != payload_hash({"a": "e"})
    assert payload_bytes({"a": "é"}) == len('{"a":"é"}'.encode())


@pytest.mark.parametrize(
    ("status", "expected"),
    [(None, True), (408, True), (429, True), (500, True), (503, True), (400, False), (404, False), (422, False)],
)
def test_retryable(status, expected):
    assert retryable(status) is expected


def test_backoff_grows_exponentially_with_full_jitter():
    assert [retry_delay(n, 2, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert retry_delay(3, 2, rng=lambda: 0.0) == 1  # never zero
    assert retry_delay(30, 3600, rng=lambda: 1.0) == MAX_DELAY_SECONDS


def test_retry_after_is_honoured_as_a_minimum():
    assert retry_delay(1, 2, "120", rng=lambda: 0.5) == 120
    later = datetime.now(UTC) + timedelta(seconds=90)
    assert 85 <= retry_delay(1, 2, format_datetime(later, usegmt=True), rng=lambda: 0.0) <= 90
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_payload_size_limit_is_binary_and_inclusive():
    overhead = payload_bytes({"b": ""})
    TriggerRequest(payload={"b": "x" * (256 * 1024 - overhead)})
    with pytest.raises(ValidationError, match="262,145 bytes"):
        TriggerRequest(payload={"b": "x" * (256 * 1024 - overhead + 1)})
    # Multi-byte characters count as their UTF-8 bytes.
    with pytest.raises(ValidationError):
        TriggerRequest(payload={"b": "é" * (128 * 1024)})
