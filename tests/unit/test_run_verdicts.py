"""Where one attempt leaves a run (seed 001): the status-transition rules the worker applies,
and how items of one trigger request are de-duplicated among themselves."""

from __future__ import annotations

import pytest

from batchops.models.jobs import RunStatus, TriggerRequest
from batchops.services.run_policy import verdict
from batchops.services.runs import _claims, _Item, _settle


def decide(http_status=None, error_code=None, *, attempt=1, max_attempts=3, retry_after=None, too_large=False):
    return verdict(
        http_status=http_status,
        error_code=error_code,
        message="boom",
        body_too_large=too_large,
        retry_after=retry_after,
        attempt=attempt,
        max_attempts=max_attempts,
        backoff_seconds=2,
        rng=lambda: 1.0,
    )


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_completes(status):
    assert decide(status) == decide(200)
    assert decide(status).status is RunStatus.COMPLETED and decide(status).error is None


def test_an_oversized_2xx_still_completes_but_says_why_there_is_no_result():
    done = decide(200, too_large=True)
    assert done.status is RunStatus.COMPLETED and done.error["code"] == "RESULT_TOO_LARGE"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422, 301, 302, 307])
def test_4xx_and_redirects_fail_at_once(status):
    out = decide(status, attempt=1, max_attempts=10)
    assert (out.status, out.retry_in, out.error["http_status"]) == (RunStatus.FAILED, None, status)


@pytest.mark.parametrize(
    ("status", "code"),
    [(408, None), (429, None), (500, None), (503, None), (None, "TIMEOUT"), (None, "CONNECTION_ERROR")],
)
def test_retryable_outcomes_requeue_with_exponential_backoff(status, code):
    first = decide(status, code, attempt=1)
    second = decide(status, code, attempt=2)
    assert first.status is RunStatus.QUEUED and second.status is RunStatus.QUEUED
    assert (first.retry_in, second.retry_in) == (2, 4)  # base 2 s, doubled per attempt (jitter pinned at 1.0)


def test_retry_after_is_a_minimum():
    assert decide(503, retry_after="90").retry_in == 90


def test_the_last_attempt_ends_failed_or_timed_out():
    assert decide(503, attempt=3).status is RunStatus.FAILED
    assert decide(None, "CONNECTION_ERROR", attempt=3).status is RunStatus.FAILED
    timed_out = decide(None, "TIMEOUT", attempt=3)
    assert (timed_out.status, timed_out.error["code"]) == (RunStatus.TIMED_OUT, "TIMEOUT")


@pytest.mark.parametrize("code", ["UNSAFE_URL", "INVALID_URL"])
def test_refused_urls_fail_without_retry(code):
    out = decide(None, code, attempt=1, max_attempts=10)
    assert (out.status, out.error["code"], out.retry_in) == (RunStatus.FAILED, code, None)


def items(*requests: dict, window: int = 60) -> list[_Item]:
    made = []
    for n, body in enumerate(requests):
        request = TriggerRequest(**body)
        key = request.idempotency_key
        made.append(_Item(n, request, f"run_{n}", key, _claims(key, request.payload, f"run_{n}", window, now=1_000)))
    return made


def held_by(run_id: str, item: _Item) -> dict[tuple[str, str], str]:
    """An earlier run holding every claim of `item`."""
    return {(c.kind, c.digest): run_id for c in item.claims}


def test_within_a_request_the_first_item_wins():
    batch = items(
        {"payload": {"a": 1}},
        {"payload": {"a": 1}},  # same payload
        {"payload": {"b": 1}, "idempotency_key": "k"},
        {"payload": {"c": 1}, "idempotency_key": "k"},  # same key
        {"payload": {"d": 1}},
    )
    contenders = _settle(batch, {}, set())
    assert [i.index for i in contenders] == [0, 2, 4]
    assert [i.duplicate_of for i in batch] == [None, "run_0", None, "run_2", None]
    # What each repeat matched decides Strait's idempotency_hit.
    assert [i.duplicate_kind for i in batch] == [None, "payload", None, "key", None]


def test_a_repeat_of_an_item_that_repeats_an_earlier_run_names_that_run():
    # bulk [k1] made run_old; then bulk [k1, k1]: both items name run_old, never item 0's own id
    # (which no run has).
    first, second = items({"payload": {}, "idempotency_key": "k1"}, {"payload": {}, "idempotency_key": "k1"})
    assert _settle([first, second], held_by("run_old", first), set()) == []
    assert [(i.duplicate_of, i.duplicate_kind) for i in (first, second)] == [("run_old", "key"), ("run_old", "key")]


def test_a_repeated_payload_within_the_window_names_the_earlier_run():
    first, second = items({"payload": {"p": 1}}, {"payload": {"p": 1}})
    _settle([first, second], held_by("run_old", first), set())
    assert [i.duplicate_of for i in (first, second)] == ["run_old", "run_old"]


def test_an_item_repeating_a_key_of_an_item_that_created_nothing_creates_its_run():
    # Item 0 repeats an earlier run by payload; its key was never claimed, so item 1 (same key,
    # another payload) repeats nothing and creates its run, as Strait's item-by-item bulk does.
    first, second = items({"payload": {"p": 1}, "idempotency_key": "k"}, {"payload": {"p": 2}, "idempotency_key": "k"})
    payload_claim = next(c for c in first.claims if c.kind == "payload")
    contenders = _settle([first, second], {(payload_claim.kind, payload_claim.digest): "run_old"}, set())
    assert (first.duplicate_of, first.duplicate_kind) == ("run_old", "payload")
    assert contenders == [second] and second.duplicate_of is None


def test_repeats_of_an_item_that_lost_its_claim_are_decided_again():
    # Round 1: item 0 contends and item 1 repeats it. A concurrent request won item 0's key, so in
    # round 2 both name the winner's run.
    first, second = items({"payload": {}, "idempotency_key": "k"}, {"payload": {}, "idempotency_key": "k"})
    assert _settle([first, second], {}, set()) == [first]
    assert second.duplicate_of == "run_0"
    assert _settle([first, second], held_by("run_theirs", first), set()) == []
    assert [i.duplicate_of for i in (first, second)] == ["run_theirs", "run_theirs"]
    # Had item 0 won, its repeat would stand.
    third, fourth = items({"payload": {}, "idempotency_key": "j"}, {"payload": {}, "idempotency_key": "j"})
    _settle([third, fourth], {}, set())
    assert _settle([third, fourth], held_by("run_0", third), {"run_0"}) == []
    assert [i.duplicate_of for i in (third, fourth)] == [None, "run_0"]


def test_without_a_window_equal_payloads_are_separate_runs():
    batch = items({"payload": {"a": 1}}, {"payload": {"a": 1}}, window=0)
    assert _settle(batch, {}, {"run_0", "run_1"}) == []
    assert [i.duplicate_of for i in batch] == [None, None]
    assert [c.kind for c in items({"payload": {}, "idempotency_key": "k"}, window=0)[0].claims] == ["key"]


def test_payload_claims_carry_the_end_of_the_window():
    [item] = items({"payload": {"a": 1}}, window=60)
    [claim] = item.claims
    assert (claim.kind, claim.until, claim.run_id) == ("payload", 1_060, "run_0")
