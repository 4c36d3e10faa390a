"""The SDK's event-log entry builder: the Java SDK's shape, valid for the API; no network."""

from __future__ import annotations

import json
import re

import pytest

from batchops.models.event_log import EventLogEntry
from batchops_client.sdk import event_log_entry, new_correlation_id, new_span_id, new_trace_id
from tests.event_log_sdk_bodies import ALL_FIELDS, MINIMAL

REQUIRED = {
    "correlation_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "application_id": "hr-portal",
    "target_system": "workday",
    "originating_system": "hr-portal",
    "process_name": "EMPLOYEE_ONBOARDING",
    "event_type": "PROCESS_START",
    "event_status": "IN_PROGRESS",
    "summary": "Started onboarding for employee E-1001",
    "result": "STARTED",
}


def test_ids_have_the_formats_the_api_requires():
    assert re.fullmatch(r"[0-9a-f]{32}", new_correlation_id()) and re.fullmatch(r"[0-9a-f]{32}", new_trace_id())
    assert re.fullmatch(r"[0-9a-f]{16}", new_span_id())
    assert new_correlation_id() != new_correlation_id()


def test_the_minimal_entry_is_the_java_sdks_body_byte_for_byte():
    built = event_log_entry(**REQUIRED, span_id="00f067aa0ba902b7", event_timestamp="2026-03-01T10:00:00.123456Z")
    assert json.dumps(built, separators=(",", ":")) == MINIMAL


def test_every_field_in_the_java_sdks_order():
    sent = json.loads(ALL_FIELDS)
    snake = {re.sub(r"([A-Z])", r"_\1", k).lower(): v for k, v in sent.items()}
    built = event_log_entry(**snake)
    assert json.dumps(built, separators=(",", ":")) == ALL_FIELDS


def test_what_the_builder_fills_in_is_valid():
    built = event_log_entry(**REQUIRED)
    assert re.fullmatch(r"[0-9a-f]{16}", built["spanId"]) and built["identifiers"] == {} and built["metadata"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", built["eventTimestamp"])
    EventLogEntry.model_validate(built)


def test_unknown_field_names_are_a_type_error():
    with pytest.raises(TypeError, match="eventName"):
        event_log_entry(**REQUIRED, eventName="x")
