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

Queries that read one partition, not the table. moto 5.2.5's Table.query walks every item of the
table (and of a GSI's table) and keeps those whose key matches, so each Query costs the table's
size: the local stack's workers query once or more per message, and a 200-job batch took 418 s
once the table held 20,000 tracked events, against 92 s on a fresh stack (issue 14). moto already
keeps a table's items by partition key (`Table.items`); here a table Query reads only its
partition, and a GSI (or LSI) Query only the items whose index partition key matches, from an index
kept per GSI partition attribute: built on a table's first Query of that index, and brought up to
date after every write to an item (put, update, delete, so also batches, PartiQL and transactions,
which write through them; a cancelled transaction's restore, here). moto does not expire TTL
items, so TTL needs nothing. moto's own query code still sorts, pages, filters and projects the
candidates, and checks their keys again, so an index entry left stale can only cost time.
Measured (a Query reading a 10-item partition through boto3 on mock_aws, 20,000 other items in
2,000 partitions, median of 50, 2 shared cores): on the table 317 ms -> 4.0 ms, on a GSI 527 ms ->
4.7 ms (what is left is boto3's and moto's per-request cost).

Items serialized as they are. moto 5.2.5 turns every response into JSON by walking botocore's
shape model value by value, and a DynamoDB item is a map of AttributeValue structures, each walked
member by member: profiled (py-spy on the local stack running a 200-job batch), serializing
responses was 2,169 of 3,235 samples in moto's DynamoDB handler. The items moto returns are
already in DynamoDB's JSON form (`{"S": "..."}`, nested M and L), so an AttributeValue made only of
strings, booleans, lists and maps is placed in the response as it is; one holding bytes (B, BS)
or anything else still goes through moto's serializer.

Installed by the local stack, the test suites and the benchmarks (`install()`; idempotent).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.serialize import BaseJSONSerializer
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
PrimaryKey = tuple[DynamoType, DynamoType | None]


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
        _refresh(table, (hash_value, range_value))


# --- partition reads ------------------------------------------------------------------------------


class _AttributeIndex:
    """The primary keys of a table's items by their value of one attribute (a GSI's partition key)."""

    def __init__(self, table: Table, attribute: str) -> None:
        self.attribute = attribute
        self.keys: dict[DynamoType, dict[PrimaryKey, None]] = {}
        self.values: dict[PrimaryKey, DynamoType] = {}
        for item in table.all_items():
            self.update((item.hash_key, item.range_key), item)

    def update(self, key: PrimaryKey, item: Item | None) -> None:
        old = self.values.pop(key, None)
        if old is not None:
            bucket = self.keys.get(old)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self.keys[old]
        value = item.attrs.get(self.attribute) if item is not None else None
        if value is None:
            return
        try:
            self.keys.setdefault(value, {})[key] = None
        except TypeError:
            return  # a map or list is no index key, so no key condition can match it
        self.values[key] = value


# Per table (a restored or copied table starts without, and builds its own on first use).
_indexes: weakref.WeakKeyDictionary[Table, dict[str, _AttributeIndex]] = weakref.WeakKeyDictionary()


def _stored(table: Table, key: PrimaryKey) -> Item | None:
    # .get: `Table.items` is a defaultdict, and a lookup must not add a partition.
    partition: Any = table.items.get(key[0])
    if partition is None or not table.range_key_attr:
        return partition if isinstance(partition, Item) else None
    found: Item | None = partition.get(key[1])
    return found


def _refresh(table: Table, key: PrimaryKey) -> None:
    """After a write to `key`: the indexes built for the table follow the item as stored now."""
    built = _indexes.get(table)
    if not built:
        return
    with _writes:
        item = _stored(table, key)
        for index in built.values():
            index.update(key, item)


def _partition(table: Table, hash_value: DynamoType) -> list[Item]:
    partition: Any = table.items.get(hash_value)
    if partition is None:
        return []
    # list() of a dict's values runs in C, so a writer in another thread cannot change it midway.
    return list(partition.values()) if table.range_key_attr else [partition]


def _by_attribute(table: Table, attribute: str, value: DynamoType) -> list[Item]:
    with _writes:  # building or reading the index while no write is half done
        built = _indexes.setdefault(table, {})
        index = built.get(attribute)
        if index is None:
            index = built[attribute] = _AttributeIndex(table, attribute)
        try:
            keys = list(index.keys.get(value) or ())
        except TypeError:
            return []
    return [item for item in (_stored(table, key) for key in keys) if item is not None]


def _candidates(
    table: Table, hash_key: DynamoType | None, index_name: str | None, conditions: Iterable[tuple[str, DynamoType]]
) -> list[Item] | None:
    """The items a Query can match (moto checks them all again), or None to let moto scan."""
    if not index_name:
        return None if hash_key is None else _partition(table, hash_key)
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None:
        return None  # moto's own error names the table's indexes
    attribute = next((k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"), None)
    value = dict(conditions).get(attribute) if attribute else None
    if attribute is None or value is None:
        return None
    if attribute == table.hash_key_attr:
        return _partition(table, value)
    return _by_attribute(table, attribute, value)


class _Narrowed:
    """The table as moto's Table.query sees it, with `all_items()` narrowed to the candidates."""

    def __init__(self, table: Table, items: list[Item]) -> None:
        self._table = table
        self._items = items

    def all_items(self) -> list[Item]:
        return self._items

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _query_partition(query: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(query)

    @functools.wraps(query)
    def narrowed(self: Table, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        candidates = _candidates(
            self, bound.get("hash_key"), bound.get("index_name"), bound.get("hash_key_conditions") or ()
        )
        return query(self if candidates is None else _Narrowed(self, candidates), *args, **kwargs)

    return narrowed


def _indexed_put(put: Callable[..., Item]) -> Callable[..., Item]:
    @functools.wraps(put)
    def put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
        item = put(self, *args, **kwargs)
        _refresh(self, (item.hash_key, item.range_key))
        return item

    return put_item


def _indexed_delete(delete: Callable[..., Item | None]) -> Callable[..., Item | None]:
    @functools.wraps(delete)
    def delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
        item = delete(self, hash_key, range_key)
        _refresh(self, (hash_key, range_key))
        return item

    return delete_item


def _indexed_update(update: Callable[..., Item]) -> Callable[..., Item]:
    """moto's UpdateItem changes the stored item in place (not through Table.put_item)."""

    @functools.wraps(update)
    def update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
        try:
            return update(self, table_name, key, *args, **kwargs)
        finally:
            table = self.tables.get(table_name)
            if table is not None and _indexes.get(table):
                # A malformed key: moto has refused it, and nothing was written.
                with contextlib.suppress(Exception):
                    _refresh(table, self.get_keys_value(table, key))

    return update_item


def _one_at_a_time(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def locked(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        with _writes:
            return write(self, *args, **kwargs)

    return locked


# --- serializing items ----------------------------------------------------------------------------


_ITEM_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


def _json_ready(value: Any) -> bool:
    """Strings, booleans, and lists and maps of them: what moto's serializer would copy unchanged."""
    if isinstance(value, str | bool):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_ready(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_ready(v) for v in value)
    return False


def _items_as_they_are(serialize: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(serialize)
    def _serialize(self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            shape.name == "AttributeValue"
            and self.operation_model.service_model.service_name in _ITEM_SERVICES
            and isinstance(value, dict)
            and value
            and _json_ready(value)
        ):
            self._default_serialize(serialized, value, shape, key)
            return
        serialize(self, serialized, value, shape, key)

    return _serialize


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

        BaseJSONSerializer._serialize = _items_as_they_are(BaseJSONSerializer._serialize)  # type: ignore[method-assign]
        Table.query = _query_partition(Table.query)  # type: ignore[method-assign]
        Table.put_item = _indexed_put(Table.put_item)  # type: ignore[method-assign]
        Table.delete_item = _indexed_delete(Table.delete_item)  # type: ignore[method-assign]
        DynamoDBBackend.update_item = _indexed_update(DynamoDBBackend.update_item)  # type: ignore[method-assign]
        for name in _WRITES:
            setattr(DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name)))
        models.copy = _TablesNotCopied  # type: ignore[attr-defined,assignment]
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _installed = True
