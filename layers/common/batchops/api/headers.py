"""Reading a header from a raw API Gateway event, before any Powertools wrapper exists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def header_value(event: Mapping[str, Any], name: str) -> str | None:
    """Header names arrive in the client's case, and an event may carry no headers at all."""
    wanted = name.lower()
    return next((str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == wanted), None)
