"""A `lambda_handler` built on its first invocation, not at import.

Its own module, light on imports: api.handler loads the resolver and the route table, which no
worker uses (~190 ms of a worker's cold start, `python -X importtime`), so workers and endpoints
share this instead."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class LazyHandler:
    """A `lambda_handler` whose real work (resolver, Powertools wrappers) is built on the
    first invocation, not at import, so importing a function module has no side effects."""

    def __init__(self, build: Callable[[], LambdaHandler]):
        self._build = build
        self._handler: LambdaHandler | None = None
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if self._handler is None:
            with self._lock:
                if self._handler is None:
                    self._handler = self._build()
        return self._handler(event, context)
