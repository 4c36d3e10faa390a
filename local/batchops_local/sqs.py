"""SQS event source mappings: one poller thread per SQS event of the template.

Like Lambda's pollers, a mapping runs several invocations at once, up to the function's concurrency
(the stack's BATCHOPS_LOCAL_CONCURRENCY, or ReservedConcurrentExecutions when lower; the mappings
of one function share it): it takes a free place before it receives, so no message waits
invisible for a sandbox, and each batch is invoked on a thread of its own. With one invocation
at a time, a Batches batch's max_parallel window had no visible effect locally (issue 14).

Each invocation is as Lambda's poller makes it: receive up to BatchSize messages (10 per call, filling the batch within
MaximumBatchingWindowInSeconds) but never more than fit Lambda's 6 MB invocation payload (the rest
go in the next batch), invoke with the SQS event, then delete what succeeded. With
ReportBatchItemFailures only the messages not listed in batchItemFailures are deleted; a raised
error, a timeout or an invalid response deletes nothing, so those messages come back after the
visibility timeout and moto's redrive moves them to the DLQ after maxReceiveCount receives.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from batchops_local.background import BackgroundLoop
from batchops_local.functions import FunctionRegistry, InvocationError
from batchops_local.iam import Role
from batchops_local.template import REGION, Function, Queue, SqsEvent

# Short long-polls keep shutdown quick while not spinning on an empty queue.
WAIT_SECONDS = 1
# Lambda's synchronous invocation payload limit: the event source mapping passes a batch "up to"
# it (ten 1 MiB messages arrive as two or more invocations).
INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attributes -> the camelCase shape Lambda puts in an SQS record."""
    out: dict[str, Any] = {}
    for name, attr in attributes.items():
        entry: dict[str, Any] = {
            "stringListValues": list(attr.get("StringListValues") or []),
            "binaryListValues": [base64.b64encode(v).decode() for v in attr.get("BinaryListValues") or []],
            "dataType": attr.get("DataType"),
        }
        if "StringValue" in attr:
            entry["stringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            entry["binaryValue"] = base64.b64encode(attr["BinaryValue"]).decode()
        out[name] = entry
    return out


def sqs_record(message: dict[str, Any], queue: Queue) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes") or {}),
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def fitting(messages: list[dict[str, Any]], queue: Queue) -> int:
    """How many of `messages`, from the first, make an SQS event within Lambda's payload limit
    (at least one: SQS's own message limit is far below it)."""
    size = len(json.dumps({"Records": []}))
    for count, message in enumerate(messages):
        size += len(json.dumps(sqs_record(message, queue)).encode()) + 2
        if count and size > INVOKE_PAYLOAD_BYTES:
            return count
    return len(messages)


def messages_to_delete(
    messages: list[dict[str, Any]], result: Any, report_batch_item_failures: bool
) -> list[dict[str, Any]]:
    """Which messages a successful invocation settles (Lambda's partial batch response rules)."""
    if not report_batch_item_failures:
        return messages
    if result is None:
        return messages
    if not isinstance(result, dict):
        return []  # an invalid response fails the whole batch
    failures = result.get("batchItemFailures")
    if not failures:  # absent, null or empty: complete success
        return messages
    if not isinstance(failures, list):
        return []
    ids = {m["MessageId"] for m in messages}
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in ids:
            return []  # null, empty or unknown itemIdentifier: Lambda retries the whole batch
        failed.add(identifier)
    return [m for m in messages if m["MessageId"] not in failed]


class SqsPoller(BackgroundLoop):
    def __init__(
        self,
        fn: Function,
        event: SqsEvent,
        queue: Queue,
        registry: FunctionRegistry,
        endpoint: str,
        log: Callable[[str], None],
        role: Role | None = None,
        slots: threading.BoundedSemaphore | None = None,
    ) -> None:
        self.fn = fn
        # Places for invocations in flight, shared by the function's mappings; none when its
        # concurrency is 0 (reserved 0 switches a function off: its mappings invoke nothing).
        self._slots = slots if slots is not None else _slots_of(fn, registry)
        self._in_flight: set[threading.Thread] = set()
        self._in_flight_lock = threading.Lock()
        self.event = event
        self.queue = queue
        self.registry = registry
        self.log = log
        # Lambda's event source mapping polls with the function's execution role (hence SAM's
        # AWSLambdaSQSQueueExecutionRole): a role that may not receive or delete fails here too.
        session = (
            boto3.session.Session(
                aws_access_key_id=role.access_key_id,
                aws_secret_access_key=role.secret_access_key,
                aws_session_token=role.session_token,
                region_name=REGION,
            )
            if role is not None
            else boto3.session.Session(region_name=REGION)
        )
        self._sqs: Any = session.client("sqs", endpoint_url=endpoint)
        # Received messages that did not fit the last invocation's payload: the next batch's start.
        self._carried: list[dict[str, Any]] = []
        super().__init__(f"sqs:{queue.name}->{fn.name}")

    def _run(self) -> None:
        if self._slots is None:
            return
        while not self._stop.is_set():
            # A short wait, so stop() is seen while every place is taken.
            if not self._slots.acquire(timeout=0.2):
                continue
            handed = False
            try:
                batch = self._collect()
                if batch:
                    self._start(batch)
                    handed = True
            except (BotoCoreError, ClientError) as exc:
                if self._stop.is_set():
                    return
                self.log(f"sqs {self.queue.name}: {type(exc).__name__}: {exc}")
                self._stop.wait(1)
            finally:
                if not handed:
                    self._slots.release()

    def _start(self, batch: list[dict[str, Any]]) -> None:
        thread = threading.Thread(
            target=self._invocation, args=(batch,), name=f"{self._thread.name}:invoke", daemon=True
        )
        with self._in_flight_lock:
            self._in_flight.add(thread)
        thread.start()

    def _invocation(self, batch: list[dict[str, Any]]) -> None:
        assert self._slots is not None
        try:
            self._dispatch(batch)
        except (BotoCoreError, ClientError) as exc:
            if not self._stop.is_set():
                self.log(f"sqs {self.queue.name}: {type(exc).__name__}: {exc}")
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(threading.current_thread())
            self._slots.release()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        super().join(timeout)
        with self._in_flight_lock:
            in_flight = list(self._in_flight)
        for thread in in_flight:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _receive(self, wanted: int, wait: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=max(1, min(wanted, 10)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def _collect(self) -> list[dict[str, Any]]:
        batch, self._carried = self._carried, []
        if not batch:
            batch = self._receive(self.event.batch_size, WAIT_SECONDS)
        if not batch:
            return []
        window_end = time.monotonic() + self.event.batching_window_seconds
        while len(batch) < self.event.batch_size and not self._stop.is_set():
            remaining = window_end - time.monotonic()
            # SQS waits in whole seconds; under a second left, poll without waiting.
            wait = min(WAIT_SECONDS, int(remaining)) if remaining >= 1 else 0
            more = self._receive(self.event.batch_size - len(batch), wait)
            batch.extend(more)
            if more:
                continue
            if remaining <= 0:  # window over (or none): invoke with what we have
                break
            if wait == 0:
                self._stop.wait(min(0.05, remaining))
        count = fitting(batch, self.queue)
        batch, self._carried = batch[:count], batch[count:]
        return batch

    def _dispatch(self, messages: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        event = {"Records": [sqs_record(m, self.queue) for m in messages]}
        try:
            result = self.registry.invoke(self.fn.name, event)
        except InvocationError as exc:
            self.log(
                f"sqs {self.queue.name} -> {self.fn.name}: {len(messages)} messages, invocation failed "
                f"({exc.error_type}), none deleted ({(time.monotonic() - started) * 1000:.0f}ms)"
            )
            return
        done = messages_to_delete(messages, result, self.event.report_batch_item_failures)
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        failed = len(messages) - len(done)
        elapsed = (time.monotonic() - started) * 1000
        target = f"sqs {self.queue.name} -> {self.fn.name}"
        self.log(f"{target}: {len(messages)} messages, {failed} failed ({elapsed:.0f}ms)")


def start_pollers(
    template_functions: dict[str, Function],
    queues: dict[str, Queue],
    registry: FunctionRegistry,
    endpoint: str,
    log: Callable[[str], None],
    roles: Mapping[str, Role] | None = None,
) -> list[SqsPoller]:
    by_arn = {q.arn: q for q in queues.values()}
    pollers: list[SqsPoller] = []
    for fn in template_functions.values():
        slots = _slots_of(fn, registry)
        for event in fn.sqs_events:
            if not event.enabled:
                continue
            queue = by_arn.get(event.queue_arn)
            if queue is None:
                raise ValueError(f"{fn.logical_id}.Events.{event.name}: queue {event.queue_arn} is not in the template")
            role = (roles or {}).get(fn.name)
            pollers.append(SqsPoller(fn, event, queue, registry, endpoint, log, role, slots))
    for poller in pollers:
        poller.start()
    return pollers


def _slots_of(fn: Function, registry: FunctionRegistry) -> threading.BoundedSemaphore | None:
    limit = registry.concurrency_of(fn.name)
    return threading.BoundedSemaphore(limit) if limit else None
