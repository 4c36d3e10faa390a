"""IAM as deployed: roles from AWS's SAM transform, AWS's evaluation rules, and what a request asks."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from hypothesis import given
from hypothesis import strategies as st
from moto.core.botocore_stubber import MockRawResponse

from batchops_local.aws_requests import HttpRequest, TableKeys, access_requests, signer
from batchops_local.enforcement import Enforcer, from_botocore, to_botocore
from batchops_local.iam import (
    AccessRequest,
    Decision,
    Role,
    TemplateError,
    decide,
    glob_matches,
    load_roles,
    parse_policy,
)

ROOT = Path(__file__).resolve().parents[3]
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/DomainTable"
TABLES = {"DomainTable": TableKeys("pk", {"gsi1": "gsi1pk"})}


def policy(*statements: dict[str, Any]) -> Any:
    return parse_policy("p", {"Version": "2012-10-17", "Statement": list(statements)}, "test")


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


# --- evaluation ----------------------------------------------------------------------------------


def test_allow_deny_and_implicit_deny() -> None:
    put = AccessRequest("dynamodb:PutItem", TABLE)
    assert decide([policy(allow("dynamodb:PutItem", TABLE))], put) is Decision.ALLOWED
    assert decide([policy(allow("dynamodb:GetItem", TABLE))], put) is Decision.IMPLICIT_DENY
    assert decide([policy(allow("dynamodb:PutItem", f"{TABLE}/index/*"))], put) is Decision.IMPLICIT_DENY
    denied = policy(allow("dynamodb:*", "*"), {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": TABLE})
    assert decide([denied], put) is Decision.EXPLICIT_DENY
    # An explicit deny in one policy beats an allow in another.
    assert decide([policy(allow("*")), denied], put) is Decision.EXPLICIT_DENY


def test_action_names_are_case_insensitive_with_wildcards_resources_are_not() -> None:
    send = AccessRequest("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:RunQueue")
    assert decide([policy(allow("SQS:sendmessage*", "arn:aws:sqs:*:*:RunQueue"))], send) is Decision.ALLOWED
    assert decide([policy(allow("sqs:Send?essage", "arn:aws:sqs:*:*:runqueue"))], send) is Decision.IMPLICIT_DENY


def test_not_action_and_not_resource() -> None:
    request = AccessRequest("s3:GetObject", "arn:aws:s3:::bucket/results/1")
    everything_but_delete = {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"}
    assert decide([policy(everything_but_delete)], request) is Decision.ALLOWED
    not_uploads = {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::bucket/uploads/*"}
    assert decide([policy(not_uploads)], request) is Decision.ALLOWED
    blocked = AccessRequest("s3:GetObject", "arn:aws:s3:::bucket/uploads/1")
    assert decide([policy(not_uploads)], blocked) is Decision.IMPLICIT_DENY


LEADING = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["WS#*#TEVT#*"]}}


def test_for_all_values_string_like_on_leading_keys() -> None:
    scoped = policy(allow("dynamodb:PutItem", TABLE, Condition=LEADING))

    def put(*keys: str) -> Decision:
        return decide([scoped], AccessRequest("dynamodb:PutItem", TABLE, {"dynamodb:leadingkeys": keys}))

    assert put("WS#a#TEVT#m1") is Decision.ALLOWED
    assert put("WS#a#TEVT#m1", "WS#b#TEVT#m2") is Decision.ALLOWED
    assert put("WS#a#TEVT#m1", "WS#a#RATE#x") is Decision.IMPLICIT_DENY
    assert put("WS#a#JOB#1") is Decision.IMPLICIT_DENY
    # ForAllValues over no values holds (AWS's documented pitfall): a Scan has no leading keys.
    assert put() is Decision.ALLOWED


def test_condition_operators_on_present_and_missing_keys() -> None:
    def holds(condition: dict[str, Any], context: dict[str, tuple[str, ...]]) -> bool:
        request = AccessRequest("dynamodb:GetItem", TABLE, context)
        return decide([policy(allow("dynamodb:GetItem", TABLE, Condition=condition))], request) is Decision.ALLOWED

    key = "dynamodb:LeadingKeys"
    present = {"dynamodb:leadingkeys": ("WS#a#X",)}
    assert holds({"StringEquals": {key: "WS#a#X"}}, present)
    assert not holds({"StringEquals": {key: "ws#a#x"}}, present)
    assert holds({"StringEqualsIgnoreCase": {key: "ws#a#x"}}, present)
    assert not holds({"StringNotLike": {key: "WS#*"}}, present)
    # A missing key matches only negated operators, IfExists and Null: true.
    assert not holds({"StringEquals": {key: "WS#a#X"}}, {})
    assert holds({"StringNotEquals": {key: "WS#a#X"}}, {})
    assert holds({"StringEqualsIfExists": {key: "WS#a#X"}}, {})
    assert holds({"Null": {key: "true"}}, {})
    assert not holds({"Null": {key: "true"}}, present)
    assert not holds({"ForAnyValue:StringLike": {key: "WS#*"}}, {})
    assert holds({"ForAnyValue:StringLike": {key: ["nope", "WS#*"]}}, present)


@pytest.mark.parametrize(
    "statement",
    [
        allow("dynamodb:GetItem", Condition={"NumericLessThan": {"dynamodb:LeadingKeys": "1"}}),
        allow("dynamodb:GetItem", Condition={"StringEquals": {"aws:SourceIp": "1.2.3.4"}}),
        allow("dynamodb:GetItem", "arn:aws:dynamodb:*:*:table/${aws:username}"),
    ],
)
def test_what_the_local_stack_cannot_judge_stops_the_start(statement: dict[str, Any]) -> None:
    with pytest.raises(TemplateError):
        policy(statement)


@given(st.text(alphabet="ab*?:/#", max_size=8), st.text(alphabet="ab:/#", max_size=8))
def test_wildcards_match_like_iam(pattern: str, value: str) -> None:
    # Reference: * is any run (including none), ? exactly one character, the rest literal.
    def reference(p: str, v: str) -> bool:
        if not p:
            return not v
        if p[0] == "*":
            return any(reference(p[1:], v[i:]) for i in range(len(v) + 1))
        return bool(v) and (p[0] in ("?", v[0])) and reference(p[1:], v[1:])

    assert glob_matches(pattern, value) is reference(pattern, value)


# --- roles from the template ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def roles() -> dict[str, Role]:
    return load_roles(ROOT / "template.yaml", "http://127.0.0.1:5000")


def test_every_function_has_its_role_as_sam_expands_it(roles: dict[str, Role]) -> None:
    from batchops_local.template import load_template

    assert set(roles) == set(load_template(ROOT / "template.yaml").functions)
    track = roles["TrackFunction"]
    assert track.name == "TrackFunctionRole"
    names = {p.name for p in track.policies}
    # SAM's own additions (logs, X-Ray for Tracing: Active) and the template's managed policy.
    assert {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "RateLimitPolicy"} <= names
    event = AccessRequest("dynamodb:PutItem", TABLE, {"dynamodb:leadingkeys": ("WS#a#TEVT#m",)})
    assert track.decide(event) is Decision.ALLOWED
    other = AccessRequest("dynamodb:PutItem", TABLE, {"dynamodb:leadingkeys": ("WS#a#JOB#j",)})
    assert track.decide(other) is Decision.IMPLICIT_DENY
    # An SQS consumer gets the poller's permissions from SAM's AWSLambdaSQSQueueExecutionRole.
    worker = roles["RunWorkerFunction"]
    receive = AccessRequest("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:123456789012:RunQueue")
    assert worker.decide(receive) is Decision.ALLOWED
    assert track.decide(receive) is Decision.IMPLICIT_DENY


def test_credentials_are_distinct_per_role(roles: dict[str, Role]) -> None:
    keys = [role.access_key_id for role in roles.values()]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith("ASIA") and len(key) == 20 for key in keys)


# --- requests as botocore sends them ---------------------------------------------------------------


def _client(service: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="ASIAEXAMPLE", aws_secret_access_key="s", aws_session_token="t", region_name="us-east-1"
    )
    return session.client(service, endpoint_url="http://127.0.0.1:5000", config=Config(retries={"max_attempts": 1}))


def captured(service: str, call: Any) -> list[AccessRequest]:
    """What IAM is asked for the request `call(client)` makes, read from the bytes botocore sends."""
    requests: list[HttpRequest] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        requests.append(from_botocore(request))
        return AWSResponse(request.url, 200, HTTPHeaders(), MockRawResponse(b"{}"))

    client = _client(service)
    client.meta.events.register_first("before-send", capture)
    with contextlib.suppress(Exception):  # the canned answer may not parse; the request was captured
        call(client)
    request = requests[0]  # (botocore may retry after the canned answer: the same request again)
    key, signed_for = signer(request)
    assert key == "ASIAEXAMPLE"
    return access_requests(request, signed_for or "", TABLES)


def test_dynamodb_requests() -> None:
    item = {"pk": {"S": "WS#a#TEVT#m"}, "sk": {"S": "E"}}
    assert captured("dynamodb", lambda c: c.put_item(TableName="DomainTable", Item=item)) == [
        AccessRequest("dynamodb:PutItem", TABLE, {"dynamodb:leadingkeys": ("WS#a#TEVT#m",)})
    ]
    query = captured(
        "dynamodb",
        lambda c: c.query(
            TableName="DomainTable",
            IndexName="gsi1",
            KeyConditionExpression="#p = :p AND begins_with(gsi1sk, :s)",
            ExpressionAttributeNames={"#p": "gsi1pk"},
            ExpressionAttributeValues={":p": {"S": "WS#a#BATCH#b"}, ":s": {"S": "x"}},
        ),
    )
    assert query == [
        AccessRequest("dynamodb:Query", f"{TABLE}/index/gsi1", {"dynamodb:leadingkeys": ("WS#a#BATCH#b",)})
    ]
    transaction = captured(
        "dynamodb",
        lambda c: c.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "DomainTable", "Item": item}},
                {
                    "Update": {
                        "TableName": "DomainTable",
                        "Key": {"pk": {"S": "WS#a#RATE#r"}, "sk": {"S": "B"}},
                        "UpdateExpression": "SET a = :a",
                        "ExpressionAttributeValues": {":a": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "IdempotencyTable",
                        "Key": {"id": {"S": "x"}},
                        "ConditionExpression": "attribute_exists(id)",
                    }
                },
            ]
        ),
    )
    assert [(r.action, r.resource, dict(r.context)) for r in transaction] == [
        ("dynamodb:PutItem", TABLE, {"dynamodb:leadingkeys": ("WS#a#TEVT#m",)}),
        ("dynamodb:UpdateItem", TABLE, {"dynamodb:leadingkeys": ("WS#a#RATE#r",)}),
        ("dynamodb:ConditionCheckItem", TABLE.replace("DomainTable", "IdempotencyTable"), {}),
    ]
    batch = captured(
        "dynamodb",
        lambda c: c.batch_write_item(
            RequestItems={
                "DomainTable": [
                    {"PutRequest": {"Item": item}},
                    {"DeleteRequest": {"Key": {"pk": {"S": "WS#b#X"}, "sk": {"S": "1"}}}},
                ]
            }
        ),
    )
    assert [r.context["dynamodb:leadingkeys"] for r in batch] == [("WS#a#TEVT#m",), ("WS#b#X",)]
    assert {r.action for r in batch} == {"dynamodb:BatchWriteItem"}


def test_sqs_s3_states_ses_requests() -> None:
    url = "http://127.0.0.1:5000/123456789012/TrackingQueue"
    queue = "arn:aws:sqs:us-east-1:123456789012:TrackingQueue"
    batch = [{"Id": "1", "MessageBody": "{}"}]
    assert captured("sqs", lambda c: c.send_message_batch(QueueUrl=url, Entries=batch)) == [
        AccessRequest("sqs:SendMessage", queue)
    ]
    assert captured(
        "sqs", lambda c: c.change_message_visibility(QueueUrl=url, ReceiptHandle="r", VisibilityTimeout=1)
    ) == [AccessRequest("sqs:ChangeMessageVisibility", queue)]
    assert captured("s3", lambda c: c.put_object(Bucket="exports", Key="a/b c.json", Body=b"{}")) == [
        AccessRequest("s3:PutObject", "arn:aws:s3:::exports/a/b c.json")
    ]
    assert captured("s3", lambda c: c.get_object(Bucket="exports", Key="a/b")) == [
        AccessRequest("s3:GetObject", "arn:aws:s3:::exports/a/b")
    ]
    assert captured("s3", lambda c: c.list_objects_v2(Bucket="exports")) == [
        AccessRequest("s3:ListBucket", "arn:aws:s3:::exports")
    ]
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine"
    assert captured("stepfunctions", lambda c: c.start_execution(stateMachineArn=machine, name="n", input="{}")) == [
        AccessRequest("states:StartExecution", machine)
    ]
    sent = captured(
        "ses",
        lambda c: c.send_email(
            Source="Batchops <batchops@example.com>",
            Destination={"ToAddresses": ["a@example.com"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
        ),
    )
    assert sent == [AccessRequest("ses:SendEmail", "arn:aws:ses:us-east-1:123456789012:identity/batchops@example.com")]


def test_presigned_urls_are_signed_by_the_function() -> None:
    client = _client("s3")
    url = client.generate_presigned_url("get_object", Params={"Bucket": "exports", "Key": "x/1.csv"})
    request = HttpRequest("GET", url, {"Host": "127.0.0.1:5000"}, b"")
    assert signer(request) == ("ASIAEXAMPLE", "s3")
    assert access_requests(request, "s3", TABLES) == [AccessRequest("s3:GetObject", "arn:aws:s3:::exports/x/1.csv")]


def test_an_unreadable_request_from_a_function_is_refused_and_others_pass(roles: dict[str, Role]) -> None:
    logs: list[str] = []
    enforcer = Enforcer(roles.values(), TABLES, logs.append)
    role = roles["TrackFunction"]
    credential = f"AWS4-HMAC-SHA256 Credential={role.access_key_id}/20261207/us-east-1/kinesis/aws4_request, X"
    request = HttpRequest("POST", "http://127.0.0.1:5000/", {"Authorization": credential}, b"{}")
    denial = enforcer.check(request)
    assert denial is not None and denial.request is None
    assert "TrackFunction" in logs[0] and "kinesis" in logs[0]
    status, _, body = denial.response()
    assert status == 403 and b"AccessDenied" in body
    # Someone else's credentials (the stack's own, a developer's CLI): not a function's, not judged.
    other = HttpRequest(
        "POST", "http://127.0.0.1:5000/", {"Authorization": credential.replace(role.access_key_id, "AKIAOTHER")}, b"{}"
    )
    assert enforcer.check(other) is None


def test_denials_parse_as_each_services_access_denied(roles: dict[str, Role]) -> None:
    """The answer botocore gets back raises the ClientError code AWS would give."""
    from botocore.exceptions import ClientError

    logs: list[str] = []
    enforcer = Enforcer(roles.values(), TABLES, logs.append)
    role = roles["TrackFunction"]
    session = boto3.session.Session(
        aws_access_key_id=role.access_key_id,
        aws_secret_access_key=role.secret_access_key,
        aws_session_token=role.session_token,
        region_name="us-east-1",
    )

    def deny(request: Any, **_: Any) -> AWSResponse:
        denial = enforcer.check(from_botocore(request))
        assert denial is not None
        return to_botocore(request, denial)

    calls = {
        "dynamodb": (lambda c: c.scan(TableName="DomainTable"), "AccessDeniedException"),
        "sqs": (
            lambda c: c.send_message(QueueUrl="http://127.0.0.1:5000/123456789012/RunQueue", MessageBody="x"),
            "AccessDenied",
        ),
        "s3": (lambda c: c.put_object(Bucket="exports", Key="k", Body=b"x"), "AccessDenied"),
        "stepfunctions": (
            lambda c: c.describe_execution(executionArn="arn:aws:states:us-east-1:123456789012:execution:M:x"),
            "AccessDeniedException",
        ),
    }
    for service, (call, code) in calls.items():
        client = session.client(service, endpoint_url="http://127.0.0.1:5000")
        client.meta.events.register_first("before-send", deny)
        with pytest.raises(ClientError) as info:
            call(client)
        assert info.value.response["Error"]["Code"] == code, service
        assert "not authorized to perform" in info.value.response["Error"]["Message"]
    assert len(logs) == 4
    assert json.dumps(logs)  # plain strings
