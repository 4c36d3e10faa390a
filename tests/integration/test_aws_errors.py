"""AWS failures are answered as the docs promise, and clients never see AWS's or Python's own text
(issue 13).

- An AWS error that escapes a route (a throttle past botocore's retries, an outage) is 503
  STORAGE_ERROR with a generic message, on every route; it was a plain 500. AWS's message, which
  names tables and ARNs, goes to the log only.
- An async job that fails on its last attempt records a stable message, not the exception's text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchops.api.dispatch import InProcessTarget
from batchops.api.router import Endpoint
from batchops.api.routes import route_table
from batchops.dal import clients
from batchops.services import operation_jobs
from batchops.services.operations import Deadline
from batchops.settings import reset_settings
from batchops_local.template import load_template
from tests.support import ROOT, api_event, fixture_event, invoke, load_function, log_entry, operation, wire_environment

pytestmark = pytest.mark.usefixtures("aws")

TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTION_OF_ROUTE = {(route.method, route.path): route.function_name for route in TEMPLATE.routes}
SECRET = "arn:aws:dynamodb:us-east-1:123456789012:table/DomainTable"
LEAKS = ("arn:aws", "123456789012", "Throttl", "ProvisionedThroughput", "botocore", "Traceback", "RuntimeError")
# Routes that, with their sample request, reach no AWS call past the rate limiter (whose failure
# lets a request through): they answer as usual.
NO_STORAGE = {
    ("GET", "/v1/batch/limits"): 200,
    ("POST", "/v1/batch/dry-run"): 200,
    ("POST", "/v1/batch"): 200,  # each operation is answered 503 inside the 200
    ("GET", "/v1/batch-operations"): 404,  # the sample's project_id is another workspace's
    ("GET", "/v1/batch-operations/{batchID}"): 404,
}
AUTHENTICATED = [e for e in route_table() if e.auth]


@pytest.fixture
def environment(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    wire_environment(monkeypatch)
    monkeypatch.setenv(
        "BATCHOPS_TRANSACTION_STATE_MACHINE_ARN",
        "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine",
    )
    reset_settings()
    yield
    reset_settings()


def throttle_everything() -> None:
    """Every call of every AWS client fails the way a throttle that outlasted botocore's retries
    does, with AWS's message naming the table."""

    def throttled(model: Any, **_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": "ProvisionedThroughputExceededException", "Message": f"Rate exceeded for {SECRET}"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            model.name,
        )

    for service in ("dynamodb", "sqs", "s3", "stepfunctions", "ses"):
        clients.client(service).meta.events.register("before-call.*.*", throttled)


def call(endpoint: Endpoint, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    folder = TEMPLATE.functions[FUNCTION_OF_ROUTE[endpoint.key]].code_dir.name
    sample = fixture_event(folder)
    names = re.findall(r"\{(\w+)\}", endpoint.path)
    parameters = {n: (sample.get("pathParameters") or {}).get(n, "x") for n in names} or None
    event = api_event(folder, path_params=parameters, headers=headers)
    event["resource"] = endpoint.path  # a function serving two routes has one sample
    status, _, body = invoke(load_function(folder), event)
    return status, body, json.dumps(body)


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize("endpoint", AUTHENTICATED, ids=lambda e: f"{e.method} {e.path}")
def test_a_throttle_escaping_any_route_is_503_storage_error_without_aws_text(endpoint: Endpoint) -> None:
    throttle_everything()
    status, body, text = call(endpoint)
    assert not any(leak in text for leak in LEAKS), text
    expected = NO_STORAGE.get(endpoint.key, 503)
    assert status == expected, body
    if status == 503:
        assert body["code"] == "STORAGE_ERROR"
        assert set(body) <= {"error", "code", "details"}


@pytest.mark.usefixtures("environment")
def test_a_throttled_idempotency_store_is_503_too() -> None:
    # Powertools' idempotency layer wraps the AWS error in its own (raised from it).
    throttle_everything()
    endpoint = next(e for e in route_table() if e.key == ("POST", "/v1/jobs"))
    status, body, text = call(endpoint, headers={"Idempotency-Key": "throttled-1"})
    assert (status, body["code"]) == (503, "STORAGE_ERROR"), body
    assert not any(leak in text for leak in LEAKS), text


def test_the_503_is_logged_with_what_aws_said(environment: None, caplog: pytest.LogCaptureFixture) -> None:
    throttle_everything()
    endpoint = next(e for e in route_table() if e.key == ("GET", "/v1/jobs"))
    status, _, _ = call(endpoint)
    assert status == 503
    logged = [
        r for r in caplog.records if getattr(r, "aws_error_code", None) == "ProvisionedThroughputExceededException"
    ]
    assert logged and SECRET in str(getattr(logged[0], "aws_error", "")), [r.getMessage() for r in caplog.records]


# ---------------------------------------------------------------- async jobs


class _Exploding(InProcessTarget):
    def call(self, caller: Any, op: Any) -> tuple[int, Any]:
        raise RuntimeError(f"connect to {SECRET} failed: Traceback (most recent call last)")


def test_an_async_job_failing_on_its_last_attempt_records_no_raw_exception_text(environment: None) -> None:
    submitted = invoke(
        load_function("batch_async_submit"),
        api_event("batch_async_submit", body={"operations": [operation("a", "/v1/events", log_entry("x"))]}),
    )
    assert submitted[0] == 202, submitted[2]
    job_id = submitted[2]["data"]["jobId"]

    result = operation_jobs.run_async_job("ws-a", job_id, _Exploding(), Deadline.after(10), last_attempt=True)

    assert result is None
    status, _, answer = invoke(
        load_function("batch_async_get"), api_event("batch_async_get", path_params={"jobId": job_id})
    )
    job = answer["data"]
    assert (status, job["status"]) == (200, "FAILED")
    assert job["error"] and not any(leak in job["error"] for leak in LEAKS), job["error"]
