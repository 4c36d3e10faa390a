"""Health, OpenAPI document and Swagger UI: no auth, served from the route table."""

from __future__ import annotations

from batchops.api.routes import route_table
from tests.support import api_event, invoke, load_function

HEALTH = load_function("health")
OPENAPI = load_function("openapi")


def test_health_needs_no_workspace():
    status, _, body = invoke(HEALTH, api_event("health", workspace=None))
    assert status == 200
    assert body["status"] == "ok" and body["service"] == "batchops"


def test_openapi_document_lists_every_authenticated_route_with_full_paths():
    status, headers, body = invoke(OPENAPI, api_event("openapi", workspace=None))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    documented = {(m.upper(), p) for p, ops in body["paths"].items() for m in ops}
    expected = {e.key for e in route_table() if e.include_in_schema}
    assert documented == expected
    assert all(p.startswith("/v1/") for p in body["paths"])
    batch = body["paths"]["/v1/events/batch"]["post"]
    assert batch["security"] == [{"ApiKey": []}]
    assert "201" in batch["responses"] and "422" in batch["responses"]
    assert body["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "security" not in body["paths"]["/v1/health"]["get"]


def test_docs_page_embeds_the_document_and_swagger_ui_without_a_cdn():
    event = api_event("openapi", workspace=None)
    event["path"] = event["resource"] = "/docs"
    status, headers, html = invoke(OPENAPI, event)
    assert status == 200
    assert headers["Content-Type"] == "text/html"
    assert "SwaggerUIBundle" in html
    assert "/v1/events/batch/{batchId}/summary" in html
    assert "unpkg.com" not in html and "cdn." not in html


def test_document_server_url_follows_the_stage_prefix_the_client_used():
    on_stage = api_event("openapi", workspace=None)
    on_stage["path"] = "/openapi.json"
    on_stage["requestContext"]["path"] = "/prod/openapi.json"
    assert invoke(OPENAPI, on_stage)[2]["servers"] == [{"url": "/prod"}]
    at_root = api_event("openapi", workspace=None)
    at_root["requestContext"]["path"] = "/openapi.json"
    assert invoke(OPENAPI, at_root)[2]["servers"] == [{"url": "/"}]


def test_batch_items_are_documented_as_event_log_entries():
    _, _, document = invoke(OPENAPI, api_event("openapi", workspace=None))
    events = document["components"]["schemas"]["CreateEventBatchRequest"]["properties"]["events"]
    assert events["items"] == {"$ref": "#/components/schemas/EventLogEntry"}
    assert "EventLogEntry" in document["components"]["schemas"]
