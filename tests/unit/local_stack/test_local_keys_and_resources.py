"""API key seeding (BATCHOPS_LOCAL_API_KEYS), the queue creation order, and template.yaml's upload
bucket created in moto with its queue notification."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws

from batchops_local.keys import KeySpec, parse_key_specs, seed_api_keys
from batchops_local.resources import create_all, queues_in_creation_order
from batchops_local.template import Queue, TemplateError, load_template

REPO_TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


def test_default_key_spec() -> None:
    assert parse_key_specs(None) == [KeySpec("dev", "pro", None)]
    assert parse_key_specs("  ") == [KeySpec("dev", "pro", None)]


def test_key_specs_from_the_environment() -> None:
    assert parse_key_specs("acme:free:bo_abc, beta:pro:bo_x:y") == [
        KeySpec("acme", "free", "bo_abc"),
        KeySpec("beta", "pro", "bo_x:y"),
    ]
    for bad in ("acme:free", "acme::key", ":pro:key"):
        with pytest.raises(ValueError, match="workspace:plan:key"):
            parse_key_specs(bad)


def test_no_seeding_without_the_table_variable() -> None:
    # Must not even import the service (a test template has no domain table).
    assert seed_api_keys({"OTHER": "x"}, [KeySpec("dev", "pro", None)]) == []


def test_seeding_calls_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    fake = types.ModuleType("batchops.services.api_keys")

    def ensure_workspace(workspace_id: str, plan: str, name: str | None = None) -> None:
        calls.append(("ensure", workspace_id, plan))

    def create_key(workspace_id: str, secret: str | None = None) -> Any:
        calls.append(("create", workspace_id, secret))
        return types.SimpleNamespace(key=secret or "bo_generated", key_id="k1")

    fake.ensure_workspace = ensure_workspace  # type: ignore[attr-defined]
    fake.create_key = create_key  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "batchops.services.api_keys", fake)
    seeded = seed_api_keys({"BATCHOPS_TABLE_NAME": "DomainTable"}, parse_key_specs("a:free:bo_1,b:pro:bo_2"))
    assert [(k.workspace, k.plan, k.key) for k in seeded] == [("a", "free", "bo_1"), ("b", "pro", "bo_2")]
    assert calls == [
        ("ensure", "a", "free"),
        ("create", "a", "bo_1"),
        ("ensure", "b", "pro"),
        ("create", "b", "bo_2"),
    ]
    (default,) = seed_api_keys({"BATCHOPS_TABLE_NAME": "DomainTable"}, parse_key_specs(None))
    assert (default.workspace, default.plan, default.key) == ("dev", "pro", "bo_generated")


def _queue(name: str, dlq: str | None = None) -> Queue:
    arn = f"arn:aws:sqs:us-east-1:123456789012:{dlq}" if dlq else None
    return Queue(name, False, {}, arn, 3 if dlq else None, 30, "http://127.0.0.1:5000")


def test_dead_letter_queues_are_created_first() -> None:
    ordered = queues_in_creation_order([_queue("Work", "WorkDLQ"), _queue("Retry", "Work"), _queue("WorkDLQ")])
    assert [q.name for q in ordered] == ["WorkDLQ", "Work", "Retry"]


def test_redrive_problems() -> None:
    with pytest.raises(TemplateError, match="not in the template"):
        queues_in_creation_order([_queue("Work", "Missing")])
    with pytest.raises(TemplateError, match="cycle"):
        queues_in_creation_order([_queue("A", "B"), _queue("B", "A")])


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message now on the queue (moto's S3 notifies synchronously, inside the PUT)."""
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_the_upload_bucket_notifies_its_queue_for_uploads_only() -> None:
    template = load_template(REPO_TEMPLATE)
    bucket = template.buckets["TrackingUploadBucket"].name
    # The functions get the local name through Globals (one environment for all of them).
    assert template.values_of("BATCHOPS_TRACKING_UPLOAD_BUCKET")[0] == bucket == "trackinguploadbucket"
    with mock_aws():
        create_all(template, endpoint=None, functions=False)
        session = boto3.session.Session(region_name="us-east-1")
        s3, sqs = session.client("s3"), session.client("sqs")
        (config,) = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
        assert config["QueueArn"] == "arn:aws:sqs:us-east-1:123456789012:TrackingUploadQueue"
        assert config["Events"] == ["s3:ObjectCreated:*"]
        assert config["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}
        (cors,) = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
        assert (cors["AllowedMethods"], cors["MaxAgeSeconds"]) == (["POST"], 600)
        url = sqs.get_queue_url(QueueName="TrackingUploadQueue")["QueueUrl"]
        # As S3 does, moto confirms a new notification with a test event; the worker must skip it.
        assert [(b["Event"], b["Bucket"]) for b in _drain(sqs, url)] == [("s3:TestEvent", bucket)]

        s3.put_object(Bucket=bucket, Key="results/x", Body=b"{}")
        assert _drain(sqs, url) == []
        s3.put_object(Bucket=bucket, Key="uploads/ws-a/batch 1.json", Body=b'{"events": []}')
        (body,) = _drain(sqs, url)
        (record,) = body["Records"]
        assert record["eventSource"] == "aws:s3"
        assert record["eventName"] == "ObjectCreated:Put"
        assert record["s3"]["bucket"]["name"] == bucket
        assert record["s3"]["object"]["size"] == len(b'{"events": []}')
        # The key is URL-encoded in the event ("batch+1.json"), as in AWS: decode before GetObject.
        assert unquote_plus(record["s3"]["object"]["key"]) == "uploads/ws-a/batch 1.json"
