"""The event-log entry as the platform defines it: formats, bounds, timestamps; no AWS."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from batchops.models.event_log import (
    EventLogEntry,
    EventLogRecord,
    format_timestamp,
    js_length,
    json_problem,
    parse_timestamp,
)
from batchops.services.event_log import validate_entry
from tests.event_log_sdk_bodies import ALL_FIELDS, MINIMAL, RECORD_KEYS
from tests.support import log_entry

# zod 3.25.76's `datetime({ offset: true })`, copied from its source, to hold ours against.
ZOD_DATETIME = re.compile(
    r"^((\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-((0[13578]|1[02])"
    r"-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)|(02)-(0[1-9]|1\d|2[0-8])))T([01]\d|2[0-3]):[0-5]\d"
    r"(:[0-5]\d(\.\d+)?)?(Z|([+-]\d{2}:?\d{2}))$",
    re.ASCII,
)


def test_the_java_sdks_bodies_are_valid_entries():
    minimal = EventLogEntry.model_validate_json(MINIMAL)
    full = EventLogEntry.model_validate_json(ALL_FIELDS)
    assert minimal.identifiers == {} and minimal.metadata == {} and minimal.accountId is None
    assert minimal.eventTimestamp == "2026-03-01T10:00:00.123Z"
    assert full.model_dump(mode="json", exclude_unset=True) == {
        **json.loads(ALL_FIELDS),
        "eventTimestamp": full.eventTimestamp,
    }


def test_the_stored_record_has_the_platforms_keys_in_its_order():
    assert list(EventLogRecord.model_fields) == RECORD_KEYS


def test_js_length_counts_utf16_code_units():
    assert js_length("abc") == 3 and js_length("é") == 1 and js_length("😀") == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00.123999Z", datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-03-01T10:00+01:00", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01T10:00:00-0230", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("2000-02-29T00:00:00Z", datetime(2000, 2, 29, tzinfo=UTC)),
    ],
)
def test_timestamps_parse_to_the_instant_truncated_to_milliseconds(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-03-01T10:00:00.Z",
        "2026-03-01T10Z",
        "\uff12\uff10\uff12\uff16-03-01T10:00Z",  # full-width digits: ASCII only
    ],
)
def test_timestamps_zod_refuses_are_refused(text):
    assert not ZOD_DATETIME.match(text)
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format_timestamp_is_fixed_width_utc_milliseconds():
    assert format_timestamp(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
    assert format_timestamp(datetime(2026, 3, 1, 12, 0, 0, 123999, tzinfo=UTC)) == "2026-03-01T12:00:00.123Z"


def test_explicit_null_is_refused_except_for_account_id():
    EventLogEntry.model_validate(log_entry(accountId=None))
    with pytest.raises(ValidationError) as refused:
        EventLogEntry.model_validate(log_entry(idempotencyKey=None))
    assert refused.value.errors()[0]["loc"] == ("idempotencyKey",)


# ---------------------------------------------------------------- properties

instants = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


@given(instants, offsets, st.integers(min_value=0, max_value=9), st.booleans())
def test_every_zod_timestamp_names_its_instant_and_sorts_as_text(instant, offset_minutes, digits, colon):
    zone = timedelta(minutes=offset_minutes)
    local = instant.astimezone(UTC) + zone
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    fraction = ("." + f"{local.microsecond:06d}{'789'}"[:digits]) if digits else ""
    clock = f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    text = f"{clock}{fraction}{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"
    assert ZOD_DATETIME.match(text)
    stored = format_timestamp(parse_timestamp(text))
    expected = instant.replace(microsecond=(int(fraction[1:4].ljust(3, "0")) * 1000) if digits else 0)
    assert parse_timestamp(stored) == expected
    assert len(stored) == 24


def _to_millis(instant: datetime) -> datetime:
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


@given(instants, instants)
def test_stored_timestamps_compare_as_text_like_the_instants(a, b):
    assert (format_timestamp(a) < format_timestamp(b)) == (_to_millis(a) < _to_millis(b))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(json_values)
def test_any_json_value_is_an_entry_or_a_validation_message(value):
    result = validate_entry(value)
    assert isinstance(result, EventLogEntry) or result.startswith("Validation failed: ")


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(list(log_entry())), json_values, max_size=4))
def test_any_change_to_a_valid_entry_is_an_entry_or_names_the_fields_it_broke(changes):
    result = validate_entry({**log_entry(), **changes})
    if isinstance(result, str):
        problems = result.removeprefix("Validation failed: ").split("; ")
        assert all(p.split(" ")[0].split(".")[0] in changes for p in problems), result
    else:
        # what was kept is what was sent, apart from the timestamp's normal form
        sent: dict[str, Any] = {**log_entry(), **changes}
        kept = result.model_dump(mode="json", exclude_unset=True)
        assert {k: v for k, v in kept.items() if k != "eventTimestamp"} == {
            k: (int(v) if isinstance(v, float) and k in {"stepSequence", "executionTimeMs", "httpStatusCode"} else v)
            for k, v in sent.items()
            if k != "eventTimestamp"
        }


# ---------------------------------------------------------------- lone UTF-16 surrogates

# Text as Python's JSON parser can hand it over: a `\ud800` escape without its pair becomes a lone
# surrogate, which has no UTF-8 form.
texts_with_surrogates = st.text(alphabet=st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=6)
json_with_surrogates = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts_with_surrogates,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts_with_surrogates, inner, max_size=3),
    max_leaves=10,
)


def test_a_lone_surrogate_counts_as_one_utf16_code_unit():
    assert js_length("a\ud800") == 2 and js_length("\udc00") == 1


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"k": "x\ud800"}, "found at identifiers.k"),
        ({"\udc00": 1}, "found in a key of identifiers"),
        ({"a": [0, {"b": ["ok", "\udfff"]}]}, "found at identifiers.a.1.b.1"),
        # the first in the document, whatever the walk's order
        ({"a": "\ud800", "b": "\ud800"}, "found at identifiers.a"),
        ({"k" * 100: "\ud800"}, f"found at identifiers.{'k' * 61}..."),
    ],
)
def test_json_problem_names_the_path_to_the_first_lone_surrogate(value, where):
    problem = json_problem(value, "identifiers")
    assert problem == f"must not contain a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), {where}"


LONE = "must not contain a lone UTF-16 surrogate (\\ud800-\\udfff without its pair)"
FREE_TEXT_FIELDS = [
    "accountId",
    "traceId",
    "batchId",
    "applicationId",
    "targetSystem",
    "originatingSystem",
    "processName",
    "stepName",
    "summary",
    "result",
    "endpoint",
    "errorCode",
    "errorMessage",
    "requestPayload",
    "responsePayload",
    "idempotencyKey",
]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        *[({name: "x\ud800"}, f"{name} {LONE}") for name in FREE_TEXT_FIELDS],
        ({"identifiers": {"k": "\udc00y"}}, f"identifiers {LONE}, found at identifiers.k"),
        ({"identifiers": {"\udbff": 1}}, f"identifiers {LONE}, found in a key of identifiers"),
        ({"metadata": {"a": [1, {"b": "\ud83d"}]}}, f"metadata {LONE}, found at metadata.a.1.b"),
        ({"metadata": {"a": {"\udfff": None}}}, f"metadata {LONE}, found in a key of metadata.a"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_the_entry_model_still_refuses_a_lone_surrogate_per_field(changes, message):
    # Defence in depth: the request path refuses such a body whole (400 MALFORMED_JSON) before any
    # entry is read; an entry reaching the model another way is still refused, naming the place.
    assert validate_entry(log_entry(**changes)) == "Validation failed: " + message


def test_json_problem_reports_depth_then_nan_then_surrogates():
    deep: Any = "\ud800"
    for _ in range(40):
        deep = {"a": deep}
    assert json_problem(deep, "metadata") == "must not nest deeper than 32 levels"
    assert json_problem({"x": "\ud800", "y": float("nan")}, "metadata") == "must not contain NaN or Infinity"
    assert json_problem({"x": "fine", "y": ["\U0001f600", 1e308, 10**40]}, "metadata") is None


@settings(max_examples=300)
@given(
    identifiers=st.dictionaries(texts_with_surrogates, json_with_surrogates, max_size=3),
    metadata=st.dictionaries(texts_with_surrogates, json_with_surrogates, max_size=3),
    summary=texts_with_surrogates.filter(bool),
    payload=texts_with_surrogates,
)
def test_an_entry_that_validates_can_always_be_answered_and_stored(identifiers, metadata, summary, payload):
    raw = log_entry(identifiers=identifiers, metadata=metadata, summary=summary, requestPayload=payload)
    result = validate_entry(raw)
    if isinstance(result, str):
        assert result.startswith("Validation failed: ")
        return
    # as the handler answers it, and as the DAL stores the open objects (UTF-8 JSON text)
    result.model_dump_json().encode("utf-8")
    for value in (result.identifiers, result.metadata):
        json.dumps(value, ensure_ascii=False).encode("utf-8")
