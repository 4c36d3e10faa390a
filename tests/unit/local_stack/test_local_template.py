"""Template loading: Globals, intrinsics, events, API settings, resources, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchops_local.template import TemplateError, load_template

FIXTURE = Path(__file__).parent / "fixtures" / "template.yaml"
ENDPOINT = "http://127.0.0.1:5555"


@pytest.fixture(scope="module")
def template():
    return load_template(FIXTURE, ENDPOINT)


def test_globals_are_merged_into_each_function(template) -> None:
    api_fn = template.functions["ApiFunction"]
    worker = template.functions["WorkerFunction"]
    assert api_fn.timeout == 2  # the function's own value wins
    assert worker.timeout == 4  # from Globals
    assert api_fn.memory_mb == worker.memory_mb == 512
    assert api_fn.handler == "app.echo"
    assert template.functions["AuthFunction"].handler == "app.authorizer"
    assert api_fn.code_dir == FIXTURE.parent / "functions" / "handlers"
    # Variables merge: Globals' TABLE/QUEUE_URL/LOG_LEVEL plus the function's own.
    assert worker.environment == {
        "TABLE": "DomainTable",
        "QUEUE_URL": f"{ENDPOINT}/123456789012/WorkQueue",
        "LOG_LEVEL": "INFO",
    }
    # Layers concatenate (Globals first); only the template's own layer has a local folder.
    assert api_fn.layer_dirs == (FIXTURE.parent / "layer",)


def test_intrinsics_resolve_to_local_names(template) -> None:
    env = template.functions["ApiFunction"].environment
    assert env["QUEUE_NAME"] == "WorkQueue"
    assert env["MACHINE"] == "arn:aws:states:us-east-1:123456789012:stateMachine:Machine"
    # Sub list form with a variable, a pseudo parameter, a parameter and an escaped ${!Literal}.
    assert env["SUB_LIST"] == "OrderedQueue.fifo@us-east-1/v9/${Literal}"
    assert env["JOINED"] == "a,v9"
    assert env["FLAG"] == "true"
    # !If on a false condition with AWS::NoValue removes the variable.
    assert "EXTRA" not in env


def test_resources_with_a_false_condition_are_skipped(template) -> None:
    assert "ProdOnlyFunction" not in template.functions


def test_api_settings(template) -> None:
    api = template.api
    assert api.stage == "v9"
    assert api.default_authorizer == "TokenAuth"
    token = api.authorizers["TokenAuth"]
    assert (token.payload_type, token.function_name, token.identity_headers) == (
        "TOKEN",
        "AuthFunction",
        ("X-Token",),
    )
    assert (token.reauthorize_every, token.validation_expression) == (60, "tok-.*")
    request = api.authorizers["RequestAuth"]
    assert request.payload_type == "REQUEST"
    assert request.function_name == "AuthFunction"  # from a !Sub-built ARN
    assert request.identity_headers == ("Authorization",)
    assert request.identity_query_strings == ("tenant",)
    assert request.reauthorize_every == 300  # SAM's default
    # Globals.Api and the Api's own list concatenate; SAM's "~1" stands for "/".
    assert api.binary_media_types == ("application/gzip", "image/png")
    unauthorized = api.gateway_responses["UNAUTHORIZED"]
    assert unauthorized.status_code == 401
    # Header values are quoted literals in the template: "'*'" is *.
    assert unauthorized.headers == {"Access-Control-Allow-Origin": "*", "WWW-Authenticate": "Bearer"}
    assert api.gateway_responses["DEFAULT_5XX"].status_code is None
    assert api.cors is not None
    assert (api.cors.allow_origin, api.cors.allow_methods, api.cors.allow_credentials) == (
        "https://app.example",
        "GET,POST",
        True,
    )


def test_routes_and_their_authorizers(template) -> None:
    routes = {(r.method, r.path): r for r in template.routes}
    assert set(routes) == {("GET", "/items/{id}"), ("ANY", "/proxy/{proxy+}"), ("POST", "/req")}
    assert routes[("GET", "/items/{id}")].authorizer == "TokenAuth"  # the default
    assert routes[("ANY", "/proxy/{proxy+}")].authorizer is None  # Auth.Authorizer: NONE
    assert routes[("POST", "/req")].authorizer == "RequestAuth"
    assert {r.function_name for r in template.routes} == {"ApiFunction"}


def test_sqs_and_schedule_events(template) -> None:
    worker = template.functions["WorkerFunction"]
    (sqs,) = worker.sqs_events
    assert sqs.queue_arn == "arn:aws:sqs:us-east-1:123456789012:WorkQueue"
    assert (sqs.batch_size, sqs.batching_window_seconds, sqs.report_batch_item_failures) == (25, 2.0, True)
    nightly, noon = worker.schedule_events
    assert (nightly.expression, nightly.enabled, nightly.input) == ("rate(1 day)", True, '{"job": "nightly"}')
    assert (noon.expression, noon.enabled) == ("cron(0 12 * * ? *)", False)


def test_tables_queues_and_state_machines(template) -> None:
    table = template.tables["DomainTable"]
    assert table.name == "DomainTable"
    assert [k["AttributeName"] for k in table.key_schema] == ["pk", "sk"]
    assert [g["IndexName"] for g in table.global_secondary_indexes] == ["gsi1"]
    assert table.ttl_attribute == "expires_at"
    work = template.queues["WorkQueue"]
    assert work.url == f"{ENDPOINT}/123456789012/WorkQueue"
    assert work.visibility_timeout == 180
    assert (work.dead_letter_arn, work.max_receive_count) == ("arn:aws:sqs:us-east-1:123456789012:WorkDLQ", 5)
    fifo = template.queues["OrderedQueue"]
    assert fifo.name == "OrderedQueue.fifo"  # SQS requires the suffix
    assert fifo.attributes == {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    machine = template.state_machines["Machine"]
    assert machine.type == "EXPRESS"
    assert machine.arn == "arn:aws:states:us-east-1:123456789012:stateMachine:Machine"
    run = json.loads(machine.definition)["States"]["Run"]
    assert run["Resource"] == "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    assert run["Comment"] == "reads WorkQueue in us-east-1"


def test_buckets_and_their_queue_notifications(template) -> None:
    upload = template.buckets["UploadBucket"]
    # S3 names are lowercase DNS names: the logical ID lowercased, unless BucketName is set.
    assert (upload.name, upload.arn) == ("uploadbucket", "arn:aws:s3:::uploadbucket")
    assert template.buckets["ArchiveBucket"].name == "batchops-v9-archive"
    created, removed = upload.queue_notifications
    assert created.events == ("s3:ObjectCreated:*",)
    assert created.queue_arn == "arn:aws:sqs:us-east-1:123456789012:UploadQueue"
    # "Prefix" is lowercased: moto would ignore it otherwise and notify for every key.
    assert (created.prefix, created.suffix) == ("uploads/v9/", ".json")
    assert (removed.events, removed.prefix, removed.suffix) == (("s3:ObjectRemoved:*",), None, None)
    # CloudFormation's names become PutBucketCors's (ExposedHeaders -> ExposeHeaders, MaxAge -> ...).
    assert upload.cors_rules == [
        {
            "ID": "form",
            "AllowedMethods": ["POST", "PUT"],
            "AllowedOrigins": ["https://app.example"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 600,
        }
    ]
    assert template.buckets["ArchiveBucket"].queue_notifications == ()
    assert template.buckets["ArchiveBucket"].cors_rules == []


def test_bucket_refs_and_arns_resolve_to_local_names(template) -> None:
    env = template.functions["ApiFunction"].environment
    assert env["BUCKET"] == "uploadbucket"
    assert env["BUCKET_ARN"] == "arn:aws:s3:::uploadbucket"
    assert env["ARCHIVE"] == "s3://batchops-v9-archive/"


def test_values_of_a_variable_across_functions(template) -> None:
    assert template.values_of("TABLE") == ["DomainTable"]
    assert template.values_of("QUEUE_NAME") == ["WorkQueue"]
    assert template.values_of("NOT_SET_ANYWHERE") == []


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text("Transform: AWS::Serverless-2016-10-31\nResources:\n" + body)
    return path


def _fn(name: str, env: str = "") -> str:
    return (
        f"  {name}:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        f"      CodeUri: fn/\n      Handler: app.handler\n{env}"
    )


def test_functions_may_give_one_variable_different_values(tmp_path: Path) -> None:
    # Each function runs in its own sandbox with its own environment, as on Lambda.
    env_a = "      Environment:\n        Variables:\n          MODE: fast\n"
    env_b = "      Environment:\n        Variables:\n          MODE: slow\n"
    template = load_template(_write(tmp_path, _fn("A", env_a) + _fn("B", env_b)))
    assert template.functions["A"].environment == {"MODE": "fast"}
    assert template.functions["B"].environment == {"MODE": "slow"}
    assert template.values_of("MODE") == ["fast", "slow"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _fn("A", "      Environment:\n        Variables:\n          X: !GetAtt Nope.Arn\n"),
            "unknown resource 'Nope'",
        ),
        (
            _fn("A", "      Environment:\n        Variables:\n          X: !Base64 abc\n"),
            "Fn::Base64 is not supported",
        ),
        (_fn("A", "      Timeout: !Ref Missing\n"), "unknown name 'Missing'"),
        (
            "  A:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: nowhere/\n"
            "      Handler: app.handler\n",
            "is not a folder",
        ),
        (
            "  Q:\n    Type: AWS::SQS::Queue\n  M:\n    Type: AWS::Serverless::StateMachine\n"
            "    Properties:\n      DefinitionUri: missing.asl.json\n",
            "DefinitionUri",
        ),
        (
            "  A1:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: a\n"
            "  A2:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: b\n",
            "one REST API",
        ),
        (
            _fn(
                "A",
                "      Events:\n        E:\n          Type: Api\n          Properties:\n"
                "            Path: /x\n            Method: get\n",
            )
            + _fn(
                "B",
                "      Events:\n        E:\n          Type: Api\n          Properties:\n"
                "            Path: /x\n            Method: GET\n",
            ),
            "declared twice",
        ),
    ],
)
def test_template_errors_say_where(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(_write(tmp_path, body))


_QUEUE = "  Q:\n    Type: AWS::SQS::Queue\n"


def _bucket(name: str, props: str) -> str:
    return f"  {name}:\n    Type: AWS::S3::Bucket\n    Properties:\n{props}"


def _notify(entry: str) -> str:
    return "      NotificationConfiguration:\n        QueueConfigurations:\n" + entry


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # One character lowercased is not a bucket name; S3 wants 3 to 63.
        (_bucket("B", "      Tags: []\n"), r"Resources\.B: 'b' is not a valid S3 bucket name"),
        (
            _bucket("B", "      BucketName: Not_Valid\n"),
            r"Resources\.B\.Properties\.BucketName: 'Not_Valid' is not a valid S3 bucket name",
        ),
        (
            _QUEUE
            + _bucket(
                "Uploads",
                _notify("          - Event: s3:ObjectCreated:*\n            Queue: arn:aws:sqs:us-east-1:1:Other\n"),
            ),
            r"QueueConfigurations\[0\]\.Queue: 'arn:aws:sqs:us-east-1:1:Other' is not the ARN of a queue",
        ),
        (
            _QUEUE
            + _bucket(
                "Uploads",
                _notify(
                    "          - Event: s3:ObjectCreated:*\n            Queue: !GetAtt Q.Arn\n"
                    "            Filter:\n              S3Key:\n                Rules:\n"
                    "                  - {Name: prefix, Value: a/}\n                  - {Name: Prefix, Value: b/}\n"
                ),
            ),
            r"Filter\.S3Key\.Rules\[1\]: a second prefix rule",
        ),
        (
            _QUEUE
            + _bucket(
                "Uploads",
                _notify(
                    "          - Event: s3:ObjectCreated:*\n            Queue: !GetAtt Q.Arn\n"
                    "            Filter:\n              S3Key:\n                Rules:\n"
                    "                  - {Name: contains, Value: a}\n"
                ),
            ),
            r"Rules\[0\]\.Name: expected prefix or suffix, got 'contains'",
        ),
        (
            _QUEUE
            + _bucket("Uploads", _notify("          - Event: ObjectCreated\n            Queue: !GetAtt Q.Arn\n")),
            r"QueueConfigurations\[0\]\.Event: expected an S3 event name",
        ),
        (
            _bucket(
                "Uploads",
                "      NotificationConfiguration:\n        LambdaConfigurations:\n"
                "          - Event: s3:ObjectCreated:*\n            Function: arn:aws:lambda:us-east-1:1:function:F\n",
            ),
            r"NotificationConfiguration\.LambdaConfigurations: only QueueConfigurations are emulated",
        ),
        (
            _bucket("Uploads", "      CorsConfiguration:\n        CorsRules:\n          - AllowedMethods: [GET]\n"),
            r"CorsRules\[0\]: AllowedMethods and AllowedOrigins are required",
        ),
        (
            # A domain name would be AWS's S3 host, which a local run must not reach.
            _bucket("Uploads", "      Tags: []\n")
            + _fn("A", "      Environment:\n        Variables:\n          X: !GetAtt Uploads.DomainName\n"),
            r"!GetAtt Uploads\.DomainName \(AWS::S3::Bucket\) is not emulated locally",
        ),
    ],
)
def test_bucket_errors_say_where(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(_write(tmp_path, body))


def test_not_a_template(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("just: text\n")
    with pytest.raises(TemplateError, match="no Resources"):
        load_template(path)
