"""SQS event source mappings, the DLQ, S3 notifications, Step Functions executions and schedules in
the local stack."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.e2e.harness import RunningStack, wait_for


def records(stack: RunningStack, **match: Any) -> list[dict[str, Any]]:
    table = stack.client("dynamodb")
    # A low-level scan keeps the test independent of the resource layer's Decimal handling.
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": "RecordsTable"}
    while True:
        page = table.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    plain = [{k: next(iter(v.values())) for k, v in item.items()} for item in items]
    return [item for item in plain if all(item.get(k) == v for k, v in match.items())]


def queue_url(stack: RunningStack, name: str) -> str:
    return stack.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def test_worker_processes_sent_messages_and_deletes_them(stack: RunningStack) -> None:
    sqs = stack.client("sqs")
    url = queue_url(stack, "WorkQueue")
    tag = uuid.uuid4().hex
    sent = {
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"tag": tag, "n": n}),
            MessageAttributes={"color": {"DataType": "String", "StringValue": "blue"}},
        )["MessageId"]
        for n in range(3)
    }
    # The module's first invocation forks the function's first sandbox, which imports its handler
    # and makes its first boto3 client: on a fully loaded 2-core CI this took over 20 s once.
    done = wait_for(
        lambda: len(records(stack, tag=tag)) == 3 and records(stack, tag=tag),
        timeout=60,
        what="3 processed messages",
    )
    assert {item["message_id"] for item in done} == sent
    assert {item["receive_count"] for item in done} == {"1"}
    assert {item["attribute"] for item in done} == {"blue"}
    assert {item["event_source_arn"] for item in done} == {"arn:aws:sqs:us-east-1:123456789012:WorkQueue"}

    def drained() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return (
            attributes["ApproximateNumberOfMessages"] == "0"
            and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
        )

    wait_for(drained, what="the queue to be empty (processed messages deleted)")


def test_failing_message_reaches_the_dlq_after_max_receive_count(stack: RunningStack) -> None:
    sqs = stack.client("sqs")
    tag = uuid.uuid4().hex
    bad_id = sqs.send_message(
        QueueUrl=queue_url(stack, "WorkQueue"), MessageBody=json.dumps({"tag": tag, "fail": True})
    )["MessageId"]
    good_id = sqs.send_message(QueueUrl=queue_url(stack, "WorkQueue"), MessageBody=json.dumps({"tag": tag}))[
        "MessageId"
    ]
    dlq = queue_url(stack, "WorkDeadLetterQueue")

    def in_dlq() -> list[dict[str, Any]]:
        found = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return [m for m in found if json.loads(m["Body"]).get("tag") == tag]

    moved = wait_for(in_dlq, timeout=30, interval=0, what="the failing message in the DLQ")
    assert [m["MessageId"] for m in moved] == [bad_id]
    processed = records(stack, tag=tag)
    # maxReceiveCount 2: the poison message was tried twice; the good one once, then deleted.
    assert sorted(item["receive_count"] for item in processed if item["message_id"] == bad_id) == ["1", "2"]
    assert [item["receive_count"] for item in processed if item["message_id"] == good_id] == ["1"]


def test_presigned_post_upload_notifies_the_upload_worker(stack: RunningStack) -> None:
    # S3 confirmed the notification with a test event when the stack set it up; the worker got it.
    (test_event,) = wait_for(lambda: records(stack, kind="s3-test"), what="the s3:TestEvent at start")
    assert test_event["bucket"] == "uploadbucket"
    s3 = stack.client("s3")
    tag = uuid.uuid4().hex

    def upload(key: str, content: bytes) -> None:
        post = s3.generate_presigned_post("uploadbucket", key, ExpiresIn=300)
        # Path style: botocore uses it for an IP-address endpoint, so no bucket host name is needed.
        assert post["url"] == f"{stack.aws}/uploadbucket"
        response = httpx.post(post["url"], data=post["fields"], files={"file": ("batch.json", content)})
        assert response.status_code == 204, response.text

    upload(f"results/{tag}.json", b"not for the worker")
    upload(f"uploads/{tag}.json", json.dumps({"tag": tag}).encode())
    (done,) = wait_for(lambda: records(stack, kind="upload", key=f"uploads/{tag}.json"), what="the upload processed")
    assert (done["bucket"], done["event_name"]) == ("uploadbucket", "ObjectCreated:Post")
    assert json.loads(done["content"]) == {"tag": tag}  # read back by the worker from the local S3

    def drained() -> bool:
        url = queue_url(stack, "UploadQueue")
        attributes = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    # Once the queue is empty every notification has been handled: results/ sent none.
    wait_for(drained, what="the upload queue to be empty")
    assert records(stack, kind="upload", key=f"results/{tag}.json") == []


def run_execution(stack: RunningStack, payload: dict[str, Any]) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:TestStateMachine"
    execution = sfn.start_execution(stateMachineArn=arn, name=f"test-{uuid.uuid4().hex}", input=json.dumps(payload))
    return wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING" and d,
        what="the execution to finish",
    )


def test_state_machine_runs_the_lambda_task(stack: RunningStack) -> None:
    result = run_execution(stack, {"value": 4})
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"value": 8}


def test_state_machine_catches_the_failing_task_by_error_type(stack: RunningStack) -> None:
    result = run_execution(stack, {"value": 60})
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["value"] == 120
    assert output["outcome"] == "caught"
    assert output["error"]["Error"] == "ValueError"
    assert "value 120 is too big" in output["error"]["Cause"]


def test_schedule_fires_the_function(stack: RunningStack) -> None:
    ticks = wait_for(lambda: records(stack, kind="tick"), what="a scheduled invocation")
    assert ticks[0]["source"] == "aws.events"
    assert ticks[0]["detail_type"] == "Scheduled Event"
    assert ticks[0]["resources"][0] == {"S": "arn:aws:events:us-east-1:123456789012:rule/TickFunctionEvery5Minutes"}


def test_template_tables_have_their_gsi_and_ttl(stack: RunningStack) -> None:
    dynamodb = stack.client("dynamodb")
    table = dynamodb.describe_table(TableName="RecordsTable")["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-kind"]
    ttl = dynamodb.describe_time_to_live(TableName="RecordsTable")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    redrive = stack.client("sqs").get_queue_attributes(QueueUrl=queue_url(stack, "WorkQueue"), AttributeNames=["All"])
    policy = json.loads(redrive["Attributes"]["RedrivePolicy"])
    assert policy["maxReceiveCount"] == 2
    assert policy["deadLetterTargetArn"].endswith(":WorkDeadLetterQueue")
