"""Each HTTP function builds only its own route: it imports the surface serving its path and no
other (issue 14: importing all six made every first invocation pay for api.batches, 888 ms)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from batchops.api.routes import SURFACES, find_endpoint, route_table, surface_of
from tests.support import ROOT

SURFACE_MODULES = {f"batchops.api.{surface}" for surface in SURFACES}


def test_every_route_is_found_in_the_surface_that_declares_it() -> None:
    for endpoint in route_table():
        assert find_endpoint(endpoint.method, endpoint.path) is endpoint
        declaring = sys.modules[f"batchops.api.{surface_of(endpoint.path)}"]
        assert endpoint in declaring.router.endpoints


@pytest.mark.parametrize("path", ["/v1/nothing", "/", "/v2/batches"])
def test_a_path_no_surface_serves_is_a_lookup_error(path: str) -> None:
    with pytest.raises(LookupError):
        find_endpoint("GET", path)


_BUILD_ONE = """
import json, sys
from batchops.api.handler import endpoint_handler
handler = endpoint_handler(("{method}", "{path}"))
handler._resolve_routes()
print(json.dumps(sorted(name for name in sys.modules if name in {modules!r})))
"""


@pytest.mark.parametrize(
    ("method", "path", "surface"),
    [
        ("GET", "/v1/track/events/{messageId}", "tracking"),
        ("GET", "/v1/runs/{runID}", "runs"),
        ("POST", "/v1/events", "event_log"),
        ("GET", "/v1/health", "system"),
    ],
)
def test_building_a_functions_handler_imports_only_its_own_surface(method: str, path: str, surface: str) -> None:
    # A fresh interpreter, as a cold start is: what the build imports is all it has loaded.
    script = _BUILD_ONE.format(method=method, path=path, modules=SURFACE_MODULES)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "common"), "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=120,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [f"batchops.api.{surface}"]
