"""The OpenAPI document says what the server answers: every status, our one error shape, the
constraints the validators enforce (schemathesis holds the running stack to it; these hold the
document itself, without a stack)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from batchops.api.system import openapi_document
from batchops.models.event_log import NOT_NULLABLE, EventLogEntry
from batchops.models.jobs import JobCreate, JobUpdate
from batchops.models.operations import Operation
from batchops.models.webhooks import WebhookCreate

ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(openapi_document())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), path, op) for path, ops in document["paths"].items() for m, op in ops.items()]


def test_every_error_status_is_our_error_shape(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(document)
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status, schema)


def test_statuses_the_resolver_answers_for_every_route_are_documented(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        statuses = set(op["responses"])
        assert "422" in statuses, (method, path)
        if op.get("security"):
            assert {"401", "429", "503"} <= statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= statuses, (method, path)


def test_no_content_responses_have_no_media_type(document: dict[str, Any]) -> None:
    deletes = [(path, op) for method, path, op in operations(document) if "204" in op["responses"]]
    assert {path for path, _ in deletes} == {"/v1/jobs/{jobID}", "/v1/webhooks/{webhook_id}"}
    for _, op in deletes:
        assert "content" not in op["responses"]["204"]


def test_generated_ids_in_paths_are_url_safe(document: dict[str, Any]) -> None:
    # API Gateway hands path segments on percent-encoded: the documented pattern keeps a schema-valid
    # id from growing past max_length on the way (a 37-character Devanagari id was 300 encoded).
    for method, path, op in operations(document):
        for parameter in op.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] not in ("batchId", "messageId"):
                assert parameter["schema"].get("pattern") == "^[A-Za-z0-9_-]+$", (method, path, parameter)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def test_event_log_fields_that_refuse_null_are_not_documented_nullable() -> None:
    properties = _schema(EventLogEntry)["properties"]
    for name in NOT_NULLABLE:
        assert "null" not in json.dumps(properties[name]), name
    assert "null" in json.dumps(properties["accountId"])  # the one `.nullish()` field stays nullable


def _matches(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


@pytest.mark.parametrize("method", ["POST", "patch", "Delete", "GET", "", "POSTS"])
def test_operation_method_pattern_is_what_the_validator_takes(method: str) -> None:
    pattern = _schema(Operation)["properties"]["method"]["pattern"]
    try:
        Operation(id="a", method=method, path="/v1/events")
        accepted = True
    except ValidationError:
        accepted = False
    assert _matches(pattern, method) is accepted


@pytest.mark.parametrize("cron", ["* * * * *", "0 0 1 1 0", "", "* * * *", "* * * * * *", "* *\t* * *"])
def test_cron_pattern_is_what_the_validator_takes(cron: str) -> None:
    pattern = _schema(JobUpdate)["properties"]["cron"]["pattern"]
    try:
        JobUpdate(cron=cron)
        accepted = True
    except ValidationError:
        accepted = False
    assert _matches(pattern, cron) is accepted


@pytest.mark.parametrize("url", ["0", "ftp://example.com/x", "example.com", "http://", "https://a b.com/"])
def test_urls_the_document_refuses_the_server_refuses(url: str) -> None:
    for model, field in ((JobCreate, "endpoint_url"), (WebhookCreate, "url")):
        pattern = _schema(model)["properties"][field]["pattern"]
        assert not _matches(pattern, url), (model, url)
    assert _matches(pattern, "https://example.com/hook?x=1")


def test_the_shipped_document_is_the_route_tables() -> None:
    """OpenApiFunction answers the document shipped in the layer (built at import it cost a cold
    start 960 ms); it must be what the routes generate. On failure: `make openapi`."""
    from batchops.api.system import DOCUMENT, generated_document

    assert json.loads(DOCUMENT.read_text(encoding="utf-8")) == generated_document()
