"""Lambda entry points that are not HTTP: the async batch worker, the transaction step, the run
worker, the tracking workers and the sweeper.

Each builder imports the services its own function uses, on its first invocation: a function
loads only its own path (the tracking worker neither api.dispatch nor services.operation_jobs)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.lazy import LambdaHandler, LazyHandler
from batchops.dal.webhooks import subscriptions_read_once
from batchops.observability import logger, metrics, tracer
from batchops.settings import get_settings

SAFETY_MARGIN_MS = 2_000
# Records of one invocation run at once, each on its own thread: up to the event source mapping's
# BatchSize of 10, so no record waits for another's slow endpoint (each gets the invocation's whole
# remaining time). Their work is waiting on HTTP and DynamoDB, not CPU.
RECORD_THREADS = 10


class NotEnoughTimeLeftError(Exception):
    """This invocation cannot give the job its full timeout: let SQS deliver it again."""


class RetryLaterError(Exception):
    """The run is queued for another attempt: its message stays, hidden for the backoff delay."""


RecordHandler = Callable[[SQSRecord, LambdaContext], None]


@contextmanager
def record_log_keys(**keys: Any) -> Iterator[None]:
    """Log keys for the record being handled only. Logger.append_context_keys changes the logger's
    keys for every thread; these live in the record's own context (see `_isolated`), so records
    running side by side never log each other's ids."""
    logger().thread_safe_append_keys(**keys)
    try:
        yield
    finally:
        logger().thread_safe_remove_keys(keys)


def _isolated(handle_record: RecordHandler, record: SQSRecord, context: LambdaContext) -> None:
    """Runs one record in its own copy of the invocation's context: whatever it sets in context
    variables (log keys, the request being resolved, the caller) ends with it; what the invocation
    set (the subscription lists read once) it shares."""
    contextvars.copy_context().run(handle_record, record, context)


def _run_concurrently(
    records: list[dict[str, Any]], handle_record: RecordHandler, context: LambdaContext
) -> dict[str, BaseException | None]:
    """Each record's outcome by messageId: None, or what its handler raised."""

    def run(invocation: contextvars.Context, raw: dict[str, Any]) -> BaseException | None:
        try:
            invocation.run(handle_record, SQSRecord(raw), context)
        except Exception as error:  # noqa: BLE001 - kept for BatchProcessor, which reports it as this record's failure
            return error
        return None

    with ThreadPoolExecutor(max_workers=min(RECORD_THREADS, len(records)), thread_name_prefix="record") as pool:
        # Each context copied here, on the invocation's thread: a pool thread has a context of its own.
        futures = [(str(raw["messageId"]), pool.submit(run, contextvars.copy_context(), raw)) for raw in records]
        # result() raises what `run` does not catch: the function dying (its whole batch comes back).
        return {message_id: future.result() for message_id, future in futures}


def _replay(outcome: BaseException | None) -> None:
    if outcome is not None:
        raise outcome


def sqs_worker(handle_record: RecordHandler, *, concurrent: bool = False) -> LambdaHandler:
    """An SQS-triggered handler that reports partial batch failures: a record whose handler
    raises stays on the queue, the others are deleted. `concurrent`: the records of a batch run
    side by side (`RECORD_THREADS`), then Powertools' BatchProcessor reports each one's outcome
    as if it had run it, so failures are reported exactly as for records run in turn. The
    subscription list an emitted webhook event goes to is read once per invocation."""
    # Report every failed record, even when all fail, rather than failing the invocation:
    # SQS retries them the same way and the function-errors alarm stays for real faults.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    @logger().inject_lambda_context
    @metrics().log_metrics
    @tracer().capture_lambda_handler(capture_response=False)
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        with subscriptions_read_once():
            records = list(event.get("Records") or [])
            if concurrent and len(records) > 1:
                outcomes = _run_concurrently(records, handle_record, context)
                record_handler: Callable[[SQSRecord], None] = lambda record: _replay(outcomes[record.message_id])  # noqa: E731
            else:
                record_handler = lambda record: _isolated(handle_record, record, context)  # noqa: E731
            result = process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        return dict(result)

    return handle


def async_worker_handler() -> LazyHandler:
    def build() -> LambdaHandler:
        import time

        from batchops.api.dispatch import InProcessTarget
        from batchops.models.operations import TIMEOUT_MS
        from batchops.observability import record_batch
        from batchops.services import operation_jobs
        from batchops.services.operations import Deadline

        def run_job(record: SQSRecord, context: LambdaContext) -> None:
            # Start a job only with its whole timeout ahead; unclaimed, it loses nothing by waiting.
            remaining = context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS
            if remaining < TIMEOUT_MS:
                raise NotEnoughTimeLeftError(record.message_id)
            message = record.json_body
            attempt = int(record.attributes.approximate_receive_count or 1)
            started = time.monotonic()
            with record_log_keys(job_id=message["jobId"]):
                result = operation_jobs.run_async_job(
                    message["workspaceId"],
                    message["jobId"],
                    InProcessTarget(request_id=record.message_id, context=context),
                    Deadline.after(TIMEOUT_MS / 1000),
                    last_attempt=attempt >= get_settings().job_max_receives,
                )
            if result is not None:
                record_batch("Async", result, (time.monotonic() - started) * 1000)

        return sqs_worker(run_job)

    return LazyHandler(build)


def transaction_step_handler() -> LazyHandler:
    def build() -> LambdaHandler:
        from batchops.api.dispatch import InProcessTarget
        from batchops.services import operation_jobs

        @logger().inject_lambda_context
        @tracer().capture_lambda_handler(capture_response=False)
        def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            logger().append_keys(job_id=event["jobId"])
            target = InProcessTarget(request_id=event["jobId"], context=context)
            return operation_jobs.run_transaction_step(
                event["workspaceId"], event["jobId"], int(event["index"]), target
            )

        handler: LambdaHandler = handle
        return handler

    return LazyHandler(build)


def run_worker_handler() -> LazyHandler:
    def build() -> LambdaHandler:
        # Imported here: only this worker calls out over HTTP (httpx costs every other function's cold start).
        from batchops.services import run_worker

        def deliver(record: SQSRecord, context: LambdaContext) -> None:
            message = record.json_body
            with record_log_keys(run_id=message["run_id"]):
                delivery = run_worker.deliver(
                    message["workspace_id"], message["run_id"], remaining_ms=context.get_remaining_time_in_millis()
                )
            if delivery.retry_in_seconds is not None:
                # Reported as a batch item failure, so the message is kept, and hidden until then.
                run_worker.defer(record.receipt_handle, delivery.retry_in_seconds, record.event_source_arn)
                raise RetryLaterError(f"retry in {delivery.retry_in_seconds} s")

        return sqs_worker(deliver, concurrent=True)

    return LazyHandler(build)


def tracking_worker_handler() -> LazyHandler:
    def build() -> LambdaHandler:
        from batchops.services import tracking

        def store(record: SQSRecord, context: LambdaContext) -> None:
            tracking.store_message(record.body)

        return sqs_worker(store)

    return LazyHandler(build)


def tracking_upload_worker_handler() -> LazyHandler:
    def build() -> LambdaHandler:
        from urllib.parse import unquote_plus

        from aws_lambda_powertools.utilities.data_classes import S3Event

        from batchops.errors import RateLimitedError
        from batchops.services import tracking_uploads

        def ingest(record: SQSRecord, context: LambdaContext) -> None:
            # S3 notifies the queue; an s3:TestEvent (sent when the notification is set up) has no records.
            for notice in S3Event(record.json_body).records if "Records" in record.json_body else ():
                if not notice.event_name.startswith("ObjectCreated"):
                    continue
                # Notifications URL-encode the key (spaces as "+").
                key = unquote_plus(notice.s3.get_object.key)
                with record_log_keys(object_key=key):
                    try:
                        outcome = tracking_uploads.ingest(
                            notice.s3.bucket.name, key, notice.s3.get_object.etag, notice.event_time
                        )
                    except RateLimitedError as limited:
                        tracking_uploads.defer(record.receipt_handle, limited.retry_after_seconds)
                        raise RetryLaterError(
                            f"events budget spent; retry in {limited.retry_after_seconds} s"
                        ) from None
                logger().info("Upload ingested", extra={"outcome": outcome})

        return sqs_worker(ingest)

    return LazyHandler(build)


def sweeper_handler() -> LazyHandler:
    def build() -> LambdaHandler:
        from batchops.services import operation_jobs, runs

        @logger().inject_lambda_context
        @tracer().capture_lambda_handler(capture_response=False)
        def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            # Ended: FAILED, or COMPLETED when an abandoned job's every result was recorded.
            ended = operation_jobs.sweep_overdue_jobs()
            if ended:
                logger().warning("Ended overdue operations jobs", extra={"jobs": ended})
            requeued = runs.sweep_overdue_runs()
            if requeued:
                logger().warning("Queued overdue runs again", extra={"runs": requeued})
            return {"ended_jobs": ended, "requeued_runs": requeued}

        handler: LambdaHandler = handle
        return handler

    return LazyHandler(build)


def batch_job_worker_handler(*, expedited: bool) -> LazyHandler:
    """A Batches job queue's consumer (seed 002): urgent/high jobs have their own queue and
    function, so a backlog of low-priority jobs never delays them."""

    def build() -> LambdaHandler:
        # Imported here: only the job workers call out over HTTP.
        from batchops.api.dispatch import InProcessTarget
        from batchops.services import batch_worker

        def run_job(record: SQSRecord, context: LambdaContext) -> None:
            message = record.json_body
            with record_log_keys(batch_id=message["batch_id"], job_index=message["index"]):
                delivery = batch_worker.run(
                    message["workspace_id"],
                    message["batch_id"],
                    int(message["index"]),
                    remaining_ms=context.get_remaining_time_in_millis(),
                    target=InProcessTarget(request_id=record.message_id, context=context),
                )
            if delivery.retry_in_seconds is not None:
                settings = get_settings()
                queue = settings.batch_urgent_job_queue_url if expedited else settings.batch_job_queue_url
                batch_worker.defer(queue, record.receipt_handle, delivery.retry_in_seconds)
                raise RetryLaterError(f"retry in {delivery.retry_in_seconds} s")

        return sqs_worker(run_job, concurrent=True)

    return LazyHandler(build)


def webhook_dispatcher_handler() -> LazyHandler:
    """WebhookQueue's consumer: one delivery attempt per message, signed and retried; on the
    last attempt a failing delivery is marked failed and its message done with (the DLQ is for
    messages no attempt could be made for)."""

    def build() -> LambdaHandler:
        from batchops.services import webhooks

        def dispatch(record: SQSRecord, context: LambdaContext) -> None:
            message = record.json_body
            receives = int(record.attributes.approximate_receive_count or 1)
            with record_log_keys(delivery_id=message["delivery_id"]):
                retry_in = webhooks.deliver(message["workspace_id"], message["delivery_id"], receive_count=receives)
            if retry_in is not None:
                webhooks.defer(record.receipt_handle, retry_in)
                raise RetryLaterError(f"retry in {retry_in} s")

        return sqs_worker(dispatch)

    return LazyHandler(build)


def batch_sweeper_handler() -> LazyHandler:
    """Every minute: batches past timeout_minutes end timed_out; stuck jobs are sent again."""

    def build() -> LambdaHandler:
        from batchops.services import batch_worker

        @logger().inject_lambda_context
        @tracer().capture_lambda_handler(capture_response=False)
        def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            with subscriptions_read_once():
                swept = batch_worker.sweep_batches()
            if any(swept.values()):
                logger().warning("Batches swept", extra=swept)
            return swept

        handler: LambdaHandler = handle
        return handler

    return LazyHandler(build)
