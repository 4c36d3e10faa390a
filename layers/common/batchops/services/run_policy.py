"""How runs are de-duplicated and retried (seed 001). Groundwork for issue 4: pure rules,
no AWS."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

# SQS can hide a message for at most 12 hours (ChangeMessageVisibility).
MAX_DELAY_SECONDS = 12 * 3600


def canonical_json(payload: Any) -> str:
    """One text per JSON value: key order and spacing never make two payloads differ."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def payload_bytes(payload: Any) -> int:
    return len(canonical_json(payload).encode())


def retryable(http_status: int | None) -> bool:
    """None stands for a timeout or a connection error, which are retried like 408/429/5xx."""
    return http_status is None or http_status in (408, 429) or http_status >= 500


def retry_after_seconds(header: str | None, now: datetime | None = None) -> int | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return int(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - (now or datetime.now(UTC))).total_seconds()))


def retry_delay(
    attempt: int, base_seconds: int, retry_after: str | None = None, *, rng: Callable[[], float] = random.random
) -> int:
    """Seconds before attempt `attempt + 1`: exponential backoff from `base_seconds` with full
    jitter, at least 1 s, never sooner than the server's Retry-After, at most 12 hours."""
    ceiling: int = min(MAX_DELAY_SECONDS, base_seconds * (1 << max(0, attempt - 1)))
    delay: int = max(1, round(ceiling * rng()))
    asked = retry_after_seconds(retry_after)
    if asked is not None:
        delay = max(delay, asked)
    return min(MAX_DELAY_SECONDS, delay)
