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
