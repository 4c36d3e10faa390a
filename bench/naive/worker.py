"""Naive worker Lambda: Powertools BatchProcessor with partial batch responses, one PutItem per
record into a table keyed by `pk` (the record's SQS message id) holding the item as a string."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from batchops.dal import clients
from bench.naive import TABLE

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    clients.dynamodb().put_item(TableName=TABLE, Item={"pk": {"S": record.message_id}, "body": {"S": record.body}})


def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
