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
    Run,
    RunPage,
    RunState,
    RunStatus,
    TriggerRequest,
    payload_bytes,
)
from batchops.services.run_policy import (
    MAX_DELAY_SECONDS,
    error_class,
    payload_hash,
    retry_after_seconds,
    retry_delay,
    retryable,
    run_error,
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
        ("name", " "),
        ("name", "x" * 256),
        ("name", "line\nbreak"),
        ("slug", "x" * 129),
        ("project_id", ""),
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


def test_names_are_strait_names():
    # Strait's names are display names: spaces and any printable text, up to 255 characters.
    assert JobCreate(name="Send Welcome Email", endpoint_url="https://example.com").name == "Send Welcome Email"
    assert JobCreate(name="x" * 255, endpoint_url="https://example.com", slug="s" * 128).slug == "s" * 128


def test_run_statuses_know_when_they_are_finished():
    assert [s.value for s in RunStatus if s.finished] == ["completed", "failed", "cancelled", "timed_out", "expired"]
    assert [s.value for s in RunStatus if s.waiting] == ["queued", "delayed"]


def test_the_api_shows_strait_status_names_and_wait_for_run_stops_on_every_finished_one():
    from strait.composition._wait import _DEFAULT_TERMINAL_STATUSES

    assert {s: s.public.value for s in RunStatus} == {
        RunStatus.QUEUED: "queued",
        RunStatus.DELAYED: "delayed",
        RunStatus.RUNNING: "executing",
        RunStatus.COMPLETED: "completed",
        RunStatus.FAILED: "failed",
        RunStatus.CANCELLED: "canceled",
        RunStatus.TIMED_OUT: "timed_out",
        RunStatus.EXPIRED: "expired",
    }
    assert all(state.stored.public is state for state in RunState)
    finished = {s.public.value for s in RunStatus if s.finished}
    assert finished <= _DEFAULT_TERMINAL_STATUSES
    assert not {s.public.value for s in RunStatus if not s.finished} & _DEFAULT_TERMINAL_STATUSES


def test_pages_carry_next_cursor_only_when_there_is_more():
    assert RunPage.of([], None).body() == {"data": [], "has_more": False}
    run = Run(
        id="run_1",
        job_id="job_1",
        project_id="ws",
        status=RunState.QUEUED,
        attempt=1,
        priority=0,
        triggered_by="manual",
        job_version=1,
        execution_mode="http",
        created_at="t",
        updated_at="t",
    )
    page = RunPage.of([run], "c").body()
    assert (page["has_more"], page["next_cursor"]) == (True, "c")
    # A run's keys without a value are left out (Strait's omitempty), never sent as null.
    assert "result" not in page["data"][0] and "error" not in page["data"][0]


def test_strait_trigger_fields_are_bounded():
    TriggerRequest(priority=10, ttl_secs=2_592_000, tags={"k" * 64: "v" * 256})
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    assert TriggerRequest(scheduled_at=in_an_hour).scheduled_at == in_an_hour
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None)
    assert TriggerRequest(scheduled_at=naive).scheduled_at.tzinfo is not None  # read as UTC
    for field, bad in (
        ("priority", 11),
        ("ttl_secs", -1),
        ("tags", {"k" * 65: "v"}),
        ("tags", {"k": "v" * 257}),
        ("scheduled_at", datetime.now(UTC) - timedelta(seconds=5)),
        ("scheduled_at", datetime.now(UTC) + timedelta(days=31)),
        ("idempotency_key", "k" * 257),
    ):
        with pytest.raises(ValidationError):
            TriggerRequest.model_validate({field: bad})
    with pytest.raises(ValidationError):
        TriggerRequest.model_validate({"metadata": {"k" * 65: "v"}})  # Strait's label rules
    assert TriggerRequest.model_validate({"metadata": {"source": "dsl"}}).metadata == {"source": "dsl"}
    # Strait's authoring DSL sends dry_run and metadata on bulk items too; Strait ignores them.
    item = BulkTriggerRequest.model_validate({"items": [{"dry_run": True, "metadata": {"a": "b"}}]}).items[0]
    assert (item.dry_run, item.metadata) == (True, {"a": "b"})
    with pytest.raises(ValidationError):
        BulkTriggerRequest.model_validate({"items": [{"debounce_key": "d"}]})  # a trigger field, not an item field


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


def test_strait_retry_strategies():
    middle = lambda: 0.5  # noqa: E731 - no jitter: Strait's +-20% centred
    assert [retry_delay(n, 3, strategy="linear", rng=middle) for n in (1, 2, 3)] == [3, 6, 9]
    assert [retry_delay(n, 3, strategy="fixed", rng=middle) for n in (1, 2, 3)] == [3, 3, 3]
    custom = [retry_delay(n, 3, strategy="custom", custom_delays=[10, 60], rng=middle) for n in (1, 2, 3)]
    assert custom == [10, 60, 60]  # the last delay repeats
    assert retry_delay(1, 10, strategy="fixed", rng=lambda: 0.0) == 8  # -20%
    assert retry_delay(1, 10, strategy="fixed", rng=lambda: 1.0) == 12  # +20%
    # custom without delays falls back to exponential, as in Strait.
    assert retry_delay(3, 2, strategy="custom", rng=lambda: 1.0) == 8
    assert retry_delay(1, 2, "120", strategy="fixed", rng=middle) == 120  # Retry-After still wins


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (run_error("HTTP_ERROR", "", 429), "rate_limited"),
        (run_error("HTTP_ERROR", "", 401), "auth"),
        (run_error("HTTP_ERROR", "", 403), "auth"),
        (run_error("HTTP_ERROR", "", 404), "client"),
        (run_error("HTTP_ERROR", "", 302), "client"),
        (run_error("HTTP_ERROR", "", 503), "server"),
        (run_error("TIMEOUT", ""), "timeout"),
        (run_error("CONNECTION_ERROR", ""), "connection"),
        (run_error("UNSAFE_URL", ""), "client"),
        (run_error("INTERRUPTED", ""), "transient"),
        (run_error("EXPIRED", "run expired"), None),
        (run_error("RESULT_TOO_LARGE", "", 200), None),
    ],
)
def test_errors_get_strait_error_classes(error, expected):
    assert error_class(error) == expected


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
