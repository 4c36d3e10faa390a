"""Header names and values clients give batchops to send (job headers, a Batches http job's
config.headers, an operation's headers) are what HTTP allows (RFC 9110): a name is a token; a value
is visible ASCII or obs-text (Latin-1) with spaces and tabs inside, no CR, LF, NUL or other control
character, nothing past Latin-1, and no space at either end. Anything else is refused when given
(422 with the field), where it was stored and then failed every run, reported as a connection error
or a false TIMEOUT. The run worker's call sends every value it accepts, Latin-1 included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from batchops.executors import http_call
from batchops.models.batches import HttpJobConfig
from batchops.models.jobs import JobCreate, JobUpdate
from batchops.models.operations import Operation
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints

BAD_VALUES = [
    "a\r\nInjected: yes",
    "line\nbreak",
    "carriage\rreturn",
    "nul\x00byte",
    "bell\x07",
    "del\x7f",
    "euro \u20ac",  # past Latin-1
    "emoji \U0001f600",
    "lone \ud800",
    " leading space",
    "trailing tab\t",
]
BAD_NAMES = ["X Custom", "X-Custom:", "Caf\u00e9", "", "X\r\nInjected", "(x)", "a/b", "x" * 257]
GOOD = {"X-Custom": "1", "X-Latin": "caf\u00e9 \u00ff", "X-Tab": "a\tb  c", "X-Empty": "", "x.y_z!#$%&'*+^`|~": "v"}


def job(headers: dict[str, str]) -> dict[str, Any]:
    return {"name": "j", "endpoint_url": "https://hooks.example.com/x", "headers": headers}


# (model, how the headers are given to it, the field path the refusal names)
CARRIERS: list[tuple[type[BaseModel], Any, str]] = [
    (JobCreate, job, "headers"),
    (JobUpdate, lambda headers: {"headers": headers}, "headers"),
    (HttpJobConfig, lambda headers: {"url": "https://hooks.example.com/x", "headers": headers}, "headers"),
    (Operation, lambda headers: {"id": "a", "method": "POST", "path": "/v1/events", "headers": headers}, "headers"),
]
CARRIER_IDS = [c[0].__name__ for c in CARRIERS]


@pytest.mark.parametrize(("model", "given", "field"), CARRIERS, ids=CARRIER_IDS)
@pytest.mark.parametrize("value", BAD_VALUES)
def test_a_value_http_cannot_carry_is_refused(model: type[BaseModel], given: Any, field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(given({"X-Custom": value}))
    [problem] = caught.value.errors()
    assert problem["loc"][0] == field
    assert "X-Custom" in problem["msg"]


@pytest.mark.parametrize(("model", "given", "field"), CARRIERS, ids=CARRIER_IDS)
@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_a_token_is_refused(model: type[BaseModel], given: Any, field: str, name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(given({name: "v"}))
    assert caught.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(("model", "given", "field"), CARRIERS, ids=CARRIER_IDS)
def test_what_http_allows_is_kept(model: type[BaseModel], given: Any, field: str) -> None:
    assert getattr(model.model_validate(given(GOOD)), field) == GOOD


# ---------------------------------------------------------------- the call


@pytest.fixture(scope="module")
def server() -> Iterator[JobEndpoints]:
    with job_endpoints() as endpoints:
        yield endpoints


def call(url: str, headers: dict[str, str]) -> http_call.CallOutcome:
    return http_call.call(
        url, method="POST", headers=headers, body="{}", timeout_seconds=5, max_body_bytes=1024, allow_loopback=True
    )


def test_latin_1_values_are_sent_as_latin_1(server: JobEndpoints) -> None:
    server.script("/latin", Reply(200, {"ok": True}))
    out = call(server.url("/latin"), {"X-Latin": "caf\u00e9 \u00ff", "X-Tab": "a\tb"})
    assert (out.http_status, out.error_code) == (200, None), out
    [seen] = server.calls_to("/latin")
    assert seen.headers["x-latin"] == "caf\u00e9 \u00ff" and seen.headers["x-tab"] == "a\tb"


@pytest.mark.parametrize("headers", [{"X-Bad": "euro \u20ac"}, {"X-Bad": "a\r\nInjected: 1"}, {"Bad Name": "v"}])
def test_a_header_that_cannot_be_sent_is_said_so_not_a_timeout(server: JobEndpoints, headers: dict[str, str]) -> None:
    # Stored before validation existed: the call fails at once, with a message that says why.
    before = len(server.calls)
    out = call(server.url("/never"), headers)
    assert out.error_code == "CONNECTION_ERROR", out
    assert "header" in out.message and "Error" not in out.message, out.message
    assert len(server.calls) == before
