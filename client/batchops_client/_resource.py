"""Resources: each API surface's calls, written once as plans and served sync or async.

A resource method is written as a plan (`def create(...) -> Plan[Batch]`) and decorated with
`@endpoint` (one result) or `@paginated` (every item of every page). Read from a resource of the
sync client it is a plain method returning the result; from the async client, a coroutine
function; the overloads below tell type checkers which.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, Callable, Generic, Optional, TypeVar, Union, overload
from urllib.parse import quote

from typing_extensions import Concatenate, ParamSpec

from batchops_client._core import AsyncDriver, Page, Plan, RetryPolicy, Send, SyncDriver, json_of, new_idempotency_key

P = ParamSpec("P")
T = TypeVar("T")
D = TypeVar("D", SyncDriver, AsyncDriver)
Self = TypeVar("Self", bound="endpoint[Any, Any]")
SelfPaginated = TypeVar("SelfPaginated", bound="paginated[Any, Any]")


class Resource(Generic[D]):
    """One API surface's calls, bound to a driver (sync or async) and the client's retry policy."""

    def __init__(self, driver: D, policy: RetryPolicy) -> None:
        self._driver: D = driver
        self._policy = policy

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[dict[str, Any]] = None,
        json: Any = None,
        content: Optional[bytes] = None,
        headers: Optional[dict[str, str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Plan[Any]:
        """The decoded JSON answer of one API call. Every POST carries an Idempotency-Key (a new
        one unless given) that its retries repeat, so a retried create never creates twice."""
        sent = dict(headers or {})
        if method == "POST":
            sent["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        params = {key: value for key, value in (params or {}).items() if value is not None}
        request = Send(method, path, params=params or None, headers=sent, json=json, content=content)
        return (yield from json_of(request, self._policy))


def path(template: str, *ids: str) -> str:
    """`template` with each `{}` replaced by an id, percent-encoded so that no id can change the path."""
    return template.format(*(quote(str(value), safe="") for value in ids))


def without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


class endpoint(Generic[P, T]):
    """A resource method returning one result: `T` from the sync client, a coroutine from the async."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self.plan = plan
        functools.update_wrapper(self, plan)  # type: ignore[arg-type]

    @overload
    def __get__(self: Self, resource: None, owner: Optional[type] = None) -> Self: ...

    @overload
    def __get__(self, resource: Resource[SyncDriver], owner: Optional[type] = None) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, resource: Resource[AsyncDriver], owner: Optional[type] = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, resource: Optional[Resource[Any]], owner: Optional[type] = None) -> Any:
        if resource is None:
            return self
        plan, driver = self.plan, resource._driver

        def run(*args: Any, **kwargs: Any) -> Any:
            return driver.run(plan(resource, *args, **kwargs))

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return await driver.run(plan(resource, *args, **kwargs))

        # A coroutine function (not a function returning an awaitable), for inspect and asyncio.
        return _bound(run if isinstance(driver, SyncDriver) else run_async, plan)


class paginated(Generic[P, T]):
    """A resource method over a list: the plan returns its first `Page`, and the method iterates
    every item of every page (`Iterator[T]` from the sync client, `AsyncIterator[T]` from the async)."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[Page[T]]]) -> None:
        self.plan = plan
        functools.update_wrapper(self, plan)  # type: ignore[arg-type]

    @overload
    def __get__(self: SelfPaginated, resource: None, owner: Optional[type] = None) -> SelfPaginated: ...

    @overload
    def __get__(self, resource: Resource[SyncDriver], owner: Optional[type] = None) -> Callable[P, Iterator[T]]: ...

    @overload
    def __get__(
        self, resource: Resource[AsyncDriver], owner: Optional[type] = None
    ) -> Callable[P, AsyncIterator[T]]: ...

    def __get__(self, resource: Optional[Resource[Any]], owner: Optional[type] = None) -> Any:
        if resource is None:
            return self
        plan = self.plan
        driver: Union[SyncDriver, AsyncDriver] = resource._driver

        def call(*args: Any, **kwargs: Any) -> Union[Iterator[T], AsyncIterator[T]]:
            return driver.iterate(plan(resource, *args, **kwargs))

        return _bound(call, plan)


def _bound(call: Callable[..., Any], plan: Callable[..., Any]) -> Callable[..., Any]:
    """`call` under the plan's name, docs and signature (without `self`), for help() and IDEs."""
    functools.update_wrapper(call, plan)
    signature = inspect.signature(plan)
    call.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return call
