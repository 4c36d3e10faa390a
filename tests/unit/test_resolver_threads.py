"""Each resolver sees its own request, even while other resolvers in the process handle theirs:
a parallel batch resolves its operations on several threads, and a sequential batch resolves
them inside the batch request's own resolve()."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from batchops.api.resolver import BatchopsResolver, build_resolver
from batchops.api.router import Endpoint

resolvers: dict[str, BatchopsResolver] = {}


def proxy_event(path: str) -> dict[str, Any]:
    return {
        "resource": "/echo/{name}",
        "path": path,
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": {"name": path.rsplit("/", 1)[1]},
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/echo/{name}", "httpMethod": "GET", "path": path, "requestId": path},
    }


class Context:
    function_name = "test"
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def resolver_for(handler: Any) -> BatchopsResolver:
    return build_resolver([Endpoint("GET", "/echo/{name}", handler, "test", auth=False)], limit_requests=False)


def body_of(result: dict[str, Any]) -> Any:
    return json.loads(result["body"])


def test_threads_resolving_at_once_each_see_their_own_event() -> None:
    both_resolving = threading.Barrier(2, timeout=10)

    def echo(name: str) -> dict[str, str]:
        # Both requests are inside resolve() now: the later one has been made current everywhere
        # a shared attribute would hold it.
        both_resolving.wait()
        return {"name": name, "seen": resolvers[threading.current_thread().name].current_event.path}

    def handle(path: str) -> Any:
        resolvers[threading.current_thread().name] = resolver_for(echo)
        return body_of(resolvers[threading.current_thread().name].resolve(proxy_event(path), Context()))

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(handle, ["/echo/one", "/echo/two"]))
    assert answers == [{"name": "one", "seen": "/echo/one"}, {"name": "two", "seen": "/echo/two"}]


def test_a_resolve_inside_a_resolve_leaves_the_outer_request_current() -> None:
    inner = resolver_for(lambda name: {"name": name})

    def outer_handler(name: str) -> dict[str, Any]:
        nested = body_of(inner.resolve(proxy_event("/echo/inner"), Context()))
        return {"nested": nested, "outer_sees": outer.current_event.path}

    outer = resolver_for(outer_handler)
    answer = body_of(outer.resolve(proxy_event("/echo/outer"), Context()))
    assert answer == {"nested": {"name": "inner"}, "outer_sees": "/echo/outer"}


def test_one_resolver_on_two_threads_answers_each_with_its_route_status() -> None:
    """A plain answer takes the matched route's status code from the routing context; when that
    context was shared, a request finishing on one thread (clear_context) turned a 201 still being
    handled on another into a 200 (4 creates racing for one job slug, 1 run in 12)."""
    first_inside = threading.Event()
    second_done = threading.Event()

    def created(name: str) -> dict[str, str]:
        if name == "slow":
            first_inside.set()
            assert second_done.wait(10)  # the other request has been resolved and cleared by now
        return {"name": name}

    shared = build_resolver(
        [Endpoint("GET", "/echo/{name}", created, "test", status_code=201, auth=False)], limit_requests=False
    )

    def handle(path: str) -> int:
        if path == "/echo/fast":
            assert first_inside.wait(10)
        result = shared.resolve(proxy_event(path), Context())
        if path == "/echo/fast":
            second_done.set()
        return int(result["statusCode"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(handle, ["/echo/slow", "/echo/fast"]))
    assert statuses == [201, 201]
