"""How runs are de-duplicated and retried (seed 001): pure rules, no AWS."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from batchops.models.jobs import MAX_RESULT_BYTES, ErrorClass, RunErrorCode, RunStatus, canonical_json

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
    attempt: int,
    base_seconds: int,
    retry_after: str | None = None,
    *,
    strategy: str | None = None,
    custom_delays: list[int] | None = None,
    rng: Callable[[], float] = random.random,
) -> int:
    """Seconds before attempt `attempt + 1`, at least 1 s, never sooner than the server's
    Retry-After, at most 11.5 hours. The job's `retry_strategy` (Strait's, worker/backoff.go)
    picks the delay: `exponential` (the default) is `base_seconds x 2^(attempt-1)` with full
    jitter; `linear` is `base_seconds x attempt`, `fixed` is `base_seconds` and `custom` is
    `custom_delays[attempt-1]` (the last one repeats), those three with Strait's +-20% jitter."""
    step = max(1, attempt)
    planned: int | None = None
    if strategy == "custom" and custom_delays:
        planned = custom_delays[min(step, len(custom_delays)) - 1]
    elif strategy == "linear":
        planned = base_seconds * step
    elif strategy == "fixed":
        planned = base_seconds
    if planned is None:  # exponential, and custom without delays (as Strait falls back)
        ceiling: int = min(MAX_DELAY_SECONDS, base_seconds * (1 << (step - 1)))
        delay = max(1, round(ceiling * rng()))
    else:
        delay = max(1, round(min(MAX_DELAY_SECONDS, planned) * (0.8 + 0.4 * rng())))
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


def error_class(error: dict[str, Any]) -> str | None:
    """Strait's error class for a run's error, as its worker classifies them
    (worker/executor_errors.go): 429 rate_limited, 401/403 auth, other 4xx client, 5xx server,
    timeouts, connection errors. None for errors that are not a failed call (expiry, a result
    too large to keep)."""
    code = error.get("code")
    status = error.get("http_status")
    if code == RunErrorCode.HTTP_ERROR and isinstance(status, int):
        if status == 429:
            return ErrorClass.RATE_LIMITED.value
        if status in (401, 403):
            return ErrorClass.AUTH.value
        return (ErrorClass.SERVER if status >= 500 else ErrorClass.CLIENT).value
    return _CLASS_BY_CODE.get(str(code))


_CLASS_BY_CODE = {
    RunErrorCode.TIMEOUT.value: ErrorClass.TIMEOUT.value,
    RunErrorCode.CONNECTION_ERROR.value: ErrorClass.CONNECTION.value,
    # Refused before any call: the job's settings are wrong, as a 4xx would say.
    RunErrorCode.UNSAFE_URL.value: ErrorClass.CLIENT.value,
    RunErrorCode.INVALID_URL.value: ErrorClass.CLIENT.value,
    RunErrorCode.JOB_NOT_FOUND.value: ErrorClass.CLIENT.value,
    RunErrorCode.INTERRUPTED.value: ErrorClass.TRANSIENT.value,
}


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
    strategy: str | None = None,
    custom_delays: list[int] | None = None,
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
        delay = retry_delay(
            attempt, backoff_seconds, retry_after, strategy=strategy, custom_delays=custom_delays, rng=rng
        )
        return Verdict(RunStatus.QUEUED, error, delay)
    return Verdict(RunStatus.TIMED_OUT if error["code"] == RunErrorCode.TIMEOUT else RunStatus.FAILED, error)
