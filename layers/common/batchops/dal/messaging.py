"""SQS messages and Step Functions executions."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchops.dal import clients
from batchops.observability import logger

SEND_CHUNK = 10  # SendMessageBatch's limit
MAX_SEND_WORKERS = 4


def send_message(queue_url: str, body: dict[str, Any]) -> None:
    clients.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))


def send_messages(
    queue_url: str,
    bodies: Sequence[dict[str, Any] | str],
    *,
    per_call: int = SEND_CHUNK,
    max_attempts: int = 6,
    delay_seconds: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """SendMessageBatch in tens (or `per_call`: one for messages near 1 MiB, the limit of a whole
    batch call), retrying the entries SQS refused (or a failed call) with backoff; return the
    indexes still unsent after the last attempt, so the caller can report them."""
    chunks = [list(range(n, min(n + per_call, len(bodies)))) for n in range(0, len(bodies), per_call)]

    # Only when asked: a FIFO queue refuses a per-message delay.
    delay = {"DelaySeconds": delay_seconds} if delay_seconds else {}

    def send_chunk(indexes: list[int]) -> list[int]:
        pending = indexes
        for attempt in range(max_attempts):
            if attempt:
                sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # noqa: S311 - jitter, not crypto
            try:
                response = clients.client("sqs").send_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "MessageBody": _text(bodies[i]), **delay} for i in pending],
                )
            except (BotoCoreError, ClientError):
                logger().warning("SendMessageBatch failed; retrying", exc_info=True)
                continue
            pending = sorted(int(failed["Id"]) for failed in response.get("Failed", []))
            if not pending:
                return []
        return pending

    if len(chunks) <= 1:
        return send_chunk(chunks[0]) if chunks else []
    with ThreadPoolExecutor(max_workers=min(MAX_SEND_WORKERS, len(chunks))) as pool:
        return sorted(i for unsent in pool.map(send_chunk, chunks) for i in unsent)


def _text(body: dict[str, Any] | str) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def delay_message(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Hide a received message for `seconds` (a retry later); SQS allows at most 12 hours."""
    clients.client("sqs").change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
    )


def start_execution(state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
    # Always named: the job id makes a retried start a no-op instead of a second run.
    response = clients.client("stepfunctions").start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
    )
    return str(response["executionArn"])


def execution_status(execution_arn: str) -> str:
    return str(clients.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"])


def stop_execution(execution_arn: str, cause: str) -> None:
    """Best effort: the execution may have finished meanwhile, and the caller reports the
    outcome from the stored results either way."""
    try:
        clients.client("stepfunctions").stop_execution(executionArn=execution_arn, cause=cause)
    except Exception:  # noqa: BLE001 - moto raises plain errors for finished executions
        logger().warning("Could not stop execution", extra={"execution_arn": execution_arn}, exc_info=True)
