"""Webhook deliveries under injected AWS faults and hostile receivers: each delivery ends
delivered or failed once, a receiver is called at most once per attempt, and the DLQ receives
only true poison messages (a delivery still pending that no attempt could finish), never a
delivery already recorded as failed.

Deliveries are emitted with `webhooks.emit` (what the Batches engine's outbox calls) and the
WebhookQueue is drained by the template's dispatcher through `tests.pipeline.Pipeline`. The
pipeline shows a deferred message again at once, so the service's clock moves an hour on every
reading: each receive finds its delivery due, as it would after the real backoff.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchops.dal.items import iso
from batchops.dal.webhooks import WebhookRepository
from batchops.models.webhooks import WebhookCreate
from batchops.services import webhooks
from batchops.settings import get_settings
from tests.faults import Faults, Injection, SimulatedCrash, common, schedule_settings, scheduled, schedules, touches
from tests.invariants.webhooks import deliveries, subscriptions, webhooks_broken
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.pipeline import Pipeline

WS = "ws-a"
BATCH = "batch_faults"
SECRET = "whsec_" + "A" * 32


class Clock:
    """The webhook service's clock: an hour later at every reading."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


@pytest.fixture
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as found:
        yield found


def make_pipeline(monkeypatch: pytest.MonkeyPatch, **options: Any) -> Pipeline:
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # receivers on 127.0.0.1
    made = Pipeline(sweeps=(), **options)
    made.wire(monkeypatch)
    monkeypatch.setattr(webhooks, "_now", Clock())
    return made


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return make_pipeline(monkeypatch)


def subscribe(endpoints: JobEndpoints, path: str = "/sub") -> str:
    created = webhooks.create_subscription(WS, WebhookCreate(url=endpoints.url(path), events=["batch.completed"]))
    endpoints.verify_with(path, created["secret"])
    return str(created["id"])


def emit(endpoints: JobEndpoints, key: str = "completed", *, own: bool = True) -> int:
    hook = (endpoints.url("/own"), SECRET) if own else None
    return webhooks.emit(WS, "batch.completed", BATCH, {"n": key}, event_key=f"{BATCH}:{key}", batch_webhook=hook)


def calls(endpoints: JobEndpoints, *paths: str) -> Counter[str]:
    return Counter(c.headers.get("webhook-id", "") for path in paths for c in endpoints.calls_to(path))


def dead_deliveries(pipeline: Pipeline) -> list[str]:
    return [json.loads(body)["delivery_id"] for bodies in pipeline.dead_letters().values() for body in bodies]


def settle(pipeline: Pipeline, endpoints: JobEndpoints) -> list[str]:
    """Run until quiet (a crash only loses its invocation), then every broken promise; messages in
    the DLQ count as queued (a redrive would finish them) and must name pending deliveries."""
    for _ in range(30):
        try:
            pipeline.run_until_quiet()
            break
        except SimulatedCrash:
            continue
    dead = dead_deliveries(pipeline)
    by_id = {d["id"]: d for d in deliveries()}
    poison = [f"DLQ holds {d}, which is {by_id[d]['status']}" for d in dead if by_id[d]["status"] != "pending"]
    return poison + webhooks_broken(calls=calls(endpoints, "/sub", "/own", "/other"), queued=dead)


def statuses() -> dict[str, tuple[str, int]]:
    return {str(d["target_kind"]): (str(d["status"]), int(d["attempts"])) for d in deliveries()}


# ---------------------------------------------------------------- receivers
def test_a_receiver_failing_then_answering_gets_each_delivery_once_despite_duplicates(
    endpoints: JobEndpoints, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline(monkeypatch, duplicates=2, shuffle=random.Random(4))
    subscribe(endpoints)
    endpoints.script("/sub", Reply(500), Reply(503), Reply(200))
    endpoints.script("/own", Reply(500), Reply(200))
    assert emit(endpoints) == 2
    assert emit(endpoints) == 0  # the outbox's repeat: no second delivery
    assert settle(pipeline, endpoints) == []
    assert statuses() == {"subscription": ("delivered", 3), "batch": ("delivered", 2)}
    assert sorted(calls(endpoints, "/sub", "/own").values()) == [2, 3]


def test_a_429_waits_its_retry_after(
    pipeline: Pipeline, endpoints: JobEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints.script("/own", Reply(429, headers={"Retry-After": "600"}), Reply(200))
    waits: list[int] = []
    real = webhooks.defer
    monkeypatch.setattr(webhooks, "defer", lambda receipt, seconds: (waits.append(seconds), real(receipt, seconds)))
    emit(endpoints)
    assert settle(pipeline, endpoints) == []
    assert waits and waits[0] >= 600
    assert statuses() == {"batch": ("delivered", 2)}


def test_a_410_disables_the_subscription_and_fails_its_other_deliveries_without_a_call(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    webhook_id = subscribe(endpoints)
    endpoints.script("/sub", Reply(410))
    emit(endpoints, "one", own=False)
    assert settle(pipeline, endpoints) == []
    emit(endpoints, "two", own=False)  # emitted while the subscription was active: none now
    [webhook] = subscriptions()
    assert (webhook["id"], webhook["status"]) == (webhook_id, "disabled")
    assert [d["status"] for d in deliveries()] == ["failed"]
    assert len(endpoints.calls_to("/sub")) == 1


def test_a_slow_receiver_is_a_timeout_retried(
    pipeline: Pipeline, endpoints: JobEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "CALL_TIMEOUT_SECONDS", 0.5)
    endpoints.script("/own", Reply(200, delay=1.5), Reply(200))
    emit(endpoints)
    assert settle(pipeline, endpoints) == []
    assert statuses() == {"batch": ("delivered", 2)}


def test_w1_an_exhausted_delivery_is_failed_once_and_its_message_is_not_dead_lettered(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    """Before: the last attempt marked the delivery failed and left its message to the DLQ, where
    a redrive does nothing (the delivery is finished); the DLQ alarm fired for a receiver's
    outage, not for a message batchops could not process."""
    endpoints.script("/own", Reply(503))
    emit(endpoints)
    assert settle(pipeline, endpoints) == []
    assert pipeline.dead_letters() == {}
    limit = get_settings().webhook_max_receives
    assert statuses() == {"batch": ("failed", limit)}
    assert len(endpoints.calls_to("/own")) == limit


def test_w2_a_duplicate_on_its_last_receive_while_another_message_sends_is_not_dead_lettered(
    endpoints: JobEndpoints, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the duplicate was hidden until the lease ended, which on its last receive sent it
    to the DLQ although the sender's own message finishes the delivery."""
    pipeline = make_pipeline(monkeypatch)
    monkeypatch.setattr(webhooks, "_now", lambda: datetime.now(UTC))  # real time: the lease holds
    emit(endpoints)
    [delivery] = deliveries()
    # Another message claimed the first attempt and is calling the receiver.
    lease = iso(datetime.now(UTC) + timedelta(seconds=70))
    holder = WebhookRepository(get_settings().table_name)
    assert holder.record_attempt(
        WS, delivery["id"], from_attempts=0, status="pending", attempts=1, fields={"lease_until": lease}
    )
    limit = get_settings().webhook_max_receives
    assert webhooks.deliver(WS, delivery["id"], receive_count=limit) is None  # done with: not to the DLQ
    assert webhooks.deliver(WS, delivery["id"], receive_count=1) is not None  # earlier ones wait for the lease
    assert endpoints.calls_to("/own") == []
    # The sender dies; its own message comes back after the lease and finishes the delivery.
    monkeypatch.setattr(webhooks, "_now", Clock())
    assert settle(pipeline, endpoints) == []
    assert statuses() == {"batch": ("delivered", 2)}
    assert pipeline.dead_letters() == {}


def test_only_a_message_no_attempt_can_be_made_for_reaches_the_dlq(pipeline: Pipeline, endpoints: JobEndpoints) -> None:
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    poison = json.dumps({"workspace_id": WS})  # names no delivery
    sqs.send_message(QueueUrl=get_settings().webhook_queue_url, MessageBody=poison)
    endpoints.script("/own", Reply(503), Reply(200))
    emit(endpoints)
    pipeline.run_until_quiet()
    assert pipeline.dead_letters() == {"WebhookDeadLetterQueue": [poison]}
    assert webhooks_broken(calls=calls(endpoints, "/own")) == []


# ---------------------------------------------------------------- AWS faults
def test_a_crash_after_claiming_an_attempt_is_taken_over_once_its_lease_ends(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    emit(endpoints)
    claim = touches("lease_until")
    with Faults().crash_after("dynamodb", "UpdateItem", where=claim, times=1).installed() as faults:
        assert settle(pipeline, endpoints) == []
    assert [f[3] for f in faults.fired] == ["crash"]
    assert statuses() == {"batch": ("delivered", 2)}  # the crashed claim counts as an attempt
    assert len(endpoints.calls_to("/own")) == 1


def test_a_throttled_outcome_write_resends_within_the_documented_window(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    emit(endpoints)
    delivered = touches("'delivered'")
    with Faults().throttle("dynamodb", "UpdateItem", where=delivered, times=1).installed():
        assert settle(pipeline, endpoints) == []
    # The call went through, its status write did not: the next attempt calls again (the window).
    assert statuses() == {"batch": ("delivered", 2)}
    assert len(endpoints.calls_to("/own")) == 2


def test_an_emission_sqs_refuses_in_part_is_queued_again_by_the_repeat(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    subscribe(endpoints)
    sends = touches("delivery_id")
    with Faults().partial("sqs", "SendMessageBatch", where=sends, times=6).installed():
        with pytest.raises(webhooks.StorageError):
            emit(endpoints)
        emit(endpoints)  # the outbox keeps the event until emit returns
    assert settle(pipeline, endpoints) == []
    assert statuses() == {"subscription": ("delivered", 1), "batch": ("delivered", 1)}


def test_throttled_reads_and_deferrals_lose_nothing(pipeline: Pipeline, endpoints: JobEndpoints) -> None:
    endpoints.script("/own", Reply(500), Reply(200))
    emit(endpoints)
    faults = (
        Faults().throttle("dynamodb", "GetItem", calls=[1, 3]).throttle("sqs", "ChangeMessageVisibility", calls=[1])
    )
    with faults.installed():
        assert settle(pipeline, endpoints) == []
    assert statuses() == {"batch": ("delivered", 2)}
    assert pipeline.dead_letters() == {}


# ---------------------------------------------------------------- random schedules
KINDS: dict[str, Injection] = {
    **common("throttle-get", "throttle-update"),
    "crash-claim": lambda f, n: f.crash_after("dynamodb", "UpdateItem", calls=[n], where=touches("lease_until")),
    "throttle-defer": lambda f, n: f.throttle("sqs", "ChangeMessageVisibility", calls=[n]),
    **common("partial-send"),
}
FAULTS = schedules(KINDS, max_call=8, max_size=3)
REPLIES = st.lists(st.sampled_from([500, 503, 429, 408, 200]), min_size=1, max_size=3)


@schedule_settings(ci_examples=3)
@given(
    plan=FAULTS,
    replies=REPLIES,
    duplicates=st.integers(0, 2),
    crash_every=st.sampled_from([0, 0, 3]),
    seed=st.integers(0, 99),
)
def test_any_schedule_of_faults_keeps_every_delivery_promise(
    plan: list[tuple[str, int]],
    replies: list[int],
    duplicates: int,
    crash_every: int,
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.integration.conftest import fresh_aws

    with fresh_aws(), job_endpoints() as endpoints, monkeypatch.context() as patched:
        pipeline = make_pipeline(patched, duplicates=duplicates, shuffle=random.Random(seed), crash_every=crash_every)
        subscribe(endpoints)
        endpoints.script("/sub", *(Reply(code) for code in replies), Reply(200))
        endpoints.script("/own", *(Reply(code) for code in reversed(replies)), Reply(200))
        with scheduled(KINDS, plan).installed():
            for _ in range(5):
                try:
                    emit(endpoints)
                    break
                except (webhooks.StorageError, SimulatedCrash):
                    continue  # the outbox sends it again
            broken = settle(pipeline, endpoints)
        assert not broken, "\n".join(broken)
        assert {status for status, _ in statuses().values()} <= {"delivered", "failed"}
