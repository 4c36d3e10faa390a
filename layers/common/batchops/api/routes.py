"""The one route table: every HTTP route batchops serves, from every surface's router.

`template.yaml` must route exactly these (a test keeps them equal). A function imports only the
surface that serves its own path (`find_endpoint`): importing every surface made each HTTP
function's first invocation pay for all six (api.batches alone took 888 ms, issue 14).
"""

from __future__ import annotations

import importlib

from batchops.api.router import Endpoint, SurfaceRouter

# Surface modules under batchops.api, in the table's order.
SURFACES = ("system", "event_log", "operations", "jobs", "runs", "tracking", "batches")
# The surface of a path, by its first segment after /v1 (or its first, outside /v1).
_SURFACE_OF_SEGMENT = {
    "health": "system",
    "docs": "system",
    "openapi.json": "system",
    "events": "event_log",
    "batch": "operations",
    "jobs": "jobs",
    "runs": "runs",
    "batch-operations": "runs",
    "track": "tracking",
    "bulk-track": "tracking",
    "batches": "batches",
    "webhooks": "batches",
}


def _router(surface: str) -> SurfaceRouter:
    # Imported on demand: loading the table costs nothing until a resolver is built.
    module = importlib.import_module(f"batchops.api.{surface}")
    router: SurfaceRouter = module.router
    return router


def surface_endpoints(surface: str) -> tuple[Endpoint, ...]:
    """The routes of one surface module (importing only it)."""
    return tuple(_router(surface).endpoints)


def route_table() -> tuple[Endpoint, ...]:
    return tuple(endpoint for surface in SURFACES for endpoint in _router(surface).endpoints)


def surface_of(path: str) -> str:
    """The surface module that serves `path` (LookupError for a path no surface serves)."""
    parts = [part for part in path.split("/") if part]
    segment = parts[1] if len(parts) > 1 and parts[0] == "v1" else (parts[0] if parts else "")
    try:
        return _SURFACE_OF_SEGMENT[segment]
    except KeyError:
        raise LookupError(f"No surface serves {path}") from None


def find_endpoint(method: str, path: str) -> Endpoint:
    for endpoint in _router(surface_of(path)).endpoints:
        if endpoint.key == (method.upper(), path):
            return endpoint
    raise LookupError(f"No route {method} {path} in the route table")
