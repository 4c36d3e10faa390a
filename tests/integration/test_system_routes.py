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


def test_tracking_bodies_are_documented_though_the_routes_parse_them_themselves():
    body = invoke(OPENAPI, api_event("openapi", workspace=None))[2]
    bulk = body["paths"]["/v1/bulk-track"]["post"]["requestBody"]
    assert bulk["required"] is True
    schema = bulk["content"]["application/json"]["schema"]
    assert (schema["type"], schema["minItems"]) == ("array", 1)
    assert set(schema["items"]["required"]) == {"event", "properties", "timestamp"}
    assert schema["items"]["additionalProperties"] is True
    one = body["paths"]["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert one["properties"]["messageId"]["anyOf"][0]["maxLength"] == 100
    # Every authenticated route may answer 429 (its workspace's request budget).
    assert all(
        "429" in op["responses"] for path, ops in body["paths"].items() for op in ops.values() if "security" in op
    )
