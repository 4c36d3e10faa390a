"""How runs are de-duplicated and retried (seed 001): pure rules, no AWS."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from batchops.models.jobs import MAX_RESULT_BYTES, RunErrorCode, RunStatus, canonical_json

# SQS hides a message for at most 12 hours counted from its receipt (ChangeMessageVisibility);
# the attempt has already used up to 15 minutes of that, so retries wait at most 11.5 hours.
MAX_DELAY_SECONDS = 12 * 3600 - 30 * 60


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


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


@dataclass(frozen=True)
class Verdict:
    """Where one attempt leaves a run: its next status, the error to show, and for a retry the
    seconds until the next attempt."""

    status: RunStatus
    error: dict[str, Any] | None = None
    retry_in: int | None = None


def run_error(code: str, message: str, http_status: int | None = None) -> dict[str, Any]:
    return {"code": str(code), "message": message, "http_status": http_status}


def verdict(
    *,
    http_status: int | None,
    error_code: str | None,
    message: str,
    body_too_large: bool,
    retry_after: str | None,
    attempt: int,
    max_attempts: int,
    backoff_seconds: int,
    rng: Callable[[], float] = random.random,
) -> Verdict:
    """2xx completes; 4xx other than 408/429, redirects, and unsafe or invalid URLs fail at once;
    408, 429, 5xx, timeouts and connection errors retry until the last attempt, after which a
    timeout ends `timed_out` and anything else `failed`."""
    if http_status is not None and 200 <= http_status < 300:
        if body_too_large:
            note = f"The response was larger than {MAX_RESULT_BYTES:,} bytes; it was not kept"
            return Verdict(RunStatus.COMPLETED, run_error(RunErrorCode.RESULT_TOO_LARGE, note, http_status))
        return Verdict(RunStatus.COMPLETED)
    if http_status is not None:
        note = "; redirects are not followed" if 300 <= http_status < 400 else ""
        error = run_error(RunErrorCode.HTTP_ERROR, f"The endpoint answered HTTP {http_status}{note}", http_status)
        again = retryable(http_status)
    else:
        error = run_error(error_code or RunErrorCode.CONNECTION_ERROR, message)
        again = error["code"] in (RunErrorCode.TIMEOUT, RunErrorCode.CONNECTION_ERROR)
    if again and attempt < max_attempts:
        return Verdict(RunStatus.QUEUED, error, retry_delay(attempt, backoff_seconds, retry_after, rng=rng))
    return Verdict(RunStatus.TIMED_OUT if error["code"] == RunErrorCode.TIMEOUT else RunStatus.FAILED, error)
