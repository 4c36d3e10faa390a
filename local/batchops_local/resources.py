"""Create the template's tables, queues, buckets, state machines and functions in moto.

Everything comes from the parsed template, never from a hand-written list, so a table, queue or
bucket added to template.yaml exists locally on the next `make run`.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from typing import Any, Literal

import boto3

from batchops_local.template import ACCOUNT_ID, Bucket, Queue, Table, Template, TemplateError

# moto's Lambda checks that the execution role exists in its IAM; one dummy role serves all.
ROLE_NAME = "local"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"
_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _placeholder_zip() -> bytes:
    # moto only stores the code; invocations go to the in-process registry instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def create_table(dynamodb: Any, table: Table) -> None:
    params: dict[str, Any] = {
        "TableName": table.name,
        "KeySchema": table.key_schema,
        "AttributeDefinitions": table.attribute_definitions,
        "BillingMode": "PAY_PER_REQUEST",  # capacity means nothing in moto
    }
    if table.global_secondary_indexes:
        params["GlobalSecondaryIndexes"] = [
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for gsi in table.global_secondary_indexes
        ]
    if table.local_secondary_indexes:
        params["LocalSecondaryIndexes"] = [
            {k: v for k, v in lsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for lsi in table.local_secondary_indexes
        ]
    dynamodb.create_table(**params)
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )


def queues_in_creation_order(queues: Iterable[Queue]) -> list[Queue]:
    """Dead-letter queues before the queues that redrive into them."""
    by_arn = {q.arn: q for q in queues}
    ordered: list[Queue] = []
    visiting: set[str] = set()

    def visit(queue: Queue) -> None:
        if queue in ordered:
            return
        if queue.arn in visiting:
            raise TemplateError(f"queue {queue.logical_id}: the redrive policies form a cycle")
        visiting.add(queue.arn)
        if queue.dead_letter_arn is not None:
            if queue.dead_letter_arn not in by_arn:
                raise TemplateError(
                    f"queue {queue.logical_id}: dead-letter target {queue.dead_letter_arn} is not in the template"
                )
            visit(by_arn[queue.dead_letter_arn])
        ordered.append(queue)

    for queue in by_arn.values():
        visit(queue)
    return ordered


def create_queue(sqs: Any, queue: Queue) -> None:
    attributes = dict(queue.attributes)
    if queue.dead_letter_arn is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": queue.dead_letter_arn, "maxReceiveCount": queue.max_receive_count}
        )
    sqs.create_queue(QueueName=queue.name, Attributes=attributes)


def create_bucket(s3: Any, bucket: Bucket) -> None:
    s3.create_bucket(Bucket=bucket.name)  # us-east-1: no LocationConstraint
    if bucket.cors_rules:
        # moto answers CORS preflights from these, so a browser form upload behaves as in AWS.
        s3.put_bucket_cors(Bucket=bucket.name, CORSConfiguration={"CORSRules": bucket.cors_rules})
    if bucket.queue_notifications:
        configurations: list[dict[str, Any]] = []
        for notification in bucket.queue_notifications:
            configuration: dict[str, Any] = {"QueueArn": notification.queue_arn, "Events": list(notification.events)}
            rules = [
                {"Name": name, "Value": value}
                for name, value in (("prefix", notification.prefix), ("suffix", notification.suffix))
                if value is not None
            ]
            if rules:
                configuration["Filter"] = {"Key": {"FilterRules": rules}}
            configurations.append(configuration)
        # Like S3, moto puts an s3:TestEvent message on each queue here.
        s3.put_bucket_notification_configuration(
            Bucket=bucket.name, NotificationConfiguration={"QueueConfigurations": configurations}
        )


def create_all(template: Template, endpoint: str | None, *, functions: bool = True) -> None:
    """Create everything at `endpoint` (None: the default endpoint, as under moto's `mock_aws`).

    `functions=False` leaves out the Lambda functions, which only state-machine tasks need."""
    # A session of its own: boto3's default session is the functions'.
    session = boto3.session.Session(region_name="us-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    for table in template.tables.values():
        create_table(dynamodb, table)
    sqs = session.client("sqs", endpoint_url=endpoint)
    for queue in queues_in_creation_order(template.queues.values()):
        create_queue(sqs, queue)
    # After the queues: setting a notification sends the queue a test event at once.
    s3 = session.client("s3", endpoint_url=endpoint)
    for bucket in template.buckets.values():
        create_bucket(s3, bucket)
    # SES sends only from a verified identity: the notification sender the functions use.
    for sender in template.values_of("BATCHOPS_EMAIL_SENDER"):
        session.client("ses", endpoint_url=endpoint).verify_email_identity(EmailAddress=sender)
    session.client("iam", endpoint_url=endpoint).create_role(
        RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST)
    )
    lambda_client = session.client("lambda", endpoint_url=endpoint)
    code = _placeholder_zip()
    for fn in template.functions.values() if functions else ():
        # State machine tasks name functions by ARN; moto must know them before our bridge runs them.
        lambda_client.create_function(
            FunctionName=fn.name,
            Runtime="python3.11",
            Role=ROLE_ARN,
            Handler="placeholder.handler",
            Code={"ZipFile": code},
            Timeout=int(fn.timeout),
            MemorySize=fn.memory_mb,
        )
    sfn = session.client("stepfunctions", endpoint_url=endpoint)
    for machine in template.state_machines.values():
        sm_type: Literal["STANDARD", "EXPRESS"] = "EXPRESS" if machine.type == "EXPRESS" else "STANDARD"
        sfn.create_state_machine(name=machine.name, definition=machine.definition, roleArn=ROLE_ARN, type=sm_type)
