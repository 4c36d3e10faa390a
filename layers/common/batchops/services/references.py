"""References between operations: `${<opId>.body.<dotted.path>}` in an operation's path or body.

A string that is exactly one reference takes the referenced value with its JSON type; a
reference inside a longer string is replaced by the value as text. Numeric segments index
lists (`${create.body.executionIds.0}`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from batchops.models.operations import OperationResult

# Only `${<id>.body...}` is a reference; other `${...}` text (templates in a message, say) is
# the client's own and passes through untouched.
_REFERENCE = re.compile(r"\$\{([^{}]+?\.body(?:\.[^{}]*)?)\}")
_EXPRESSION = re.compile(r"^(?P<id>.+?)\.body(?:\.(?P<path>.+))?$")


class UnresolvedReferenceError(Exception):
    def __init__(self, reference: str, reason: str):
        super().__init__(f"Unresolved reference ${{{reference}}}: {reason}")
        self.reference = reference
        self.reason = reason


def references_in(value: Any) -> Iterator[str]:
    """Every reference expression in a JSON value (strings, dict values, list items)."""
    if isinstance(value, str):
        yield from _REFERENCE.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)


def target_id(reference: str) -> str | None:
    match = _EXPRESSION.match(reference)
    return match.group("id") if match else None


def _lookup(reference: str, results: Mapping[str, OperationResult]) -> Any:
    match = _EXPRESSION.match(reference)
    if not match:
        raise UnresolvedReferenceError(reference, "expected <operationId>.body.<path>")
    result = results.get(match.group("id"))
    if result is None:
        raise UnresolvedReferenceError(reference, f"no earlier operation {match.group('id')!r} has run")
    if not result.succeeded:
        raise UnresolvedReferenceError(reference, f"operation {result.id!r} did not succeed ({result.status})")
    value: Any = result.body
    for segment in (match.group("path") or "").split(".") if match.group("path") else []:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            raise UnresolvedReferenceError(reference, f"the result of {result.id!r} has no {segment!r}")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def resolve(value: Any, results: Mapping[str, OperationResult]) -> Any:
    """`value` with every reference replaced from earlier results."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), results)
        return _REFERENCE.sub(lambda m: _as_text(_lookup(m.group(1), results)), value)
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    return value


def resolve_path(value: str, results: Mapping[str, OperationResult]) -> str:
    """A path: every reference becomes URL-encoded text, so a value cannot change the route."""
    return _REFERENCE.sub(lambda m: quote(_as_text(_lookup(m.group(1), results)), safe=""), value)


def whole_reference_fields(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths of the fields whose whole value is one reference (their type is unknown
    until the run, so a dry run cannot judge them)."""
    found: set[str] = set()
    if isinstance(value, str) and _REFERENCE.fullmatch(value):
        found.add(prefix)
    elif isinstance(value, dict):
        for key, item in value.items():
            found |= whole_reference_fields(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found |= whole_reference_fields(item, f"{prefix}.{n}" if prefix else str(n))
    return found
