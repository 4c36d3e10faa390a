"""The one route table: every HTTP route batchops serves, from every surface's router.

`template.yaml` must route exactly these (a test keeps them equal).
"""

from __future__ import annotations

from batchops.api.router import Endpoint


def route_table() -> tuple[Endpoint, ...]:
    # Imported here so that loading the table costs nothing until a resolver is built.
    from batchops.api import batches, event_log, jobs, operations, runs, system, tracking

    return (
        *system.router.endpoints,
        *event_log.router.endpoints,
        *operations.router.endpoints,
        *jobs.router.endpoints,
        *runs.router.endpoints,
        *tracking.router.endpoints,
        *batches.router.endpoints,
    )


def find_endpoint(method: str, path: str) -> Endpoint:
    for endpoint in route_table():
        if endpoint.key == (method.upper(), path):
            return endpoint
    raise LookupError(f"No route {method} {path} in the route table")
