"""The bench in AWS billing units: every path driven through the real handlers under moto, at
`--items` items (default 1,000), priced per million items beside a naive baseline measured in the
same run with the same counters (`bench/naive/`).

`.venv/bin/python -m bench.billing [--items N]` prints markdown for bench/RESULTS.md;
`run(items)` returns the same figures as `PathCost` values.

How each unit is counted (a botocore hook on the clients installed with `clients.set_client`,
from each request's parameters and moto's answer, never from moto's ConsumedCapacity: moto
reports a constant per operation, 1.0 for any PutItem and 0.5 for any GetItem, and only when
asked with ReturnConsumedCapacity):
- DynamoDB writes: 1 WRU per started KB of the item (`item_size`, AWS's documented rules), the
  larger of the item before and after for PutItem/UpdateItem (the item before for DeleteItem);
  TransactWriteItems items doubled; a ConditionCheck in a transaction as a transactional read
  (2 RRU per started 4 KB of the checked item); a conditional write that fails still bills (the
  item it would have written, or the one it found); a cancelled transaction bills every item as
  if it had run (AWS bills the prepare phase). Each GSI the item is (or was) in adds writes of
  the projected entry: one to add or remove it, two when its index key changes, one when a
  projected attribute changes. GSI writes are not doubled for transactions.
- DynamoDB reads: GetItem and BatchGetItem per item per started 4 KB of the whole stored item
  (a missing item still 1 unit); Query per started 4 KB of the returned items' total (items a
  FilterExpression dropped are counted at the returned items' mean size); eventually consistent
  half, strongly consistent full, transactional double.
- SQS: every request per started 64 KB of its payload (bodies and attributes), at least 1;
  the event source mapping (ESM) is modelled as one ReceiveMessage per delivered batch of up to
  10 (a BatchSize above 10, with its batching window, is filled by several) billed on those
  messages' bytes, plus one DeleteMessageBatch per 10 messages; its empty long polls are a
  per-queue constant, not counted.
- Lambda: an invocation per handler call; duration = the handler's CPU time in this process
  (moto's own CPU and this hook's excluded, measured per thread) + `AWS_LATENCY_MS` per AWS
  request + `HTTP_LATENCY_MS` per outbound HTTP call, rounded up to 1 ms, times the function's
  MemorySize from template.yaml. Requests are summed as if made one after another, an upper bound
  for handlers that fan out on threads. A function that waits for a Step Functions execution is
  billed for the steps' durations too.
- API Gateway: one REST request per API handler call; the Lambda authorizer is left out (its
  answer is cached for 300 s per key, so it is a per-client constant, not a per-item cost).
- S3: PutObject/CopyObject/POST uploads as PUT class, GetObject/HeadObject/List as GET class; an
  S3 event notification to SQS is one SQS request.
- Step Functions (Standard): the transaction machine's transitions counted from its definition:
  RunOperation + MoreOperations per operation, and Finished once.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gzip
import io
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from bench import prices

ROOT = Path(__file__).resolve().parent.parent

# Assumptions of the Lambda duration model (stated in the output).
AWS_LATENCY_MS = 5.0  # per DynamoDB/SQS/S3/Step Functions request, same Region
HTTP_LATENCY_MS = 20.0  # per outbound HTTP call (job endpoint, webhook receiver) answering at once
SQS_CHUNK = 64 * 1024
DYNAMO_ACCOUNT = "123456789012"
REGION = "us-east-1"


# --------------------------------------------------------------------------- DynamoDB sizes
def number_size(text: str) -> int:
    """A Number's bytes: 1 per two significant digits (leading and trailing zeros trimmed) + 1."""
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 0
    return math.ceil(significant / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The bytes of one typed attribute value (`{"S": ...}`, low-level client shape), name excluded."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return number_size(str(data))
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """An item's size as DynamoDB bills it: attribute names (UTF-8) plus values (`value_size`)."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    """WRU of one standard write: 1 per started KB, at least 1."""
    return max(1, math.ceil(size / 1024))


def read_units(size: int, *, consistent: bool) -> float:
    """RRU of one read: 1 per started 4 KB (at least 1) when strongly consistent, half when eventual."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def sqs_chunks(payload_bytes: int) -> int:
    """SQS bills each request per started 64 KB of payload, at least one."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK))


def message_bytes(body: str, attributes: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    size = len(body.encode())
    for name, attribute in (attributes or {}).items():
        size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode())
        size += len(str(attribute.get("StringValue", "")).encode()) + len(attribute.get("BinaryValue", b""))
    return size


# --------------------------------------------------------------------------- usage
@dataclass
class Usage:
    """Billed units, summed over invocations (per function or per path)."""

    invocations: int = 0
    cpu_ms: float = 0.0
    billed_ms: int = 0
    gb_s: float = 0.0
    aws_requests: int = 0
    http_calls: int = 0
    wru: float = 0.0
    gsi_wru: float = 0.0
    rru: float = 0.0
    sqs_requests: int = 0
    esm_sqs_requests: int = 0
    api_requests: int = 0
    s3_put: int = 0
    s3_get: int = 0
    transitions: int = 0
    # DynamoDB units by request ("PutItem W", "GetItem R", "TransactWriteItems GSI"): where they go
    dynamodb_by_request: dict[str, float] = field(default_factory=dict)

    def add(self, other: Usage) -> None:
        for f in fields(self):
            if f.name == "dynamodb_by_request":
                for name, units in other.dynamodb_by_request.items():
                    self.dynamodb_by_request[name] = self.dynamodb_by_request.get(name, 0.0) + units
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def costs(self) -> dict[str, float]:
        """Dollars by service."""
        return {
            "dynamodb": (self.wru + self.gsi_wru) * prices.DYNAMODB_PER_WRU + self.rru * prices.DYNAMODB_PER_RRU,
            "sqs": (self.sqs_requests + self.esm_sqs_requests) * prices.SQS_PER_REQUEST,
            "lambda": self.invocations * prices.LAMBDA_PER_REQUEST + self.gb_s * prices.LAMBDA_PER_GB_SECOND,
            "api": self.api_requests * prices.API_GATEWAY_REST_PER_REQUEST,
            "s3": self.s3_put * prices.S3_PER_PUT + self.s3_get * prices.S3_PER_GET,
            "sfn": self.transitions * prices.STEP_FUNCTIONS_PER_TRANSITION,
        }

    def cost(self) -> float:
        return sum(self.costs().values())


@dataclass(frozen=True)
class PathCost:
    """One path and its naive baseline, per million items."""

    path: str
    items: int
    usage: Usage
    baseline: Usage
    notes: str = ""

    def per_million(self, usage: Usage) -> float:
        return usage.cost() * 1_000_000 / self.items

    @property
    def dollars_per_million(self) -> float:
        return self.per_million(self.usage)

    @property
    def baseline_per_million(self) -> float:
        return self.per_million(self.baseline)

    @property
    def ratio(self) -> float:
        return self.dollars_per_million / self.baseline_per_million


# --------------------------------------------------------------------------- the meter
@dataclass(frozen=True)
class Gsi:
    name: str
    keys: tuple[str, ...]  # the index's own key attributes
    all_attributes: bool  # ProjectionType ALL (else KEYS_ONLY: table keys + index keys)


@functools.cache
def _template() -> Any:
    from batchops_local.template import load_template

    return load_template(ROOT / "template.yaml")


def template_gsis() -> dict[str, tuple[tuple[str, ...], tuple[Gsi, ...]]]:
    """Each template table's key attributes and GSIs."""

    found: dict[str, tuple[tuple[str, ...], tuple[Gsi, ...]]] = {}
    for table in _template().tables.values():
        keys = tuple(k["AttributeName"] for k in table.key_schema)
        gsis = tuple(
            Gsi(
                g["IndexName"],
                tuple(k["AttributeName"] for k in g["KeySchema"]),
                g.get("Projection", {}).get("ProjectionType", "ALL") == "ALL",
            )
            for g in table.global_secondary_indexes
        )
        found[table.name] = (keys, gsis)
    return found


Item = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """One item a write request names."""

    table: str
    key: dict[str, Any]
    kind: str  # Put, Update, Delete, ConditionCheck
    attempt: Item | None = None  # the item a put writes


class Meter:
    """Counts billed units of every request made through the clients it installs, and of every
    handler invocation run through `invoke`, into `usage[label]` (label: the function)."""

    def __init__(self, memory_mb: Mapping[str, int]) -> None:
        self.memory_mb = dict(memory_mb)
        self.usage: dict[str, Usage] = {}
        self.label = "setup"
        self._excluded = 0.0  # CPU seconds not the handlers' (moto, this meter, the local endpoints)
        self._nested_cpu = 0.0
        self._billed_total = 0
        self._lock = threading.Lock()
        self._tables = template_gsis()

    def of(self, label: str) -> Usage:
        return self.usage.setdefault(label, Usage())

    @property
    def current(self) -> Usage:
        return self.of(self.label)

    def exclude(self, seconds: float) -> None:
        with self._lock:
            self._excluded += seconds

    # --------------------------------------------------------------- clients
    def install(self) -> None:
        """The project's own clients (its retry config), hooked, installed with `set_client`."""
        from batchops.dal import clients

        clients.reset_clients()
        for service in ("dynamodb", "sqs", "s3", "stepfunctions"):
            client = clients.client(service)
            client.meta.events.register(f"before-parameter-build.{service}", self._before)
            client.meta.events.register(f"after-call.{service}", self._after)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        start = time.thread_time()
        context["billing_params"] = copy.deepcopy(params)
        if model.service_model.service_name == "dynamodb":
            context["billing_before"] = self._images(model.name, params)
        self.exclude(time.thread_time() - start)

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        start = time.thread_time()
        params: dict[str, Any] = context.get("billing_params", {})
        service = model.service_model.service_name
        with self._lock:
            usage = self.current
            usage.aws_requests += 1
            if service == "dynamodb":
                after = self._images(model.name, params)
                units = (usage.wru, usage.rru, usage.gsi_wru)
                self._dynamodb(usage, model.name, params, parsed, context.get("billing_before", []), after)
                for suffix, was, now in zip(
                    ("W", "R", "GSI"), units, (usage.wru, usage.rru, usage.gsi_wru), strict=True
                ):
                    if now != was:
                        name = f"{model.name} {suffix}"
                        usage.dynamodb_by_request[name] = usage.dynamodb_by_request.get(name, 0.0) + now - was
            elif service == "sqs":
                usage.sqs_requests += self._sqs(model.name, params, parsed)
            elif service == "s3":
                if model.name in ("PutObject", "CopyObject", "ListObjects", "ListObjectsV2", "CreateMultipartUpload"):
                    usage.s3_put += 1
                elif model.name != "DeleteObject":
                    usage.s3_get += 1
        self.exclude(time.thread_time() - start)

    @staticmethod
    def _sqs(operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> int:
        if operation == "SendMessage":
            return sqs_chunks(message_bytes(params["MessageBody"], params.get("MessageAttributes")))
        if operation == "SendMessageBatch":
            return sqs_chunks(
                sum(message_bytes(e["MessageBody"], e.get("MessageAttributes")) for e in params["Entries"])
            )
        if operation == "ReceiveMessage":
            return sqs_chunks(
                sum(message_bytes(m["Body"], m.get("MessageAttributes")) for m in parsed.get("Messages", []))
            )
        return 1

    # --------------------------------------------------------------- DynamoDB
    def _peek(self, table: str, key: Mapping[str, Any]) -> Item | None:
        """The stored item, read from moto's backend (no request, nothing billed)."""
        from moto.dynamodb.models import dynamodb_backends

        try:
            found = dynamodb_backends[DYNAMO_ACCOUNT][REGION].get_item(table, dict(key))
        except Exception:  # noqa: BLE001 - a missing table or a bad key: the request itself fails
            return None
        return None if found is None else dict(found.to_json()["Attributes"])

    def _key(self, table: str, item: Mapping[str, Any]) -> dict[str, Any]:
        keys = self._tables.get(table, (("pk",), ()))[0]
        return {k: item[k] for k in keys if k in item}

    def _targets(self, operation: str, params: Mapping[str, Any]) -> list[Target]:
        """Every item a write names: its table, key, kind and, for a put, the item it writes."""
        if operation == "PutItem":
            return [Target(params["TableName"], self._key(params["TableName"], params["Item"]), "Put", params["Item"])]
        if operation in ("UpdateItem", "DeleteItem"):
            return [Target(params["TableName"], dict(params["Key"]), operation.removesuffix("Item"))]
        found: list[Target] = []
        if operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        found.append(Target(table, self._key(table, item), "Put", item))
                    else:
                        found.append(Target(table, dict(request["DeleteRequest"]["Key"]), "Delete"))
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, action), *_ = entry.items()
                table = action["TableName"]
                if kind == "Put":
                    found.append(Target(table, self._key(table, action["Item"]), kind, action["Item"]))
                else:
                    found.append(Target(table, dict(action["Key"]), kind))
        return found

    def _images(self, operation: str, params: Mapping[str, Any]) -> list[Item | None]:
        return [self._peek(t.table, t.key) for t in self._targets(operation, params)]

    def _stored_size(self, table: str, index: str | None, returned: Item) -> int:
        """What a Query reads of a returned item: the whole stored item (or its KEYS_ONLY index
        entry), whatever ProjectionExpression kept of it."""
        keys, gsis = self._tables.get(table, (("pk",), ()))
        if any(k not in returned for k in keys):
            return item_size(returned)
        stored = self._peek(table, {k: returned[k] for k in keys}) or returned
        gsi = next((g for g in gsis if g.name == index), None)
        if gsi is not None and not gsi.all_attributes:
            return item_size({k: stored[k] for k in (*keys, *gsi.keys) if k in stored})
        return item_size(stored)

    def _write(
        self, usage: Usage, table: str, before: Item | None, after: Item | None, *, transactional: bool, ok: bool
    ) -> None:
        units = write_units(max(item_size(before), item_size(after)))
        usage.wru += units * (2 if transactional else 1)
        if ok:
            usage.gsi_wru += self._gsi_writes(table, before, after)

    def _gsi_writes(self, table: str, before: Item | None, after: Item | None) -> int:
        table_keys, gsis = self._tables.get(table, ((), ()))
        total = 0
        for gsi in gsis:

            def entry(item: Item | None, gsi: Gsi = gsi) -> Item | None:
                if item is None or any(k not in item for k in gsi.keys):
                    return None
                if gsi.all_attributes:
                    return item
                return {k: item[k] for k in (*table_keys, *gsi.keys) if k in item}

            old, new = entry(before), entry(after)
            if old is None and new is None:
                continue
            if old is None or new is None:
                total += write_units(item_size(old or new))
            elif any(old[k] != new[k] for k in gsi.keys):
                total += write_units(item_size(old)) + write_units(item_size(new))
            elif old != new:
                total += write_units(item_size(new))
        return total

    def _dynamodb(
        self,
        usage: Usage,
        operation: str,
        params: Mapping[str, Any],
        parsed: Mapping[str, Any],
        before: list[Item | None],
        after: list[Item | None],
    ) -> None:
        error = (parsed.get("Error") or {}).get("Code")
        ok = error is None
        if error not in (None, "ConditionalCheckFailedException", "TransactionCanceledException"):
            return  # validation errors, throttles: nothing was read or written
        consistent = bool(params.get("ConsistentRead"))
        if operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"):
            unprocessed = parsed.get("UnprocessedItems") or {}
            transactional = operation == "TransactWriteItems"
            for target, old, new in zip(self._targets(operation, params), before, after, strict=True):
                if target.table in unprocessed:
                    continue  # the caller sends it again, billed then
                if target.kind == "ConditionCheck":
                    usage.rru += 2 * read_units(item_size(old), consistent=True)
                    continue
                if not ok and target.attempt is not None:
                    new = target.attempt  # a refused put still bills the item it would have written
                self._write(usage, target.table, old, new, transactional=transactional, ok=ok)
        elif operation == "GetItem":
            usage.rru += read_units(item_size(self._peek(params["TableName"], params["Key"])), consistent=consistent)
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                for key in request["Keys"]:
                    stored = self._peek(table, key)
                    usage.rru += read_units(item_size(stored), consistent=bool(request.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            sizes = [self._stored_size(params["TableName"], params.get("IndexName"), i) for i in items]
            dropped = max(0, int(parsed.get("ScannedCount", len(items))) - len(items))
            mean = (sum(sizes) / len(sizes)) if sizes else 1024
            usage.rru += read_units(int(sum(sizes) + dropped * mean), consistent=consistent)
        elif operation == "TransactGetItems":
            for entry in params["TransactItems"]:
                get = entry["Get"]
                usage.rru += 2 * read_units(item_size(self._peek(get["TableName"], get["Key"])), consistent=True)

    # --------------------------------------------------------------- Lambda
    def invoke(
        self,
        function: str,
        handler: Callable[..., Any],
        *args: Any,
        api: bool = False,
        esm_records: list[Mapping[str, Any]] | None = None,
        waits_for_nested: bool = False,
        endpoint_calls: Callable[[], int] = lambda: 0,
    ) -> Any:
        """Run one handler call billed as `function`: CPU minus the excluded CPU, plus the modelled
        request latencies, at the function's memory. `esm_records`: the SQS records the event source
        mapping delivered (its receive and delete are billed)."""
        outer = self.label
        self.label = function
        usage = self.current
        requests_before = usage.aws_requests
        calls = endpoint_calls()
        billed_before = self._billed_total
        start, excluded, nested = time.process_time(), self._excluded, self._nested_cpu
        try:
            return handler(*args)
        finally:
            cpu = time.process_time() - start - (self._excluded - excluded) - (self._nested_cpu - nested)
            self.label = outer
            http = endpoint_calls() - calls
            requests = usage.aws_requests - requests_before
            waited = float(self._billed_total - billed_before) if waits_for_nested else 0.0
            ms = cpu * 1000 + requests * AWS_LATENCY_MS + http * HTTP_LATENCY_MS + waited
            billed = max(1, math.ceil(ms))
            with self._lock:
                usage.invocations += 1
                usage.cpu_ms += cpu * 1000
                usage.billed_ms += billed
                self._billed_total += billed
                usage.gb_s += billed / 1000 * self.memory_mb.get(function, 512) / 1024
                usage.http_calls += http
                if api:
                    usage.api_requests += 1
                if esm_records is not None:
                    for start in range(0, len(esm_records), 10):  # a receive and a delete per 10
                        group = esm_records[start : start + 10]
                        size = sum(message_bytes(r.get("body", ""), r.get("messageAttributes")) for r in group)
                        usage.esm_sqs_requests += sqs_chunks(size) + 1
                self._nested_cpu += max(0.0, cpu)


# --------------------------------------------------------------------------- moto and the stack
def _patch_moto_timing(meter_ref: list[Meter]) -> Callable[[], None]:
    """moto answers inside botocore's `before-send`: time it per thread and exclude it."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            if meter_ref:
                meter_ref[0].exclude(time.thread_time() - start)

    BotocoreStubber.__call__ = timed  # type: ignore[method-assign]

    def undo() -> None:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]

    return undo


class _Env:
    """`monkeypatch.setenv` for tests.support.wire_environment, on os.environ (undone by `Stack`)."""

    def __init__(self) -> None:
        self.saved: dict[str, str | None] = {}

    def setenv(self, name: str, value: str) -> None:
        self.saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def undo(self) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Stack:
    """A fresh moto with the template's resources, the naive pipeline's table and queue, the
    consumers of every queue wrapped in the meter, and the local job endpoint server."""

    meter: Meter
    endpoints: Any
    consumers: dict[str, tuple[str, ModuleType, int]] = field(default_factory=dict)  # queue url -> consumer
    modules: dict[str, ModuleType] = field(default_factory=dict)

    def function(self, folder: str) -> ModuleType:
        from tests.support import load_function

        if folder not in self.modules:
            self.modules[folder] = load_function(folder)
        return self.modules[folder]

    def api(self, folder: str, *, waits: bool = False, **request: Any) -> tuple[int, Any]:
        """One API Gateway request to the function's handler (`waits`: it waits for nested
        invocations, a Step Functions execution, and is billed for their duration)."""
        from tests.support import api_event, invoke

        module = self.function(folder)
        event = api_event(folder, plan="enterprise", **request)
        status, _, body = self.meter.invoke(
            folder, invoke, module, event, api=True, endpoint_calls=self.endpoint_calls, waits_for_nested=waits
        )
        return status, body

    def endpoint_calls(self) -> int:
        return len(self.endpoints.calls)

    def drain(self, *, until_quiet: int = 3, only: str | None = None) -> None:
        """Deliver every queue's messages (or only the consumer `only`'s) to its consumer as the ESM
        would, at its BatchSize, until no queue has a message; delayed messages are waited for."""
        import boto3

        from tests.support import LambdaContext, sqs_event

        sqs = boto3.client("sqs", region_name=REGION)  # the ESM's own calls: modelled, not counted
        quiet = 0
        deadline = time.monotonic() + 120
        while quiet < until_quiet:
            delivered = False
            for url, (folder, module, batch_size) in self.consumers.items():
                if only is not None and folder != only:
                    continue
                got: list[Any] = []
                while len(got) < batch_size:  # a BatchSize above 10 is filled by several receives
                    more = sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=min(10, batch_size - len(got)), AttributeNames=["All"]
                    ).get("Messages", [])
                    got += more
                    if len(more) < 10:
                        break
                if not got:
                    continue
                delivered = True
                event = sqs_event("tracking_worker" if folder == "naive_worker" else folder, got)
                result = self.meter.invoke(
                    folder,
                    module.lambda_handler,
                    event,
                    LambdaContext(function_name=folder, remaining_ms=900_000),
                    esm_records=event["Records"],
                    endpoint_calls=self.endpoint_calls,
                )
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures") or []}
                for message in got:
                    if message["MessageId"] in failed:
                        sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                        )
                    else:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if delivered:
                quiet = 0
                continue
            if self._pending(sqs, only):
                if time.monotonic() > deadline:
                    raise AssertionError("a delayed message did not come due in 120 s")
                time.sleep(0.05)
                continue
            quiet += 1

    def _pending(self, sqs: Any, only: str | None) -> bool:
        for url, (folder, _, _) in self.consumers.items():
            if only is not None and folder != only:
                continue
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if any(int(count) for count in attributes.values()):
                return True
        return False


@contextmanager
def stack(meter: Meter, *, functions: bool = False) -> Iterator[Stack]:
    """`functions`: create the template's Lambda functions in moto too (Step Functions tasks
    need them; creating 50 costs seconds)."""
    import boto3
    from moto import mock_aws
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from batchops.dal import clients
    from batchops.settings import reset_settings
    from batchops_local.aws import MOTO_CONFIG
    from batchops_local.functions import install_lambda_bridge
    from batchops_local.template import function_name_from_arn
    from bench import naive
    from bench.naive import ingest, worker
    from tests.job_endpoint import job_endpoints
    from tests.support import InProcessFunctions, create_template_resources, wire_environment

    env = _Env()
    with mock_aws(config=cast(Any, MOTO_CONFIG)), job_endpoints() as endpoints:
        create_template_resources(functions=functions)
        sqs = boto3.client("sqs", region_name=REGION)
        naive_queue = sqs.create_queue(QueueName=naive.QUEUE)["QueueUrl"]
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=naive.TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for url in sqs.list_queues().get("QueueUrls", []):
            sqs.purge_queue(QueueUrl=url)  # S3's test event from setting the upload notification
        wire_environment(env, skip=frozenset({"BATCHOPS_TABLE_NAME", "BATCHOPS_IDEMPOTENCY_TABLE_NAME"}))
        for name, value in {
            "BATCHOPS_TABLE_NAME": "DomainTable",
            "BATCHOPS_IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
            "BATCHOPS_LOCAL_MODE": "true",
            "BATCHOPS_TRANSACTION_STATE_MACHINE_ARN": (
                f"arn:aws:states:{REGION}:{DYNAMO_ACCOUNT}:stateMachine:TransactionStateMachine"
            ),
            "NAIVE_QUEUE_URL": naive_queue,
        }.items():
            env.setenv(name, value)
        reset_settings()
        meter.install()
        # Lambda tasks of Step Functions run in moto's execution thread, billed to their function.
        in_process = InProcessFunctions()
        plain_invoke = in_process.invoke

        template = _template()
        folders = {fn.name: fn.code_dir.name for fn in template.functions.values()}

        def metered(name_or_arn: str, event: Any) -> Any:
            folder = folders.get(function_name_from_arn(name_or_arn), name_or_arn)
            return meter.invoke(folder, plain_invoke, name_or_arn, event)

        in_process.invoke = metered  # type: ignore[method-assign]
        bridged = LambdaSimpleBackend.invoke
        install_lambda_bridge(in_process)
        answer = endpoints.answer

        def timed_answer(request: Any) -> None:
            # The job endpoints and webhook receivers are the customers' servers, not the handler.
            start = time.thread_time()
            try:
                answer(request)
            finally:
                meter.exclude(time.thread_time() - start)

        endpoints.answer = timed_answer  # type: ignore[method-assign]
        made = Stack(meter, endpoints)
        for fn in template.functions.values():
            for event in fn.sqs_events:
                url = sqs.get_queue_url(QueueName=event.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
                made.consumers[url] = (fn.code_dir.name, made.function(fn.code_dir.name), event.batch_size)
        made.modules["naive_ingest"] = ingest
        made.consumers[naive_queue] = ("naive_worker", worker, naive.BATCH_SIZE)
        try:
            yield made
        finally:
            LambdaSimpleBackend.invoke = bridged  # type: ignore[method-assign]
            clients.reset_clients()
            env.undo()
            reset_settings()


# --------------------------------------------------------------------------- paths
def memory_by_folder() -> dict[str, int]:
    from bench import naive

    found = {fn.code_dir.name: fn.memory_mb for fn in _template().functions.values()}
    found.update(naive_ingest=naive.MEMORY_MB, naive_worker=naive.MEMORY_MB)
    return found


def _split(meter: Meter, naive_labels: tuple[str, ...] = ("naive_ingest", "naive_worker")) -> tuple[Usage, Usage]:
    """(the path's usage, the baseline's usage) from the meter's per-function tallies."""
    path, baseline = Usage(), Usage()
    for label, usage in meter.usage.items():
        if label == "setup":
            continue
        (baseline if label in naive_labels else path).add(usage)
    return path, baseline


def naive_baseline(made: Stack, bodies: list[Any], per_request: int) -> None:
    """The same items through the naive pipeline, `per_request` items per API request."""
    from tests.support import LambdaContext

    for start in range(0, len(bodies), per_request):
        event = {"body": json.dumps(bodies[start : start + per_request])}
        made.meter.invoke("naive_ingest", made.modules["naive_ingest"].lambda_handler, event, LambdaContext(), api=True)
    made.drain(only="naive_worker")  # the path's own queues are empty by now


def log_entry(n: int) -> dict[str, Any]:
    from tests.support import log_entry as entry

    return entry(f"c{n}", "SUCCESS", metadata={"row": n, "source": "bench"})


def path_event_log(made: Stack, items: int) -> list[Any]:
    """POST /v1/events/batch (1,000 entries a request), then GET every page of 100."""
    bodies = [log_entry(n) for n in range(items)]
    per = 1000
    for start in range(0, items, per):
        batch = f"bench-{start}"
        status, _ = made.api("create_event_batch", body={"events": bodies[start : start + per], "batchId": batch})
        assert status in (200, 201), status
        for page in range(1, math.ceil(min(per, items - start) / 100) + 1):
            status, _ = made.api(
                "get_event_batch", path_params={"batchId": batch}, query={"page": str(page), "pageSize": "100"}
            )
            assert status == 200, status
    return bodies


def _operations(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"o{n}", "method": "POST", "path": "/v1/events", "body": log_entry(n)}
        for n in range(start, start + count)
    ]


def path_operations_sync(made: Stack, items: int) -> list[Any]:
    ops = []
    for start in range(0, items, 100):
        chunk = _operations(start, min(100, items - start))
        ops += chunk
        status, _ = made.api("batch", body={"operations": chunk})
        assert status == 200, status
    return ops


def path_operations_async(made: Stack, items: int) -> list[Any]:
    ops = []
    for start in range(0, items, 100):
        chunk = _operations(start, min(100, items - start))
        ops += chunk
        status, _ = made.api("batch_async_submit", body={"operations": chunk})
        assert status in (200, 202), status
    made.drain()
    return ops


def path_operations_transaction(made: Stack, items: int) -> list[Any]:
    """POST /v1/batch/transaction, 25 operations each (a transaction answers within API Gateway's
    29 s, and moto on a loaded machine runs a step in ~100 ms: 100 operations were cut short by the
    deadline). Returns only the operations that ran; transitions are counted for the steps run."""
    ran = []
    per = 25
    steps = made.meter.of("transaction_step")
    for start in range(0, items, per):
        chunk = _operations(start, min(per, items - start))
        before = steps.invocations
        status, body = made.api("batch_transaction", waits=True, body={"operations": chunk})
        assert status == 200, (status, body)
        ran += chunk[: int(body["summary"]["succeeded"])]
        # RunOperation + MoreOperations per step, then Finished (statemachines/transaction.asl.json)
        made.meter.of("batch_transaction").transitions += 2 * (steps.invocations - before) + 1
    return ran


def path_trigger_bulk(made: Stack, items: int) -> list[Any]:
    """A job on the local endpoint; POST /v1/jobs/{id}/trigger-bulk, 500 items a request; the run
    worker delivers every run."""
    status, job = made.api("create_job", body={"name": "bench", "endpoint_url": made.endpoints.url("/job")})
    assert status == 201, (status, job)
    made.meter.usage.clear()  # creating the job is setup
    bodies = [{"payload": {"n": n, "source": "bench"}} for n in range(items)]
    for start in range(0, items, 500):
        status, body = made.api(
            "trigger_job_bulk", path_params={"jobID": job["id"]}, body={"items": bodies[start : start + 500]}
        )
        assert status in (200, 201, 202), (status, body)
    made.drain()
    assert len(made.endpoints.calls_to("/job")) >= items, len(made.endpoints.calls_to("/job"))
    return bodies


def path_batches(made: Stack, items: int) -> tuple[list[Any], int]:
    """A webhook subscription to every batch event; POST /v1/batches of `items` HTTP jobs
    (max_parallel 50); the job workers, and the webhook dispatcher delivering the events.
    Returns the job bodies and how many webhook deliveries were made."""
    from typing import get_args

    from batchops.models.webhooks import BatchEvent

    every = sorted(get_args(BatchEvent))
    status, hook = made.api("create_webhook", body={"url": made.endpoints.url("/hook"), "events": every})
    assert status == 201, (status, hook)
    made.meter.usage.clear()
    jobs = [
        {"id": f"j{n}", "type": "http", "config": {"url": made.endpoints.url("/job"), "body": {"n": n}}}
        for n in range(items)
    ]
    status, body = made.api("create_batch", body={"name": "bench", "jobs": jobs, "options": {"max_parallel": 50}})
    assert status in (200, 201, 202), (status, body)
    made.drain()
    assert len(made.endpoints.calls_to("/job")) >= items
    return jobs, len(made.endpoints.calls_to("/hook"))


def _tracked(n: int, ids: bool) -> list[dict[str, Any]]:
    return [
        {
            "event": "signup",
            "properties": {"plan": "basic", "accountType": "email", "freeTrial": True},
            "timestamp": "2026-11-29T22:00:00.000Z",
            **({"messageId": f"8b0f62f9-1e8e-4f15-8c2a-{i:012d}"} if ids else {}),
        }
        for i in range(n)
    ]


def path_bulk_track(made: Stack, items: int, *, ids: bool) -> list[Any]:
    """POST /v1/bulk-track (gzip, 1,000 events a request), then the tracking worker."""
    events = _tracked(items, ids)
    for start in range(0, items, 1000):
        raw = gzip.compress(json.dumps(events[start : start + 1000]).encode())
        status, body = made.api("bulk_track", raw_body=raw, headers={"Content-Encoding": "gzip"})
        assert status == 200, (status, body)
    made.drain()
    return events


def path_uploads(made: Stack, items: int) -> list[Any]:
    """POST /v1/bulk-track/uploads, the client's upload to S3 (one PUT; S3's notification is one
    SQS request), then the upload worker and the tracking worker."""
    import boto3

    events = _tracked(items, True)
    status, form = made.api("create_tracking_upload")
    assert status == 201, (status, form)
    bucket = os.environ.get("BATCHOPS_TRACKING_UPLOAD_BUCKET", "trackinguploadbucket")
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=bucket, Key=form["fields"]["key"], Body=gzip.compress(json.dumps(events).encode())
    )
    client_side = made.meter.of("client_upload")
    client_side.s3_put += 1
    client_side.sqs_requests += 1
    made.drain()
    return events


PathRunner = Callable[[Stack, int], list[Any]]

PATHS: dict[str, tuple[PathRunner, int]] = {
    # name: (driver, items per API request of the baseline: the path's own request size)
    "event log (create_event_batch + GET pages)": (path_event_log, 1000),
    "operations sync (POST /v1/batch)": (path_operations_sync, 100),
    "operations async (submit + worker)": (path_operations_async, 100),
    "operations transaction (Step Functions)": (path_operations_transaction, 25),
    "trigger-bulk + run worker": (path_trigger_bulk, 500),
    "bulk-track with messageIds": (lambda made, n: path_bulk_track(made, n, ids=True), 1000),
    "bulk-track without messageIds": (lambda made, n: path_bulk_track(made, n, ids=False), 1000),
    "tracking upload": (path_uploads, 1000),
}


def _measure(name: str, items: int, drive: Callable[[Stack], list[Any]], per_request: int) -> list[PathCost]:
    """One path in a fresh moto, then the naive baseline on the same items in the same moto."""
    meter_ref: list[Meter] = [Meter(memory_by_folder())]
    undo = _patch_moto_timing(meter_ref)
    try:
        with stack(meter_ref[0], functions="Step Functions" in name) as made, contextlib.redirect_stdout(io.StringIO()):
            bodies = drive(made)
            path_usage = {label: u for label, u in made.meter.usage.items() if label != "setup"}
            naive_baseline(made, bodies, per_request)
            baseline = Usage()
            for label in ("naive_ingest", "naive_worker"):
                baseline.add(made.meter.of(label))
    finally:
        undo()
    total = Usage()
    for usage in path_usage.values():
        total.add(usage)
    functions = ", ".join(f"{label} {u.invocations}" for label, u in sorted(path_usage.items()) if u.invocations)
    return [PathCost(name, len(bodies), total, baseline, f"invocations: {functions}")]


def prepare() -> None:
    """Fake credentials (moto), no tracing, quiet logs; moto's DynamoDB patched as the suites do."""
    from batchops_local.moto_dynamodb import install as install_moto_dynamodb

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Batchops",
        "POWERTOOLS_SERVICE_NAME": "batchops",
        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    }.items():
        os.environ.setdefault(name, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    install_moto_dynamodb()


def _at(driver: PathRunner, items: int, made: Stack) -> list[Any]:
    return driver(made, items)


def run(items: int = 1000, only: str | None = None, progress: Callable[[str], None] | None = None) -> list[PathCost]:
    """Every path (or those whose name contains `only`) at `items` items, each with its naive
    baseline, each in a fresh moto. `progress` hears of each path as it finishes."""
    prepare()
    results: list[PathCost] = []
    for name, (driver, per_request) in PATHS.items():
        if only is None or only.lower() in name.lower():
            started = time.monotonic()
            results += _measure(name, items, functools.partial(_at, driver, items), per_request)
            if progress:
                progress(f"{row(results[-1])} ({time.monotonic() - started:.0f} s)")
    if only is None or only.lower() in "batches webhooks":
        started = time.monotonic()
        results += _batches(items)
        if progress:
            progress(f"{row(results[-2])}\n{row(results[-1])} ({time.monotonic() - started:.0f} s)")
    return results


def _batches(items: int) -> list[PathCost]:
    """Batches (create + job workers + the events' outbox) and, from the same run, the webhook
    deliveries of those events (the dispatcher's share), each against its own baseline."""
    meter = Meter(memory_by_folder())
    undo = _patch_moto_timing([meter])
    try:
        with stack(meter) as made, contextlib.redirect_stdout(io.StringIO()):
            jobs, deliveries = path_batches(made, items)
            usage = {label: u for label, u in made.meter.usage.items() if label != "setup"}
            naive_baseline(made, jobs, items)
            batch_baseline = Usage()
            for label in ("naive_ingest", "naive_worker"):
                batch_baseline.add(made.meter.of(label))
                made.meter.usage.pop(label)
            hooks = [{"event": "batch.job_completed", "n": n} for n in range(deliveries)]
            naive_baseline(made, hooks, max(1, len(hooks)))
            hook_baseline = Usage()
            for label in ("naive_ingest", "naive_worker"):
                hook_baseline.add(made.meter.of(label))
    finally:
        undo()
    batch_usage, hook_usage = Usage(), Usage()
    for label, u in usage.items():
        (hook_usage if label == "webhook_dispatcher" else batch_usage).add(u)
    functions = ", ".join(f"{label} {u.invocations}" for label, u in sorted(usage.items()) if u.invocations)
    return [
        PathCost(
            f"Batches ({items} HTTP jobs, max_parallel 50; events emitted)",
            len(jobs),
            batch_usage,
            batch_baseline,
            f"invocations: {functions}",
        ),
        PathCost(
            "webhooks (deliveries of those batch events to one subscription)",
            deliveries,
            hook_usage,
            hook_baseline,
            "items = deliveries",
        ),
    ]


def row(r: PathCost) -> str:
    """One path's line of the main table."""
    u, n = r.usage, r.items
    return (
        f"| {r.path} | {n:,} | {u.wru / n:.2f} (+{u.gsi_wru / n:.2f}) | {u.rru / n:.2f}"
        f" | {(u.sqs_requests + u.esm_sqs_requests) / n:.3f} ({u.esm_sqs_requests / n:.3f}) | {u.invocations:,}"
        f" | {u.gb_s / n:.5f} | {u.api_requests} | {u.s3_put}/{u.s3_get} | {u.transitions:,}"
        f" | ${r.dollars_per_million:.2f} | ${r.baseline_per_million:.2f} | {r.ratio:.1f}x |"
    )


def render(results: list[PathCost]) -> str:
    lines = [
        f"Prices: {prices.PRICES_TAKEN}; us-east-1, Lambda arm64. Lambda duration = handler CPU (moto's excluded)"
        f" + {AWS_LATENCY_MS:g} ms per AWS request + {HTTP_LATENCY_MS:g} ms per outbound HTTP call, 1 ms steps."
        " ESM: batches at each function's BatchSize (template.yaml), one ReceiveMessage per 10 messages on their"
        " bytes in 64 KB chunks + one DeleteMessageBatch per 10 messages. Naive baseline: API Gateway -> ingest"
        " Lambda (one SendMessage per item, the path's items per request) -> SQS -> Powertools BatchProcessor"
        " worker (BatchSize 10, one PutItem per record, 128 MB).",
        "",
        "| path | items | WRU (+GSI) /item | RRU /item | SQS req /item (ESM) | Lambda inv | GB-s /item"
        " | API req | S3 PUT/GET | SFN trans | $/M items | naive $/M | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row(r) for r in results]
    lines += ["", "$ per million items by service (path / naive):", ""]
    lines += ["| path | DynamoDB | SQS | Lambda | API Gateway | S3 | Step Functions |", "|---|---|---|---|---|---|---|"]
    for r in results:
        mine, base = r.usage.costs(), r.baseline.costs()
        scale = 1_000_000 / r.items
        cells = " | ".join(f"{mine[k] * scale:.2f} / {base[k] * scale:.2f}" for k in mine)
        lines.append(f"| {r.path} | {cells} |")
    lines += ["", "Where the DynamoDB units go (units per item, largest first; W write, R read, GSI index writes):", ""]
    for r in results:
        top = sorted(r.usage.dynamodb_by_request.items(), key=lambda kv: -kv[1])[:5]
        spent = ", ".join(f"{name} {units / r.items:.2f}" for name, units in top)
        lines.append(f"- {r.path}: {spent}; {r.notes}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--only", help="run only the paths whose name contains this")
    args = parser.parse_args()
    started = time.monotonic()
    results = run(args.items, args.only, progress=lambda line: print(line, file=sys.stderr, flush=True))
    command = f".venv/bin/python -m bench.billing --items {args.items}"
    if args.only:
        command += f" --only '{args.only}'"
    print(render(results))
    print(f"\n(`{command}`, {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
