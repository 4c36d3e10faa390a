"""moto's DynamoDB made to keep two promises DynamoDB makes, for the many threads of the local
stack (requests and pollers) and of the test suites.

Conditional writes are atomic. moto checks a ConditionExpression and then writes, with nothing
held in between: two threads updating one item on the same condition can both succeed (measured:
4 threads racing on `n = 0` both won in 79 of 100 trials), so a claim taken twice would send a
webhook or release a job twice. Every write (put, update, delete, batch, PartiQL and
transactions) here runs under one lock; reads do not wait.

TransactWriteItems without copying whole tables. moto 5.2.5 backs up every table a transaction
names with `copy.deepcopy`, once per item of the transaction, before it runs anything: 100
conditional puts into a table of 10,000 items copy a million items (seconds per call, growing
with the table), and a copy taken while another thread writes fails with "dictionary changed
size during iteration". This keeps moto's own transaction code (conditions, cancellation
reasons, validation) and replaces only the backup: the items the transaction names are saved
before it runs and put back when it is cancelled.

Installed by the local stack, the test suites and the benchmarks (`install()`; idempotent).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb import models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

# Re-entrant: moto's transaction code calls the backend's own put/update/delete.
_writes = threading.RLock()
_WRITES = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "execute_statement",
    "batch_execute_statement",
    "execute_transaction",
)
_install = threading.Lock()
_installed = False

Saved = tuple[Table, DynamoType, DynamoType | None, Item | None]


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB models: a Table "copy" is the table
    itself (so moto's own rollback is a no-op), anything else is copied as before."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _named_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[Saved]:
    saved: list[Saved] = []
    for entry in transact_items:
        if len(entry) != 1:
            continue  # moto refuses it; nothing to save
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(str(op.get("TableName")))
        if table is None:
            continue
        if op_type == "Put":
            attrs = op.get("Item") or {}
            key = {a: attrs[a] for a in (table.hash_key_attr, table.range_key_attr) if a and a in attrs}
        else:
            key = op.get("Key") or {}
        try:
            hash_value, range_value = backend.get_keys_value(table, key)
        except Exception:  # noqa: BLE001, S112 - a malformed key: moto reports it when it runs the transaction
            continue
        current = table.get_item(hash_value, range_value)
        saved.append((table, hash_value, range_value, copy.deepcopy(current) if current is not None else None))
    return saved


def _restore(saved: list[Saved]) -> None:
    for table, hash_value, range_value, item in reversed(saved):
        table.delete_item(hash_value, range_value)
        if item is None:
            continue
        if range_value:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item  # type: ignore[assignment]


def _one_at_a_time(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def locked(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with _writes:
            return write(self, *args, **kwargs)

    return locked


def install() -> None:
    global _installed
    with _install:
        if _installed:
            return
        original = DynamoDBBackend.transact_write_items

        def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
            with _writes:
                saved = _named_items(self, transact_items)
                try:
                    original(self, transact_items)
                except Exception:
                    _restore(saved)
                    raise

        for name in _WRITES:
            setattr(DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name)))
        models.copy = _TablesNotCopied  # type: ignore[attr-defined,assignment]
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _installed = True
