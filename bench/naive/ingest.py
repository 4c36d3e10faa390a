"""Naive ingest Lambda behind API Gateway: the request body is a JSON list of items; each item
becomes one SQS message (one SendMessage each, as the samples' `sqs.send_message` loop does)."""

from __future__ import annotations

import json
import os
from typing import Any

from batchops.dal import clients
from bench.naive import QUEUE


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    items = json.loads(event["body"])
    queue_url = os.environ.get("NAIVE_QUEUE_URL") or clients.client("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs = clients.client("sqs")
    for item in items:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(item))
    return {"statusCode": 202, "body": json.dumps({"accepted": len(items)})}
