"""Routes without auth: health, the OpenAPI document and its Swagger UI page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

from batchops.api.context import base_path
from batchops.api.openapi import finished_document
from batchops.api.router import SurfaceRouter
from batchops.models.base import Model
from batchops.settings import get_settings

router = SurfaceRouter("System")

TITLE = "batchops"
DESCRIPTION = (
    "Serverless batch operations. Every route but /v1/health, /openapi.json and /docs needs "
    '`Authorization: Bearer <api key>`. Errors are `{"error", "code", "details"}`.'
)


class Health(Model):
    status: str
    service: str
    version: str
    stage: str
    time: str


def _version() -> str:
    try:
        return metadata.version("batchops")
    except metadata.PackageNotFoundError:  # on Lambda the layer is not an installed distribution
        return "0.1.0"


@router.get(
    "/v1/health",
    auth=False,
    summary="Liveness check",
    responses={200: {"description": "OK", "content": {"application/json": {"model": Health}}}},
)
def health() -> dict[str, Any]:
    return Health(
        status="ok",
        service=TITLE,
        version=_version(),
        stage=get_settings().stage,
        time=datetime.now(UTC).isoformat(),
    ).model_dump()


# The document as built from the route table, shipped in the layer: building it imports every
# surface and renders every model's schema, which made OpenApiFunction's cold start 960 ms (import
# plus first invocation, bench/coldstart.py); reading the file is a few ms. `make openapi` writes
# it; tests/unit/test_openapi_document.py fails when it no longer matches the routes.
DOCUMENT = Path(__file__).with_name("openapi.json")


def generated_document() -> dict[str, Any]:
    """The document for every route in the route table (server "/")."""
    from batchops.api.resolver import SECURITY_SCHEME, build_resolver
    from batchops.api.routes import route_table

    generated = build_resolver(route_table()).get_openapi_json_schema(
        title=TITLE,
        version=_version(),
        description=DESCRIPTION,
        servers=[Server(url="/")],
        security_schemes={SECURITY_SCHEME: HTTPBearer(description="An API key: `bo_...`")},
    )
    return finished_document(json.loads(generated))


def write_document() -> None:
    DOCUMENT.write_text(json.dumps(generated_document(), indent=2) + "\n", encoding="utf-8")


@lru_cache(maxsize=8)
def openapi_document(server: str = "/") -> str:
    """The shipped document with its server URL, once per container and prefix."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    document["servers"] = [{"url": server}]
    return json.dumps(document, indent=2)


@router.get("/openapi.json", auth=False, include_in_schema=False)
def openapi_json() -> Response[str]:
    # The server URL carries the stage prefix, so "Try it out" in Swagger UI calls the right URL.
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=openapi_document(base_path() or "/"),
    )


@router.get("/docs", auth=False, include_in_schema=False)
def docs() -> Response[str]:
    # Swagger UI's script and styles ship inside Powertools: the page works with no CDN.
    assets = Path(swagger_ui.__file__).parent
    html = generate_swagger_html(
        openapi_document(base_path() or "/").replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(status_code=200, content_type="text/html", body=html)
