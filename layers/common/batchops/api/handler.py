"""Lambda entry points: each endpoint function mounts its own routes from the table."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.lazy import LambdaHandler, LazyHandler
from batchops.api.resolver import build_resolver
from batchops.api.routes import find_endpoint
from batchops.observability import logger, metrics, tracer


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
