"""Faults at the boto3 client seam every dal module goes through (`batchops.dal.clients`).

moto never throttles, never leaves `UnprocessedItems`, never cancels a transaction for a conflict
and never crashes a worker. `Faults` puts a proxy in front of each client the code under test gets
from `clients.client(...)` and, per service and operation, can:

- throttle (each service's own error code), or fail with any error code;
- answer a batch call in part: `UnprocessedItems`/`UnprocessedKeys` for DynamoDB, `Failed` entries
  for SQS (the items left out are really not written or sent);
- cancel a transaction (`TransactionCanceledException` with a reason per action);
- add latency;
- crash after a call went through (`SimulatedCrash`, which `except Exception` does not catch: the
  Lambda dying between two writes, so its SQS message comes back).

Rules fire on chosen calls (1-based, counted per rule among the calls it matches: service,
operation and an optional `where` on the parameters) or on every call, at most `times` times;
the first matching rule applies. `fired` records what was injected.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from batchops.dal import clients

SERVICES = ("dynamodb", "sqs", "s3", "stepfunctions", "ses")
THROTTLE = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "sqs": ("RequestThrottled", 400),
    "s3": ("SlowDown", 503),
    "stepfunctions": ("ThrottlingException", 400),
    "ses": ("Throttling", 400),
}


Where = Callable[[dict[str, Any]], bool] | None


def touches(fragment: str) -> Callable[[dict[str, Any]], bool]:
    """A `where`: the call's parameters mention `fragment` (a key prefix, a table, a queue)."""
    return lambda kwargs: fragment in repr(kwargs)


class SimulatedCrash(BaseException):
    """The function died here (a Lambda timeout or an out-of-memory kill): nothing after this call
    ran, and no handler code gets to catch it."""


def client_error(operation: str, code: str, status: int = 400, **extra: Any) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
            **extra,
        },
        operation,
    )


@dataclass
class Rule:
    service: str
    operation: str  # a botocore operation name, or "*"
    apply: Callable[[Callable[..., Any], dict[str, Any], str], Any]
    calls: frozenset[int] | None  # which matching calls fire (1-based); None: every one
    times: int | None  # at most this many times
    where: Callable[[dict[str, Any]], bool] | None = None  # only calls whose parameters match
    fired: int = 0
    seen: int = 0

    def matches(self, service: str, operation: str, kwargs: dict[str, Any]) -> bool:
        if self.service != service or self.operation not in ("*", operation):
            return False
        if self.where is not None and not self.where(kwargs):
            return False
        self.seen += 1
        if self.times is not None and self.fired >= self.times:
            return False
        return self.calls is None or self.seen in self.calls


@dataclass
class Faults:
    rules: list[Rule] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    fired: list[tuple[str, str, int, str]] = field(default_factory=list)  # service, operation, call, kind
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---------------------------------------------------------------- rules
    def _add(
        self,
        service: str,
        operation: str,
        kind: str,
        apply: Callable[[Callable[..., Any], dict[str, Any], str], Any],
        calls: Iterable[int] | None,
        times: int | None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Faults:
        def tagged(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
            return apply(method, kwargs, op)

        tagged.kind = kind  # type: ignore[attr-defined]
        frozen = frozenset(calls) if calls is not None else None
        self.rules.append(Rule(service, operation, tagged, frozen, times, where))
        return self

    def throttle(
        self,
        service: str,
        operation: str = "*",
        *,
        calls: Iterable[int] | None = None,
        times: int | None = None,
        where: Where = None,
    ) -> Faults:
        code, status = THROTTLE[service]

        def apply(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
            raise client_error(op, code, status)

        return self._add(service, operation, "throttle", apply, calls, times, where)

    def fail(
        self,
        service: str,
        operation: str,
        code: str,
        *,
        status: int = 400,
        calls: Iterable[int] | None = None,
        times: int | None = None,
        where: Where = None,
    ) -> Faults:
        def apply(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
            raise client_error(op, code, status)

        return self._add(service, operation, code, apply, calls, times, where)

    def cancel_transaction(
        self,
        reason: str = "TransactionConflict",
        *,
        calls: Iterable[int] | None = None,
        times: int | None = None,
        where: Where = None,
    ) -> Faults:
        def apply(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
            reasons = [{"Code": reason, "Message": f"injected {reason}"}] + [{"Code": "None"}] * (
                len(kwargs["TransactItems"]) - 1
            )
            raise client_error(op, "TransactionCanceledException", CancellationReasons=reasons)

        return self._add("dynamodb", "TransactWriteItems", f"cancel:{reason}", apply, calls, times, where)

    def partial(
        self,
        service: str,
        operation: str,
        *,
        calls: Iterable[int] | None = None,
        times: int | None = None,
        where: Where = None,
    ) -> Faults:
        """Do only the first half of a batch call (at least one item left out) and report the
        rest as AWS does: UnprocessedItems, UnprocessedKeys, or Failed entries."""
        return self._add(service, operation, "partial", _PARTIAL[(service, operation)], calls, times, where)

    def latency(
        self,
        service: str,
        operation: str,
        seconds: float,
        *,
        calls: Iterable[int] | None = None,
        times: int | None = None,
        where: Where = None,
    ) -> Faults:
        def apply(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
            time.sleep(seconds)  # the simulated network, not a test waiting for work
            return method(**kwargs)

        return self._add(service, operation, "latency", apply, calls, times, where)

    def crash_after(
        self,
        service: str,
        operation: str,
        *,
        calls: Iterable[int] | None = None,
        times: int | None = 1,
        where: Where = None,
    ) -> Faults:
        def apply(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
            method(**kwargs)
            raise SimulatedCrash(f"crashed after {service}.{op}")

        return self._add(service, operation, "crash", apply, calls, times, where)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    # ---------------------------------------------------------------- calls
    def call(self, service: str, operation: str, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            self.counts[(service, operation)] += 1
            n = self.counts[(service, operation)]
            rule = next((r for r in self.rules if r.matches(service, operation, kwargs)), None)
            if rule is not None:
                rule.fired += 1
                self.fired.append((service, operation, n, rule.apply.kind))  # type: ignore[attr-defined]
        if rule is None:
            return method(**kwargs)
        return rule.apply(method, kwargs, operation)

    @contextmanager
    def installed(self) -> Iterator[Faults]:
        """Every client the code under test gets from `clients.client(...)` goes through the rules."""
        originals = {service: clients.client(service) for service in SERVICES}
        for service, real in originals.items():
            clients.set_client(service, FaultyClient(real, service, self))
        try:
            yield self
        finally:
            for service, real in originals.items():
                clients.set_client(service, real)


class FaultyClient:
    """A boto3 client whose API calls (and paginators) go through `Faults`."""

    def __init__(self, real: Any, service: str, faults: Faults) -> None:
        self._real = real
        self._service = service
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        operation = self._real.meta.method_to_api_mapping.get(name)
        if operation is None:
            return attribute

        def call(**kwargs: Any) -> Any:
            return self._faults.call(self._service, operation, attribute, kwargs)

        return call

    def get_paginator(self, name: str) -> Any:
        paginator = self._real.get_paginator(name)
        paginator._method = getattr(self, name)  # each page goes through the rules too
        return paginator


# ---------------------------------------------------------------- partial answers
def _half(items: list[Any]) -> tuple[list[Any], list[Any]]:
    keep = len(items) // 2
    return items[:keep], items[keep:]


def _batch_write(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
    requested = kwargs["RequestItems"]
    flat = [(table, request) for table, requests in requested.items() for request in requests]
    done, left = _half(flat)
    response: dict[str, Any] = {"UnprocessedItems": {}}
    if done:
        sent: dict[str, list[Any]] = {}
        for table, request in done:
            sent.setdefault(table, []).append(request)
        response = method(**{**kwargs, "RequestItems": sent})
    for table, request in left:
        response.setdefault("UnprocessedItems", {}).setdefault(table, []).append(request)
    return response


def _batch_get(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
    requested = kwargs["RequestItems"]
    flat = [(table, key) for table, spec in requested.items() for key in spec["Keys"]]
    done, left = _half(flat)
    response: dict[str, Any] = {"Responses": {}, "UnprocessedKeys": {}}
    if done:
        asked: dict[str, Any] = {}
        for table, key in done:
            asked.setdefault(table, {k: v for k, v in requested[table].items() if k != "Keys"}).setdefault(
                "Keys", []
            ).append(key)
        response = method(**{**kwargs, "RequestItems": asked})
    for table, key in left:
        spec = response.setdefault("UnprocessedKeys", {}).setdefault(
            table, {k: v for k, v in requested[table].items() if k != "Keys"}
        )
        spec.setdefault("Keys", []).append(key)
    return response


def _entries(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
    done, left = _half(list(kwargs["Entries"]))
    response: dict[str, Any] = {"Successful": [], "Failed": []}
    if done:
        response = method(**{**kwargs, "Entries": done})
    response.setdefault("Failed", []).extend(
        {"Id": entry["Id"], "SenderFault": False, "Code": "ServiceUnavailable", "Message": "injected"} for entry in left
    )
    return response


_PARTIAL: dict[tuple[str, str], Callable[[Callable[..., Any], dict[str, Any], str], Any]] = {
    ("dynamodb", "BatchWriteItem"): _batch_write,
    ("dynamodb", "BatchGetItem"): _batch_get,
    ("sqs", "SendMessageBatch"): _entries,
    ("sqs", "DeleteMessageBatch"): _entries,
    ("sqs", "ChangeMessageVisibilityBatch"): _entries,
}


# ---------------------------------------------------------------- schedules (hypothesis)

# `make chaos` sets this: many more random schedules instead of CI's fixed few.
CHAOS = os.environ.get("BATCHOPS_CHAOS", "") == "1"
CHAOS_FACTOR = 10


def schedule_settings(ci_examples: int) -> settings:
    """Hypothesis settings for a fault-schedule property: in `make test` `ci_examples` schedules
    from a fixed seed (the same ones on every run, so CI is deterministic); in `make chaos` ten
    times as many, drawn at random, with the seed of a failure printed to reproduce it."""
    return settings(
        max_examples=ci_examples * CHAOS_FACTOR if CHAOS else ci_examples,
        derandomize=not CHAOS,
        deadline=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
        # No explain phase: it traces every line of a failing example again, which took past
        # pytest's 300 s timeout here; shrinking stays (a smaller failing schedule is worth it).
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


# A fault a schedule can name: applied to `Faults` at the given call number (1-based).
Injection = Callable[["Faults", int], object]

# The faults every async path meets, by name; each suite adds its own (crashes at its writes).
COMMON: dict[str, Injection] = {
    "throttle-transact": lambda f, n: f.throttle("dynamodb", "TransactWriteItems", calls=[n]),
    "throttle-update": lambda f, n: f.throttle("dynamodb", "UpdateItem", calls=[n]),
    "throttle-get": lambda f, n: f.throttle("dynamodb", "GetItem", calls=[n]),
    "throttle-query": lambda f, n: f.throttle("dynamodb", "Query", calls=[n]),
    "throttle-send": lambda f, n: f.throttle("sqs", "SendMessageBatch", calls=[n]),
    "conflict": lambda f, n: f.cancel_transaction("TransactionConflict", calls=[n]),
    "partial-send": lambda f, n: f.partial("sqs", "SendMessageBatch", calls=[n]),
    "partial-write": lambda f, n: f.partial("dynamodb", "BatchWriteItem", calls=[n]),
}


def common(*names: str) -> dict[str, Injection]:
    return {name: COMMON[name] for name in names}


def schedules(kinds: Mapping[str, Injection], *, max_call: int, max_size: int) -> SearchStrategy[list[tuple[str, int]]]:
    """Fault schedules over `kinds`: up to `max_size` (kind, call number) pairs."""
    return st.lists(st.tuples(st.sampled_from(list(kinds)), st.integers(1, max_call)), max_size=max_size)


def scheduled(kinds: Mapping[str, Injection], plan: Iterable[tuple[str, int]]) -> Faults:
    """A `Faults` with every fault of `plan` set up."""
    faults = Faults()
    for kind, n in plan:
        kinds[kind](faults, n)
    return faults
