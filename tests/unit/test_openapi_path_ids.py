"""Path ids as API Gateway hands them on: percent-encoded. Found by schemathesis (issue 13 item 4):
an event tracked with messageId "m é 1" could never be read back (GET answered 404 for
"m%20%C3%A9%201"), and a 100-character id past max_length once encoded was refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from batchops.api import tracking as tracking_routes
from batchops.api.resolver import build_resolver
from batchops.models.tracking import MAX_MESSAGE_ID_CHARS

RESOURCE = "/v1/track/events/{messageId}"


class Context:
    function_name = "test"
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def proxy_event(segment: str) -> dict[str, Any]:
    path = f"/v1/track/events/{segment}"
    return {
        "resource": RESOURCE,
        "path": path,
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": {"messageId": segment},
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": RESOURCE,
            "httpMethod": "GET",
            "path": path,
            "requestId": "r",
            "authorizer": {"workspace_id": "ws-a", "key_id": "key_a", "plan": "pro"},
        },
    }


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids the route asks the store for (the store itself is not under test)."""
    ids: list[str] = []

    def get_event(workspace_id: str, message_id: str) -> dict[str, Any]:
        ids.append(message_id)
        return {"messageId": message_id}

    monkeypatch.setattr(tracking_routes.tracking, "get_event", get_event)
    return ids


def resolve(segment: str) -> dict[str, Any]:
    endpoints = [e for e in tracking_routes.router.endpoints if e.path == RESOURCE]
    return build_resolver(endpoints, limit_requests=False).resolve(proxy_event(segment), Context())  # type: ignore[arg-type]


@pytest.mark.parametrize("message_id", ["m é 1", "a/b?c#d", "100%", "plain-1"])
def test_an_encoded_message_id_is_looked_up_as_sent(asked: list[str], message_id: str) -> None:
    result = resolve(quote(message_id, safe=""))
    assert result["statusCode"] == 200, result
    assert asked == [message_id]


def test_the_length_limit_counts_the_id_not_its_encoding(asked: list[str]) -> None:
    longest = "é" * MAX_MESSAGE_ID_CHARS  # 600 characters encoded
    assert resolve(quote(longest, safe=""))["statusCode"] == 200
    assert asked == [longest]
    too_long = resolve(quote(longest + "é", safe=""))
    assert too_long["statusCode"] == 422
    assert json.loads(too_long["body"])["details"][0]["field"] == "messageId"


def test_no_content_answers_carry_no_media_type(monkeypatch: pytest.MonkeyPatch) -> None:
    from batchops.api import jobs as job_routes

    deleted: list[str] = []
    monkeypatch.setattr(job_routes.jobs, "delete_job", lambda workspace_id, job_id: deleted.append(job_id))
    resource = "/v1/jobs/{jobID}"
    event = proxy_event("job_1")
    event.update(resource=resource, path="/v1/jobs/job_1", httpMethod="DELETE", pathParameters={"jobID": "job_1"})
    event["requestContext"].update(resourcePath=resource, httpMethod="DELETE", path="/v1/jobs/job_1")
    endpoints = [e for e in job_routes.router.endpoints if e.key == ("DELETE", resource)]
    result = build_resolver(endpoints, limit_requests=False).resolve(event, Context())  # type: ignore[arg-type]
    assert result["statusCode"] == 204 and deleted == ["job_1"]
    headers = {**(result.get("headers") or {}), **(result.get("multiValueHeaders") or {})}
    assert not result.get("body")
    assert "content-type" not in {name.lower() for name in headers}, headers
