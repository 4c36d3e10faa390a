"""How one operation runs: the target that executes it, and the headers it may carry.

The target is a protocol so that services stay free of HTTP: the api layer provides the
in-process implementation that dispatches through the route table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from batchops.models.common import Caller
from batchops.models.operations import Operation

# An operation always runs as the caller (Authorization is dropped); hop-by-hop and framing
# headers describe the outer request, not this one.
DROPPED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)


def forwarded_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (headers or {}).items() if k.lower() not in DROPPED_HEADERS}


class OperationTarget(Protocol):
    """Runs (or only validates) one operation as the caller; returns HTTP status and JSON body."""

    def call(self, caller: Caller, operation: Operation) -> tuple[int, Any]: ...

    def check(self, caller: Caller, operation: Operation) -> tuple[int, Any]: ...

    def allowed_paths(self) -> list[str]: ...
