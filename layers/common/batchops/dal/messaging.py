"""SQS messages and Step Functions executions."""

from __future__ import annotations

import json
from typing import Any

from batchops.dal import clients
from batchops.observability import logger


def send_message(queue_url: str, body: dict[str, Any]) -> None:
    clients.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))


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
