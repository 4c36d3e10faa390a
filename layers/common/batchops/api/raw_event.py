"""Reading a raw API Gateway proxy event, before any Powertools wrapper exists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def header_value(event: Mapping[str, Any], name: str) -> str | None:
    """Header names arrive in the client's case, and an event may carry no headers at all."""
    wanted = name.lower()
    return next((str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == wanted), None)


def body_size(event: Mapping[str, Any]) -> int:
    """Bytes of the body (decoded size when it came base64-encoded)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode()) if isinstance(body, str) else len(body)
