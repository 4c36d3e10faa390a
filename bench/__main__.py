"""`make bench`: print the figures recorded in bench/RESULTS.md.

- AWS requests per 1,000 event-log entries, counted with a botocore `before-call` hook
  under moto (counts are exact; moto's timings are not meaningful).
- CPU per entry of validating and shaping a batch (no AWS).
- Cold start: importing each function module, and importing + first invocation of the
  health function, each in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Batchops",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)


def counting_clients(*services: str) -> Counter[str]:
    """Install clients for `services` that count every AWS request by operation name."""
    import boto3

    from batchops.dal import clients
    from tests.support import count_requests

    counts: Counter[str] = Counter()
    for service in services:
        client = boto3.session.Session().client(service)
        count_requests(client, service, counts)
        clients.set_client(service, client)
    return counts


def requests_per_1000_entries() -> dict[str, Counter[str]]:
    from moto import mock_aws

    from batchops.dal import clients
    from batchops.services import event_log
    from tests.support import create_template_resources, log_entry

    results: dict[str, Counter[str]] = {}
    with mock_aws():
        create_template_resources()
        clients.reset_clients()
        counts = counting_clients("dynamodb")
        plain = [log_entry(f"c{i}") for i in range(1000)]
        event_log.create_batch("bench", plain, "b1")
        results["1,000 entries without idempotencyKey"] = Counter(counts)
        counts.clear()
        keyed = [{**e, "idempotencyKey": f"k{i}"} for i, e in enumerate(plain)]
        event_log.create_batch("bench", keyed, "b2")
        results["1,000 entries with idempotencyKey (conditional writes)"] = Counter(counts)
        counts.clear()
        event_log.create_batch("bench", keyed, "b2")
        results["the same 1,000 keyed entries again (all already stored)"] = Counter(counts)
        counts.clear()
        event_log.get_batch("bench", "b2", page=1, page_size=100, status=None)
        results["GET one page of a 1,000-entry batch"] = Counter(counts)
    clients.reset_clients()
    return results


def requests_per_operation() -> dict[str, Counter[str]]:
    """AWS requests of 100-operation batches (each operation: POST /v1/events, one entry), per
    mode: what every mode adds on top of the operations' own writes."""
    import boto3
    from moto import mock_aws

    from batchops.api.dispatch import InProcessTarget
    from batchops.dal import clients
    from batchops.models.common import Caller, Plan
    from batchops.models.operations import BatchRequest
    from batchops.services import operation_jobs, operations
    from batchops.services.operations import Deadline
    from batchops.settings import reset_settings
    from tests.support import create_template_resources, log_entry

    caller = Caller(workspace_id="bench", key_id="key_bench", plan=Plan.PRO)

    def batch(n: int) -> BatchRequest:
        ops = [
            {
                "id": f"o{i}",
                "method": "POST",
                "path": "/v1/events",
                "body": log_entry(f"c{i}"),
            }
            for i in range(n)
        ]
        return BatchRequest.model_validate({"operations": ops})

    results: dict[str, Counter[str]] = {}
    with mock_aws():
        create_template_resources()
        os.environ["BATCHOPS_WORK_QUEUE_URL"] = boto3.client("sqs").get_queue_url(QueueName="WorkQueue")["QueueUrl"]
        reset_settings()
        clients.reset_clients()
        counts = counting_clients("dynamodb", "sqs")
        operations.run(caller, batch(100), InProcessTarget(), Deadline.after(60))
        results["sync, 100 operations"] = Counter(counts)
        counts.clear()
        created = operation_jobs.submit_async(caller, batch(100), 10_000)
        results["async submit, 100 operations"] = Counter(counts)
        counts.clear()
        operation_jobs.run_async_job("bench", created.jobId, InProcessTarget(), Deadline.after(60), last_attempt=False)
        results["async worker, 100 operations"] = Counter(counts)
    clients.reset_clients()
    os.environ.pop("BATCHOPS_WORK_QUEUE_URL", None)
    reset_settings()
    return results


def requests_per_bulk_trigger() -> dict[str, Counter[str]]:
    """AWS requests of a 500-item trigger-bulk, and of delivering one run (the worker calls a
    local HTTP endpoint; only AWS requests are counted)."""
    import boto3
    from moto import mock_aws

    from batchops.dal import clients
    from batchops.models.common import Caller, Plan
    from batchops.models.jobs import BulkTriggerRequest, JobCreate
    from batchops.services import jobs, run_worker, runs
    from batchops.settings import reset_settings
    from tests.job_endpoint import job_endpoints
    from tests.support import create_template_resources

    caller = Caller(workspace_id="bench", key_id="key_bench", plan=Plan.PRO)

    def items(start: int, keys: bool = False) -> BulkTriggerRequest:
        made = [
            {"payload": {"n": n}, **({"idempotency_key": f"k{n}"} if keys else {})} for n in range(start, start + 500)
        ]
        return BulkTriggerRequest.model_validate({"items": made})

    results: dict[str, Counter[str]] = {}
    with mock_aws(), job_endpoints() as server:
        create_template_resources()
        queue = boto3.client("sqs").get_queue_url(QueueName="RunQueue")["QueueUrl"]
        os.environ.update({"BATCHOPS_RUN_QUEUE_URL": queue, "BATCHOPS_LOCAL_MODE": "true"})
        reset_settings()
        clients.reset_clients()
        plain = jobs.create_job(caller, JobCreate(name="plain", endpoint_url=server.url("/plain")))
        windowed = jobs.create_job(
            caller, JobCreate(name="windowed", endpoint_url=server.url("/w"), dedup_window_secs=600)
        )
        counts = counting_clients("dynamodb", "sqs")
        runs.trigger_bulk(caller, plain.id, items(0))
        results["trigger-bulk, 500 items, no keys, no window"] = Counter(counts)
        counts.clear()
        runs.trigger_bulk(caller, windowed.id, items(0, keys=True))
        results["trigger-bulk, 500 items with keys, dedup window"] = Counter(counts)
        counts.clear()
        runs.trigger_bulk(caller, windowed.id, items(0, keys=True))
        results["trigger-bulk, the same 500 again (all duplicates)"] = Counter(counts)
        counts.clear()
        message = boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"][0]
        body = json.loads(message["Body"])
        run_worker.deliver(body["workspace_id"], body["run_id"], remaining_ms=900_000)
        results["worker, one run of a batch delivered and completed"] = Counter(counts)
    clients.reset_clients()
    for name in ("BATCHOPS_RUN_QUEUE_URL", "BATCHOPS_LOCAL_MODE"):
        os.environ.pop(name, None)
    reset_settings()
    return results


def requests_per_batch() -> dict[str, Counter[str]]:
    """AWS requests of a 100-job Batches batch (seed 002, `max_parallel` 5): creating it, one job
    run by the worker (its release of the next job and its webhook emission included), all 100,
    and reading the results (the first read of a finished batch stores the four exports)."""
    import boto3
    from moto import mock_aws

    from batchops.api.dispatch import InProcessTarget
    from batchops.dal import clients
    from batchops.models.batches import BatchCreate
    from batchops.models.common import Caller, Plan
    from batchops.services import batch_worker, batches
    from batchops.settings import reset_settings
    from tests.job_endpoint import job_endpoints
    from tests.support import create_template_resources

    caller = Caller(workspace_id="bench", key_id="key_bench", plan=Plan.TEAM)
    results: dict[str, Counter[str]] = {}
    variables = {
        "BATCHOPS_LOCAL_MODE": "true",
        "BATCHOPS_EXPORTS_BUCKET": "exportsbucket",
    }
    with mock_aws(), job_endpoints() as server:
        create_template_resources()
        sqs = boto3.client("sqs")
        for variable, queue in (
            ("BATCHOPS_BATCH_JOB_QUEUE_URL", "BatchJobQueue"),
            ("BATCHOPS_BATCH_URGENT_JOB_QUEUE_URL", "BatchUrgentJobQueue"),
            ("BATCHOPS_WEBHOOK_QUEUE_URL", "WebhookQueue"),
        ):
            variables[variable] = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        os.environ.update(variables)
        reset_settings()
        clients.reset_clients()
        request = BatchCreate.model_validate(
            {
                "name": "bench",
                "jobs": [
                    {"id": f"j{n}", "type": "http", "config": {"url": server.url("/job"), "body": {"n": n}}}
                    for n in range(100)
                ],
                "options": {"max_parallel": 5},
            }
        )
        counts = counting_clients("dynamodb", "sqs", "s3")
        batch_id = batches.create_batch(caller, request)["batch_id"]
        results["create, 100 http jobs, max_parallel 5"] = Counter(counts)

        queue = variables["BATCHOPS_BATCH_JOB_QUEUE_URL"]

        def run_next() -> bool:
            got = sqs.receive_message(QueueUrl=queue).get("Messages", [])
            if not got:
                return False
            body = json.loads(got[0]["Body"])
            batch_worker.run(
                body["workspace_id"], body["batch_id"], body["index"], remaining_ms=900_000, target=InProcessTarget()
            )
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"])
            return True

        counts.clear()
        run_next()
        results["worker, one job (call, record, release the next, events)"] = Counter(counts)
        counts.clear()
        while run_next():
            pass
        results["worker, the other 99 jobs"] = Counter(counts)
        counts.clear()
        batches.results("bench", batch_id, fmt="json", include_raw=False, jobs=None)
        results["results JSON of the finished batch, first read (stores the exports)"] = Counter(counts)
        counts.clear()
        batches.results("bench", batch_id, fmt="xlsx", include_raw=False, jobs=None)
        results["results XLSX"] = Counter(counts)
    clients.reset_clients()
    for name in variables:
        os.environ.pop(name, None)
    reset_settings()
    return results


def validation_cpu_per_entry() -> float:
    from batchops.services.event_log import validate_entry
    from tests.support import log_entry

    entries = [log_entry(f"c{i}", "SUCCESS", metadata={"row": i, "source": "bench"}) for i in range(10_000)]
    runs = []
    for _ in range(5):
        start = time.process_time()
        for entry in entries:
            validate_entry(entry)
        runs.append((time.process_time() - start) / len(entries))
    return statistics.median(runs)


def requests_per_tracked_events() -> dict[str, tuple[Counter[str], int, int]]:
    """AWS requests to take in and store tracked events through the real handlers (the route,
    then the tracking worker over every queued message; uploads also the upload worker), with the
    events and the floor the batch limits set: events / 25 BatchWriteItem + the fewest 1 MiB
    messages their bytes allow. The rate-limit UpdateItems (one per request, one per events
    charge) are counted; SQS receive/delete, made by Lambda's event source mapping, are not."""
    import gzip

    import boto3
    from moto import mock_aws

    from batchops.dal import clients
    from batchops.settings import reset_settings
    from tests.support import LambdaContext, api_event, create_template_resources, invoke, load_function, sqs_event

    bulk, worker = load_function("bulk_track"), load_function("tracking_worker")
    create, uploads = load_function("create_tracking_upload"), load_function("tracking_upload_worker")

    def events(n: int, pad: int, ids: bool = True) -> list[dict[str, Any]]:
        return [
            {
                "event": "e",
                "properties": {"pad": "x" * pad},
                "timestamp": "2025-10-29T22:00:00Z",
                **({"messageId": f"m{n}-{i}"} if ids else {}),
            }
            for i in range(n)
        ]

    def drain(queue: str, handler: Any, fixture: str) -> int:
        """Deliver every message as the event source mapping would; returns their bytes."""
        sqs = boto3.client("sqs")  # not counted: Lambda's poller makes these calls
        size = 0
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                size += len(message["Body"].encode())
                assert handler.lambda_handler(sqs_event(fixture, [message]), LambdaContext()) == {
                    "batchItemFailures": []
                }
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return size

    results: dict[str, tuple[Counter[str], int, int]] = {}
    with mock_aws():
        create_template_resources()
        sqs = boto3.client("sqs")
        queue = sqs.get_queue_url(QueueName="TrackingQueue")["QueueUrl"]
        upload_queue = sqs.get_queue_url(QueueName="TrackingUploadQueue")["QueueUrl"]
        sqs.purge_queue(QueueUrl=upload_queue)  # S3's test event from setting the notification
        os.environ.update(
            BATCHOPS_TRACKING_QUEUE_URL=queue,
            BATCHOPS_TRACKING_UPLOAD_QUEUE_URL=upload_queue,
            BATCHOPS_TRACKING_UPLOAD_BUCKET="trackinguploadbucket",
        )
        reset_settings()
        clients.reset_clients()
        for label, sent, path in (
            ("5,000 events, 10 MB gzip body, bulk-track", events(5_000, 1_950), "direct"),
            ("5,000 events, 10 MB gzip body, upload", events(5_000, 1_950), "upload"),
            ("10,000 small events, bulk-track", events(10_000, 10), "direct"),
            ("10,000 small events without messageIds, bulk-track", events(10_000, 10, ids=False), "direct"),
        ):
            counts = counting_clients("dynamodb", "sqs", "s3")
            body = gzip.compress(json.dumps(sent).encode())
            if path == "direct":
                request = api_event(
                    "bulk_track", raw_body=body, headers={"Content-Encoding": "gzip"}, plan="enterprise"
                )
                status, _, answer = invoke(bulk, request)
                assert status == 200 and len(answer["messageIds"]) == len(sent), answer
            else:
                status, _, form = invoke(create, api_event("create_tracking_upload", plan="enterprise"))
                assert status == 201
                boto3.client("s3").put_object(Bucket="trackinguploadbucket", Key=form["fields"]["key"], Body=body)
                drain(upload_queue, uploads, "tracking_upload_worker")
            size = drain(queue, worker, "tracking_worker")
            floor = -(-len(sent) // 25) + -(-size // (1024 * 1024))
            results[label] = (Counter(counts), floor, len(sent))
    clients.reset_clients()
    for name in (
        "BATCHOPS_TRACKING_QUEUE_URL",
        "BATCHOPS_TRACKING_UPLOAD_QUEUE_URL",
        "BATCHOPS_TRACKING_UPLOAD_BUCKET",
    ):
        os.environ.pop(name, None)
    reset_settings()
    return results


def tracking_events_per_second() -> float:
    """Events per CPU-second of taking a 10,000-event bulk-track body from raw bytes to
    accepted, packable JSON (json.loads, pydantic per event, messageId, serialization)."""
    from batchops.services.tracking import check_events

    events = [
        {
            "event": "signup",
            "properties": {"plan": "basic", "accountType": "email", "freeTrial": True},
            "timestamp": "2025-10-29T22:00:00.778Z",
            **({"messageId": f"8b0f62f9-1e8e-4f15-8c2a-{i:012d}"} if i % 2 else {}),
        }
        for i in range(10_000)
    ]
    raw = json.dumps(events).encode()
    runs = []
    for _ in range(5):
        start = time.process_time()
        checked = check_events(json.loads(raw), "2026-11-23T00:00:00.000000Z")
        runs.append(time.process_time() - start)
        assert len(checked.accepted) == len(events)
    return len(events) / statistics.median(runs)


COLD = """
import sys, time, importlib.util
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
imported = time.perf_counter()
if len(sys.argv) > 2:
    event = {"resource": "/v1/health", "path": "/v1/health", "httpMethod": "GET", "headers": {},
             "requestContext": {"requestId": "r", "stage": "prod"}, "body": None}
    class Ctx:
        function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "r"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    module.lambda_handler(event, Ctx())
print(f"{(imported - start) * 1000:.1f} {(time.perf_counter() - start) * 1000:.1f}")
"""


def cold_start_ms(function: str, invoke: bool = False) -> tuple[float, float]:
    samples = []
    for _ in range(5):
        args = [sys.executable, "-c", COLD, str(ROOT / "functions" / function / "app.py")]
        if invoke:
            args.append("invoke")
        run = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
        out = run.stdout.strip().splitlines()[-1].split()  # earlier lines are the EMF metric Powertools prints
        samples.append((float(out[0]), float(out[1])))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from batchops_local.moto_dynamodb import install as install_moto_dynamodb

    install_moto_dynamodb()  # moto would copy whole tables per TransactWriteItems
    print("## AWS requests (exact counts)")
    for label, counts in requests_per_1000_entries().items():
        detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
        print(f"- {label}: {sum(counts.values())} requests ({detail})")
    print("\n## AWS requests per operations batch (exact counts)")
    for label, counts in requests_per_operation().items():
        detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
        print(f"- {label}: {sum(counts.values())} requests ({detail})")
    print("\n## AWS requests of bulk triggers and runs (exact counts)")
    for label, counts in requests_per_bulk_trigger().items():
        detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
        print(f"- {label}: {sum(counts.values())} requests ({detail})")
    print("\n## AWS requests of a Batches batch (exact counts; the bench receives the job messages itself, uncounted)")
    for label, counts in requests_per_batch().items():
        detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
        print(f"- {label}: {sum(counts.values())} requests ({detail})")
    print("\n## Validation CPU")
    per_entry = validation_cpu_per_entry()
    print(f"- {per_entry * 1e6:.1f} us CPU per entry ({1 / per_entry:,.0f} entries/s on one core)")
    print("\n## AWS requests to take in and store tracked events (exact counts)")
    for label, (counts, floor, sent) in requests_per_tracked_events().items():
        detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
        total = sum(counts.values())
        print(
            f"- {label}: {total} requests, {1000 * total / sent:.1f} per 1,000 events ({detail}); "
            f"floor {floor}, {100 * (total - floor) / floor:+.1f} %"
        )
    print("\n## Tracking validation CPU (10,000 small events from raw bytes, median of 5)")
    print(f"- {tracking_events_per_second():,.0f} events/s on one core")
    print("\n## Cold start (median of 5 fresh interpreters)")
    for function in FUNCTIONS:
        imported, _ = cold_start_ms(function)
        print(f"- import functions/{function}/app.py: {imported:.1f} ms")
    imported, total = cold_start_ms("health", invoke=True)
    print(f"- health: import + first invocation (resolver built, Powertools loaded): {total:.1f} ms")


if __name__ == "__main__":
    main()
