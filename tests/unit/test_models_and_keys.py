"""Models, key builders and value conversion: no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from batchops.dal import keys
from batchops.dal.items import deserialize, iso, serialize
from batchops.models.event_log import format_timestamp
from batchops.models.validation import describe


def test_every_tenant_partition_key_starts_with_the_workspace():
    assert keys.workspace("a")["pk"] == "WS#a"
    assert keys.event_entry("a", "e1")["pk"].startswith("WS#a#")
    assert keys.event_batch("a", "b").startswith("WS#a#")
    assert keys.api_keys_of_workspace("a").startswith("WS#a#")
    with pytest.raises(ValueError):
        keys.event_entry("a#b", "e1")
    with pytest.raises(ValueError):
        keys.workspace("")


def test_batch_sort_key_orders_by_time():
    nine = format_timestamp(datetime(2026, 3, 1, 9, tzinfo=UTC))
    ten = format_timestamp(datetime(2026, 3, 1, 10, tzinfo=UTC))
    assert keys.event_batch_sort(nine, 2**53) < keys.event_batch_sort(ten, 1)
    # equal timestamps: the order the entries were stored in (eventLogId)
    assert keys.event_batch_sort(ten, 9) < keys.event_batch_sort(ten, 10)


def test_format_timestamp_is_utc_with_milliseconds():
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 3, 1, 12, 0, 0, 123999, tzinfo=plus_two)) == "2026-03-01T10:00:00.123Z"


def test_iso_is_fixed_width_so_strings_compare_like_times():
    a = iso(datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC))
    b = iso(datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC))
    assert len(a) == len(b) and a < b


def test_serialize_round_trip_keeps_numbers_and_drops_none():
    item = {"pk": "x", "n": 3, "f": 1.5, "nested": {"l": [1, 2.25, "s"]}, "gone": None}
    typed = serialize(item)
    assert "gone" not in typed
    assert typed["f"] == {"N": "1.5"}
    back = deserialize(typed)
    assert back == {"pk": "x", "n": 3, "f": 1.5, "nested": {"l": [1, 2.25, "s"]}}
    assert not any(isinstance(v, Decimal) for v in back.values())


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ({"type": "missing", "loc": ("correlationId",)}, "correlationId is required"),
        (
            {"type": "too_long", "loc": ("events",), "ctx": {"max_length": 1000}},
            "events must have at most 1000 items",
        ),
        (
            {"type": "too_short", "loc": ("events",), "ctx": {"min_length": 1}},
            "events must have at least 1 item(s)",
        ),
        (
            {
                "type": "greater_than_equal",
                "loc": ("pageSize",),
                "msg": "Input should be greater than or equal to 1",
            },
            "pageSize input should be greater than or equal to 1",
        ),
        ({"type": "something_new", "loc": ("a", 0, "b"), "msg": "Odd value"}, "a.0.b odd value"),
    ],
)
def test_describe(error, text):
    assert describe(error) == text
