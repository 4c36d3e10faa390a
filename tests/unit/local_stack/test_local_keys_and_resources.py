"""API key seeding (BATCHOPS_LOCAL_API_KEYS) and the queue creation order."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from batchops_local.keys import KeySpec, parse_key_specs, seed_api_keys
from batchops_local.resources import queues_in_creation_order
from batchops_local.template import Queue, TemplateError


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
