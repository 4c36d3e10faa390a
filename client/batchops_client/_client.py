"""`BatchopsClient` and `AsyncBatchopsClient`: configuration, and one resource per API surface."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Callable, Generic, Optional, Union

import httpx

from batchops_client._core import AsyncDriver, OnRetry, RetryPolicy, SyncDriver
from batchops_client._resource import D
from batchops_client._version import __version__
from batchops_client.errors import ConfigurationError
from batchops_client.resources.batches import Batches
from batchops_client.resources.events import Events
from batchops_client.resources.jobs import BatchOperations, Jobs, Runs
from batchops_client.resources.operations import Operations
from batchops_client.resources.tracking import Track
from batchops_client.resources.webhooks import Webhooks

API_KEY_ENV = "BATCHOPS_API_KEY"
BASE_URL_ENV = "BATCHOPS_BASE_URL"
DEFAULT_TIMEOUT = 30.0


def resolve_config(api_key: Optional[str], base_url: Optional[str]) -> tuple[str, str]:
    """The key and URL from the arguments, else from BATCHOPS_API_KEY / BATCHOPS_BASE_URL."""
    key = api_key or os.environ.get(API_KEY_ENV)
    url = base_url or os.environ.get(BASE_URL_ENV)
    given = ((f"api_key or ${API_KEY_ENV}", key), (f"base_url or ${BASE_URL_ENV}", url))
    missing = [name for name, value in given if not value]
    if missing:
        raise ConfigurationError(
            f"batchops needs {' and '.join(missing)} (the local stack prints both: `make run`)",
            code="CONFIGURATION_ERROR",
        )
    assert key is not None and url is not None
    if not url.lower().startswith(("http://", "https://")):
        raise ConfigurationError(
            f"the base URL must start with http:// or https://, not {url!r}", code="CONFIGURATION_ERROR"
        )
    return key, url.rstrip("/")


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": f"batchops-python/{__version__}"}


def _connection(
    api_key: Optional[str], base_url: Optional[str], timeout: float, transport: Any
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The base URL, and the httpx client options for API calls and for presigned URLs (no key)."""
    key, url = resolve_config(api_key, base_url)
    plain = {"timeout": timeout, "transport": transport}
    return url, {**plain, "base_url": url, "headers": _headers(key)}, plain


def _sleep(sleep: Optional[Callable[[float], Any]]) -> dict[str, Any]:
    return {"sleep": sleep} if sleep else {}


class _Surfaces(Generic[D]):
    """The resources, built once on the client's driver."""

    def _attach(self, base_url: str, driver: D, max_retries: int, max_retry_after: float) -> None:
        self.base_url = base_url
        self._driver: D = driver
        self.policy = policy = RetryPolicy(max_retries=max_retries, max_retry_after=max_retry_after)
        self.batches: Batches[D] = Batches(driver, policy)
        self.operations: Operations[D] = Operations(driver, policy)
        self.events: Events[D] = Events(driver, policy)
        self.jobs: Jobs[D] = Jobs(driver, policy)
        self.runs: Runs[D] = Runs(driver, policy)
        self.batch_operations: BatchOperations[D] = BatchOperations(driver, policy)
        self.track: Track[D] = Track(driver, policy)
        self.webhooks: Webhooks[D] = Webhooks(driver, policy)


class BatchopsClient(_Surfaces[SyncDriver]):
    """The batchops API, synchronously.

    `api_key` and `base_url` default to $BATCHOPS_API_KEY and $BATCHOPS_BASE_URL. A request that
    was rate limited (429), hit a failing gateway (502/503/504) or lost its connection is tried
    again up to `max_retries` times, with exponential backoff and full jitter, honouring
    Retry-After; every POST carries an Idempotency-Key its retries repeat, so a retried create
    never creates twice. `on_retry` is told of each wait before it starts.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        max_retry_after: float = 300.0,
        on_retry: Optional[OnRetry] = None,
        transport: Optional[httpx.BaseTransport] = None,
        sleep: Optional[Callable[[float], None]] = None,
    ) -> None:
        url, api, plain = _connection(api_key, base_url, timeout, transport)
        driver = SyncDriver(httpx.Client(**api), httpx.Client(**plain), on_retry=on_retry, **_sleep(sleep))
        self._attach(url, driver, max_retries, max_retry_after)

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> BatchopsClient:
        return self

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        error: Optional[BaseException],
        trace: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncBatchopsClient(_Surfaces[AsyncDriver]):
    """The batchops API with asyncio: the same resources and calls as `BatchopsClient`, awaited
    (`await client.batches.create(...)`, `async for batch in client.batches.iterate()`)."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        max_retry_after: float = 300.0,
        on_retry: Optional[OnRetry] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        sleep: Optional[Callable[[float], Any]] = None,
    ) -> None:
        url, api, plain = _connection(api_key, base_url, timeout, transport)
        driver = AsyncDriver(httpx.AsyncClient(**api), httpx.AsyncClient(**plain), on_retry=on_retry, **_sleep(sleep))
        self._attach(url, driver, max_retries, max_retry_after)

    async def close(self) -> None:
        await self._driver.close()

    async def __aenter__(self) -> AsyncBatchopsClient:
        return self

    async def __aexit__(
        self,
        kind: Optional[type[BaseException]],
        error: Optional[BaseException],
        trace: Optional[TracebackType],
    ) -> None:
        await self.close()


Client = Union[BatchopsClient, AsyncBatchopsClient]
