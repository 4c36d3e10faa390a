"""Lambda entry points: each endpoint function mounts its own routes from the table."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.resolver import build_resolver
from batchops.api.routes import find_endpoint
from batchops.observability import logger, metrics, tracer

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


class EndpointHandler(LazyHandler):
    def __init__(self, *routes: tuple[str, str]):
        self.routes = routes
        super().__init__(self._resolve_routes)

    def _resolve_routes(self) -> LambdaHandler:
        app = build_resolver(find_endpoint(method, path) for method, path in self.routes)

        @logger().inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
        @metrics().log_metrics(capture_cold_start_metric=True)
        @tracer().capture_lambda_handler(capture_response=False)
        def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            return app.resolve(event, context)

        handler: LambdaHandler = handle
        return handler


def endpoint_handler(*routes: tuple[str, str]) -> EndpointHandler:
    return EndpointHandler(*routes)
