"""Helpers shared by the test suites: load function modules, build events from events/ fixtures."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tests import roles

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "events"


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name (every handler is app.py). Its
    lambda_handler runs as the template's function, with that function's role (tests/roles.py)."""
    path = FUNCTIONS / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"function_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.lambda_handler = roles.as_function(roles.function_of(path.parent), module.lambda_handler)
    return module


class InProcessFunctions:
    """The template's functions invoked in the test process, as Lambda reports their outcome (for
    moto's Step Functions, whose Lambda tasks the local stack's bridge routes here)."""

    def __init__(self) -> None:
        self._modules: dict[str, ModuleType] = {}

    def invoke(self, name_or_arn: str, event: Any) -> Any:
        from batchops_local.functions import HandlerError
        from batchops_local.template import function_name_from_arn

        name = function_name_from_arn(name_or_arn)
        if name not in self._modules:
            folder = next(path for path, function in roles.functions_by_folder().items() if function == name)
            self._modules[name] = load_function(folder.name)
        try:
            return json.loads(json.dumps(self._modules[name].lambda_handler(event, LambdaContext(function_name=name))))
        except Exception as exc:
            raise HandlerError(name, type(exc).__name__, str(exc)) from exc


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "test"
    remaining_ms: int = 15_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def fixture_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def api_event(
    name: str,
    *,
    body: Any = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
    workspace: str | None = "ws-a",
    key_id: str = "key_test",
    plan: str = "pro",
) -> dict[str, Any]:
    """events/<name>.json with the given request parts swapped in."""
    event = copy.deepcopy(fixture_event(name))
    # The fixtures carry an example Idempotency-Key; a test opts in to one explicitly.
    event["headers"] = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "idempotency-key"}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    if raw_body is not None:
        if isinstance(raw_body, bytes):
            event["body"] = base64.b64encode(raw_body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = raw_body
            event["isBase64Encoded"] = False
    elif body is not None:
        event["body"] = json.dumps(body)
        event["isBase64Encoded"] = False
    if headers:
        event["headers"] = {**(event.get("headers") or {}), **headers}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if path_params is not None:
        event["pathParameters"] = path_params
        resource = event["resource"]
        path = resource
        for key, value in path_params.items():
            path = path.replace("{" + key + "}", value)
        event["path"] = path
        event["requestContext"]["path"] = path
    if workspace is None:
        event["requestContext"]["authorizer"] = None
    else:
        event["requestContext"]["authorizer"] = {
            "workspace_id": workspace,
            "key_id": key_id,
            "plan": plan,
            "principalId": workspace,
        }
    return event


def invoke(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Call a function's handler; return status, headers and the parsed JSON body."""
    result = module.lambda_handler(event, LambdaContext())
    body = result.get("body")
    try:
        parsed = json.loads(body) if body else None
    except json.JSONDecodeError:
        parsed = body
    headers = {k: v for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers.setdefault(k, values[-1] if values else "")
    return result["statusCode"], headers, parsed


def create_template_resources(*, functions: bool = False) -> None:
    """template.yaml's tables, queues and state machines in the active moto, made by the local
    stack's own loader, so tests, the local stack and AWS share one definition."""
    from batchops_local.resources import create_all
    from batchops_local.template import load_template

    create_all(load_template(ROOT / "template.yaml"), endpoint=None, functions=functions)


def wire_environment(monkeypatch: Any, *functions: str, skip: frozenset[str] = frozenset()) -> None:
    """Set the template's BATCHOPS_* settings of `functions` (logical ids; all when none are
    named) in the environment, each queue URL pointed at the active moto's queue, as the
    template's Globals and !Ref do on AWS. `skip`: settings the caller keeps its own value for."""
    import boto3

    from batchops_local.template import load_template

    template = load_template(ROOT / "template.yaml")
    sqs = boto3.client("sqs", region_name="us-east-1")
    for name in functions or tuple(template.functions):
        for variable, value in template.functions[name].environment.items():
            if variable in skip:
                continue
            if variable.endswith("_QUEUE_URL"):
                monkeypatch.setenv(variable, sqs.get_queue_url(QueueName=value.rsplit("/", 1)[-1])["QueueUrl"])
            elif variable.startswith("BATCHOPS_"):
                monkeypatch.setenv(variable, value)


def operation(
    op_id: str, path: str = "/v1/events", body: Any = None, method: str = "POST", **extra: Any
) -> dict[str, Any]:
    """One operation of a seed-003 batch request."""
    item: dict[str, Any] = {"id": op_id, "method": method, "path": path}
    if body is not None:
        item["body"] = body
    item.update(extra)
    return item


def log_entry(corr: str = "c", status: str = "IN_PROGRESS", **extra: Any) -> dict[str, Any]:
    """An event-log entry (seed 000) as the platform's Java SDK builds it (its keys, in its order),
    the body most operation tests send. `corr` names the process: unless it is already 32 lowercase
    hex or a `${...}` reference, the correlationId is derived from it (read it back from the entry).
    IN_PROGRESS is a PROCESS_START, any other status a PROCESS_END, as the SDK's process logger
    sends them; `extra` overrides or adds fields."""
    if "${" not in corr and not (len(corr) == 32 and all(c in "0123456789abcdef" for c in corr)):
        corr = uuid.uuid5(uuid.NAMESPACE_URL, corr).hex
    return {
        "correlationId": corr,
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "00f067aa0ba902b7",
        "applicationId": "batchops-tests",
        "targetSystem": "batchops",
        "originatingSystem": "batchops-tests",
        "processName": "TEST_PROCESS",
        "eventType": "PROCESS_START" if status == "IN_PROGRESS" else "PROCESS_END",
        "eventStatus": status,
        "identifiers": {},
        "summary": f"Test process {status}",
        "result": status,
        "metadata": {},
        "eventTimestamp": "2026-03-01T10:00:00.000Z",
        **extra,
    }


def events_in(batch_id: str, workspace: str = "ws-a") -> int:
    """How many event-log entries a batch holds, read through the real GET handler (0 if none)."""
    status, _, body = invoke(
        load_function("get_event_batch"),
        api_event("get_event_batch", path_params={"batchId": batch_id}, workspace=workspace),
    )
    return int(body["totalCount"]) if status == 200 else 0


def sqs_event(fixture: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event for a worker, from its events/<fixture>.json record and messages received
    from moto (ids, receipt handles, bodies and receive counts as SQS gave them)."""
    template = fixture_event(fixture)["Records"][0]
    records = []
    for message in messages:
        record = copy.deepcopy(template)
        record.update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], body=message["Body"])
        record["md5OfBody"] = message.get("MD5OfBody", record.get("md5OfBody"))
        count = (message.get("Attributes") or {}).get("ApproximateReceiveCount")
        if count is not None:
            record["attributes"]["ApproximateReceiveCount"] = count
        records.append(record)
    return {"Records": records}


def count_requests(client: Any, service: str, counts: Counter[str]) -> Any:
    """Count every request `client` makes, by operation name, into `counts`; returns the hook
    (to unregister)."""

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    client.meta.events.register(f"before-call.{service}.*", count)
    return count


@contextmanager
def counting_dynamodb_calls() -> Iterator[Counter[str]]:
    """DynamoDB requests the project's client makes while inside, by operation name."""
    from batchops.dal import clients

    counts: Counter[str] = Counter()
    client = clients.dynamodb()
    hook = count_requests(client, "dynamodb", counts)
    try:
        yield counts
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", hook)
