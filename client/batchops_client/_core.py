"""The request logic, written once for the sync and the async client.

Every SDK call is a *plan*: a generator that yields what it needs done (`Send` a request, `Sleep`
a while) and receives the answer. `SyncDriver` carries a plan out with `httpx.Client` and
`time.sleep`, `AsyncDriver` with `httpx.AsyncClient` and `asyncio.sleep`, so retries, Retry-After,
idempotency keys, error mapping, pagination and polling exist in one place (the pattern of
h11 and other sans-I/O libraries) instead of in two copies that drift apart.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Generic, Optional, TypeVar, Union

import httpx
import pydantic

from batchops_client.errors import APIConnectionError, BatchopsError, WaitTimeout, error_from_response

T = TypeVar("T")

# Statuses that mean "not done, try again": rate limited, or a gateway or service that failed
# before the request did anything. 500 is not among them: it may have done part of the work.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENCY_IN_PROGRESS = "IDEMPOTENCY_IN_PROGRESS"


@dataclass(frozen=True)
class Send:
    """Send one HTTP request; the plan receives the `httpx.Response` (or the transport error)."""

    method: str
    url: str
    params: Optional[dict[str, Any]] = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: Optional[bytes] = None
    data: Optional[dict[str, Any]] = None
    files: Optional[dict[str, Any]] = None
    # An absolute URL that is its own credential (a presigned S3 URL): sent without the API key,
    # since S3 refuses a request that carries two.
    plain: bool = False


@dataclass(frozen=True)
class Retry:
    """Wait before trying a request again: `reason` says why, for the caller's `on_retry`."""

    seconds: float
    attempt: int
    reason: str
    retry_after: bool = False


@dataclass(frozen=True)
class Sleep:
    """Wait between polls."""

    seconds: float


Step = Union[Send, Retry, Sleep]
Plan = Generator[Step, Any, T]


@dataclass(frozen=True)
class RetryPolicy:
    """How a refused or dropped request is tried again.

    `max_retries` more attempts after the first; between them exponential backoff with full
    jitter (a uniform wait in [0, min(max_backoff, initial_backoff * 2**n)], AWS's advice for
    clients that retry together), unless the answer carried Retry-After, which is honoured as given
    up to `max_retry_after` seconds; a longer one is not waited out but raised as RateLimitError
    with its `retry_after`.
    """

    max_retries: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int, draw: Callable[[float, float], float] = random.uniform) -> float:
        return draw(0.0, min(self.max_backoff, self.initial_backoff * 2**attempt))


def retry_after(response: httpx.Response) -> Optional[float]:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def send(request: Send, policy: RetryPolicy) -> Plan[httpx.Response]:
    """Send `request`, retrying 429/502/503/504 and dropped connections under `policy`; return
    the last answer, whatever its status (callers raise on errors with `checked`)."""
    attempt = 0
    while True:
        try:
            response: httpx.Response = yield request
        except httpx.TransportError as error:
            where = _url_of(error, request)
            if attempt >= policy.max_retries:
                raise APIConnectionError(f"could not reach {where}: {error or type(error).__name__}") from error
            yield Retry(policy.backoff(attempt), attempt + 1, f"{type(error).__name__} on {where}")
            attempt += 1
            continue
        if not _retryable(response) or attempt >= policy.max_retries:
            return response
        asked = retry_after(response)
        if asked is not None and asked > policy.max_retry_after:
            return response
        reason = f"{response.status_code} {response.reason_phrase}".strip()
        wait = asked if asked is not None else policy.backoff(attempt)
        yield Retry(wait, attempt + 1, reason, retry_after=asked is not None)
        attempt += 1


def _retryable(response: httpx.Response) -> bool:
    """A status worth trying again, or the API saying the same idempotency key is still being
    worked on: what a retry after a 504 meets while the first attempt still runs. Giving up there
    would report a create that happened as failed, and a caller's own retry would create twice."""
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code != 409:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == IDEMPOTENCY_IN_PROGRESS


def _url_of(error: httpx.TransportError, request: Send) -> str:
    """The full URL that failed (the step holds it relative to the base URL)."""
    try:
        return str(error.request.url)
    except RuntimeError:  # raised before httpx attached the request
        return request.url


def checked(request: Send, policy: RetryPolicy) -> Plan[httpx.Response]:
    """`send`, raising the typed error for anything but a 2xx or 3xx answer."""
    response = yield from send(request, policy)
    if response.is_error:
        raise error_from_response(response, retry_after=retry_after(response))
    return response


def json_of(request: Send, policy: RetryPolicy) -> Plan[Any]:
    """The decoded JSON body of a successful answer (None for a 204)."""
    response = yield from checked(request, policy)
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as error:
        # A proxy's page, or a base URL that is not the API.
        raise BatchopsError(
            f"the answer from {response.url} is not JSON (is the base URL the API's?)",
            status=response.status_code,
            code="INVALID_RESPONSE",
            body=response.text[:500],
        ) from error


def poll(
    fetch: Callable[[], Plan[T]],
    done: Callable[[T], bool],
    *,
    interval: float,
    timeout: Optional[float],
    describe: Callable[[T], str],
    on_each: Optional[Callable[[T], Any]] = None,
) -> Plan[T]:
    """Fetch until `done`, sleeping `interval` between fetches, and return the last state.
    WaitTimeout (naming `describe(last)`) once `timeout` seconds passed; None waits for ever.
    Time is the larger of the sleeps and the clock, so a scripted sleep in tests counts too."""
    started, slept = time.monotonic(), 0.0
    while True:
        state = yield from fetch()
        if on_each is not None:
            on_each(state)
        if done(state):
            return state
        waited = max(slept, time.monotonic() - started)
        if timeout is not None and waited >= timeout:
            raise WaitTimeout(f"{describe(state)} after {timeout:g} s", last=state)
        pause = interval if timeout is None else max(0.0, min(interval, timeout - waited))
        yield Sleep(pause)
        slept += pause


@dataclass
class Page(Generic[T]):
    """One page of a list: its items, and the plan for the next page when there is one."""

    items: list[T]
    next: Optional[Callable[[], Plan[Page[T]]]] = None


L = TypeVar("L")


def pages(
    fetch: Callable[[Any], Plan[L]], items: Callable[[L], list[T]], after: Callable[[L], Any], at: Any = None
) -> Plan[Page[T]]:
    """The page of a list at `at` (a cursor, or a page number), with the plan for the next one:
    `after(listed)` is where the next page starts, None after the last. One walk serves both
    pagination styles the API uses."""
    listed = yield from fetch(at)
    following = after(listed)
    return Page(items(listed), None if following is None else (lambda: pages(fetch, items, after, following)))


OnRetry = Callable[[Retry], None]


def _advance(plan: Plan[Any], answer: Any, error: Optional[BaseException]) -> tuple[bool, Any]:
    """Run `plan` to its next step: (False, the step), or (True, its result) when it ended.
    A plan parses only the API's answers, so a model that cannot read one means an answer of an
    unexpected shape (a proxy's, another API's): a BatchopsError, not a pydantic traceback."""
    try:
        return False, plan.throw(error) if error is not None else plan.send(answer)
    except StopIteration as done:
        return True, done.value
    except (pydantic.ValidationError, KeyError) as unreadable:
        raise BatchopsError(
            f"the API's answer does not have the expected shape ({_first_problem(unreadable)})",
            code="INVALID_RESPONSE",
        ) from unreadable


def _first_problem(error: Exception) -> str:
    if isinstance(error, pydantic.ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        return f"{where}: {first['msg']}"
    return f"no {error}"


class SyncDriver:
    """Carries plans out with `httpx.Client`."""

    def __init__(
        self,
        http: httpx.Client,
        plain: httpx.Client,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Optional[OnRetry] = None,
    ) -> None:
        self.http = http
        self.plain = plain
        self.sleep = sleep
        self.on_retry = on_retry

    def run(self, plan: Plan[T]) -> T:
        answer: Any = None
        error: Optional[BaseException] = None
        while True:
            finished, step = _advance(plan, answer, error)
            if finished:
                result: T = step
                return result
            answer, error = None, None
            if isinstance(step, Send):
                try:
                    answer = _client_for(step, self.http, self.plain).send(_build(step, self.http, self.plain))
                except httpx.TransportError as failed:
                    error = failed
            else:
                if isinstance(step, Retry) and self.on_retry is not None:
                    self.on_retry(step)
                self.sleep(step.seconds)

    def iterate(self, first: Plan[Page[T]]) -> Iterator[T]:
        plan: Optional[Plan[Page[T]]] = first
        while plan is not None:
            page = self.run(plan)
            yield from page.items
            plan = page.next() if page.next is not None else None

    def close(self) -> None:
        self.http.close()
        self.plain.close()


class AsyncDriver:
    """Carries plans out with `httpx.AsyncClient`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        plain: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_retry: Optional[OnRetry] = None,
    ) -> None:
        self.http = http
        self.plain = plain
        self.sleep = sleep
        self.on_retry = on_retry

    async def run(self, plan: Plan[T]) -> T:
        answer: Any = None
        error: Optional[BaseException] = None
        while True:
            finished, step = _advance(plan, answer, error)
            if finished:
                result: T = step
                return result
            answer, error = None, None
            if isinstance(step, Send):
                try:
                    answer = await _client_for(step, self.http, self.plain).send(_build(step, self.http, self.plain))
                except httpx.TransportError as failed:
                    error = failed
            else:
                if isinstance(step, Retry) and self.on_retry is not None:
                    self.on_retry(step)
                await self.sleep(step.seconds)

    async def iterate(self, first: Plan[Page[T]]) -> AsyncIterator[T]:
        plan: Optional[Plan[Page[T]]] = first
        while plan is not None:
            page = await self.run(plan)
            for item in page.items:
                yield item
            plan = page.next() if page.next is not None else None

    async def close(self) -> None:
        await self.http.aclose()
        await self.plain.aclose()


HttpClient = TypeVar("HttpClient", httpx.Client, httpx.AsyncClient)


def _client_for(step: Send, http: HttpClient, plain: HttpClient) -> HttpClient:
    return plain if step.plain else http


def _build(step: Send, http: Union[httpx.Client, httpx.AsyncClient], plain: Any) -> httpx.Request:
    client = plain if step.plain else http
    request: httpx.Request = client.build_request(
        step.method,
        step.url,
        params=step.params,
        headers=step.headers or None,
        json=step.json,
        content=step.content,
        data=step.data,
        files=step.files,
    )
    return request
