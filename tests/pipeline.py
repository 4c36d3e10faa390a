"""The template's SQS consumers and schedules, driven in-process under moto as Lambda would drive
them, with the delivery faults SQS allows: each message delivered more than once, batches out of
order, a consumer that dies mid-batch (`tests.faults.SimulatedCrash`).

Each sweep runs `sweep_ahead` later than the one before (2 minutes: past the engine's one-minute
follow-up, and its five-minute rechecks every third sweep, long before a batch's hour of timeout),
so what real sweeps would find after a crash, a test finds without waiting.

`Pipeline.run_until_quiet` receives from every queue that has a consumer, invokes the consumer
with an SQS event (its handler runs as its function, with its role: `tests/support.load_function`),
deletes what the partial batch response says succeeded, and makes the rest visible again at once
(tests do not wait out visibility timeouts). moto's redrive moves a message to its DLQ after
maxReceiveCount receives, as SQS does. Between rounds it runs the scheduled sweepers, so work a
crash left behind is found the way it would be in production.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import boto3

from batchops.settings import reset_settings
from batchops_local.template import SqsEvent
from tests.faults import SimulatedCrash
from tests.support import ROOT, LambdaContext, fixture_event, load_function, sqs_event, wire_environment

REGION = "us-east-1"
# Sweeps with nothing delivered before the system counts as at rest: 4 x 2 minutes passes a batch's
# 5-minute recheck and a job's lease (its timeout plus a minute), so a job whose worker died is
# found and sent again before a test checks anything.
QUIET_SWEEPS = 4


@dataclass
class Consumer:
    queue: str  # queue name
    folder: str  # functions/<folder>, also its events/ sample
    event: SqsEvent


def consumers() -> list[Consumer]:
    from batchops_local.template import load_template

    template = load_template(ROOT / "template.yaml")
    found = []
    for fn in template.functions.values():
        for event in fn.sqs_events:
            found.append(Consumer(event.queue_arn.rsplit(":", 1)[-1], fn.code_dir.name, event))
    return found


@dataclass
class Pipeline:
    """`duplicates`: extra deliveries of every message a consumer finished (SQS is at least once);
    `shuffle`: receive order scrambled by this seeded generator; `crash_every`: the consumer dies
    on every n-th invocation before its answer is seen (its messages all come back)."""

    duplicates: int = 0
    shuffle: random.Random | None = None
    crash_every: int = 0
    sweeps: tuple[str, ...] = ("batch_sweeper", "sweeper")
    sweep_ahead: timedelta = timedelta(minutes=2)
    _swept: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)
    sweep_failures: Counter[str] = field(default_factory=Counter)
    _redelivered: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._sqs = boto3.client("sqs", region_name=REGION)
        self._consumers = consumers()
        self._urls = {c.queue: self._sqs.get_queue_url(QueueName=c.queue)["QueueUrl"] for c in self._consumers}
        self._modules = {c.folder: load_function(c.folder) for c in self._consumers}
        self._sweepers = {name: load_function(name) for name in self.sweeps}

    def wire(self, monkeypatch: Any) -> None:
        """Point the functions' queue settings at moto's queues (what the template's Globals do)."""
        wire_environment(
            monkeypatch, "BatchFunction", skip=frozenset({"BATCHOPS_TABLE_NAME", "BATCHOPS_IDEMPOTENCY_TABLE_NAME"})
        )
        reset_settings()

    def run_until_quiet(self, *, rounds: int = 300, sweep_every: int = 5, wait_seconds: float = 60) -> int:
        """Deliver until the system is at rest: no queue has a message, visible or delayed, and
        `QUIET_SWEEPS` sweeps in a row (each `sweep_ahead` later) found nothing more to send, which
        carries them past every lease and recheck a crash may have left to run out. Returns how many
        invocations it took. Fails if the system does not settle in `rounds` (or a delayed message
        does not come due in `wait_seconds`)."""
        quiet = 0
        waited_until = time.monotonic() + wait_seconds
        for round_number in range(1, rounds + 1):
            delivered = sum(self._deliver(consumer) for consumer in self._consumers)
            if delivered:
                quiet = 0
                if round_number % sweep_every == 0:
                    self._scheduled_sweep()
                continue
            if self._delayed():
                # A retry's backoff is an SQS DelaySeconds, which moto keeps in real time: wait for it.
                if time.monotonic() > waited_until:
                    raise AssertionError(f"a delayed message did not come due in {wait_seconds} s")
                time.sleep(0.1)
                continue
            self._scheduled_sweep()
            quiet += 1
            if quiet >= QUIET_SWEEPS:
                return sum(self.invocations.values())
        raise AssertionError(f"the queues did not settle in {rounds} rounds: {dict(self.invocations)}")

    def _scheduled_sweep(self) -> None:
        """A sweep as the schedule runs it: an invocation that fails (a throttle past botocore's
        retries, a crash) is logged by Lambda and the next scheduled one runs; it is not the test's
        failure. What it left undone, the next sweep must find."""
        try:
            self.sweep()
        except (Exception, SimulatedCrash) as error:
            self.sweep_failures[type(error).__name__] += 1

    def _delayed(self) -> bool:
        for url in self._urls.values():
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if any(int(count) for count in attributes.values()):
                return True
        return False

    def sweep(self) -> None:
        from batchops.services import batch_engine

        real_now = batch_engine.now_utc
        self._swept += 1
        ahead = self.sweep_ahead * self._swept
        with patch.object(batch_engine, "now_utc", lambda: real_now() + ahead):
            for name, module in self._sweepers.items():
                module.lambda_handler(fixture_event(name), LambdaContext(function_name=name))

    def _deliver(self, consumer: Consumer) -> bool:
        url = self._urls[consumer.queue]
        got = self._sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(10, consumer.event.batch_size), AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return False
        if self.shuffle is not None:
            self.shuffle.shuffle(got)
        self.invocations[consumer.folder] += 1
        event = sqs_event(consumer.folder, got)
        try:
            if self.crash_every and self.invocations[consumer.folder] % self.crash_every == 0:
                raise SimulatedCrash("the consumer died before answering")
            result = self._modules[consumer.folder].lambda_handler(
                event, LambdaContext(function_name=consumer.folder, remaining_ms=900_000)
            )
        except SimulatedCrash:
            self.crashes[consumer.folder] += 1
            for message in got:  # nothing is deleted: all of them come back
                self._show(url, message)
            return True
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures") or []}
        for message in got:
            if message["MessageId"] in failed:
                self._show(url, message)
                continue
            self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            key = f"{consumer.queue}:{message['Body']}"
            if self.duplicates and key not in self._redelivered:
                self._redelivered.add(key)
                for _ in range(self.duplicates):  # the same body again, as SQS may deliver it
                    self._sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
        return True

    def _show(self, url: str, message: dict[str, Any]) -> None:
        self._sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)

    def dead_letters(self) -> dict[str, list[str]]:
        """Message bodies in every dead-letter queue."""
        found: dict[str, list[str]] = {}
        for url in self._sqs.list_queues().get("QueueUrls", []):
            if "DeadLetter" not in url:
                continue
            bodies = []
            while True:
                got = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    break
                bodies += [m["Body"] for m in got]
            if bodies:
                found[url.rsplit("/", 1)[-1]] = bodies
        return found
