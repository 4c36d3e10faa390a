"""Tracked-event validation (seed 004): per-index errors, messageId generation, fields kept."""

from __future__ import annotations

import json
import uuid

from batchops.services.tracking import check_events

NOW = "2026-11-23T10:00:00.000000Z"


def event(**extra):
    return {"event": "signup", "properties": {"plan": "basic"}, "timestamp": "2025-10-29T22:00:00.778Z", **extra}


def test_valid_events_are_kept_as_sent_with_message_id_and_received_at():
    checked = check_events([event(messageId="m-1", context={"ip": "203.0.113.9"})], NOW)
    assert checked.errors == []
    [(index, message_id, text, generated)] = checked.accepted
    assert (index, message_id, generated) == (0, "m-1", False)
    assert json.loads(text) == {**event(messageId="m-1", context={"ip": "203.0.113.9"}), "receivedAt": NOW}


def test_a_missing_message_id_gets_a_uuid():
    checked = check_events([event(), event(messageId=None)], NOW)
    ids = checked.message_ids
    assert len(set(ids)) == 2 and all(uuid.UUID(i).version == 4 for i in ids)
    assert all(a.generated for a in checked.accepted)


def test_generated_ids_can_be_derived_from_the_position():
    checked = check_events([event(messageId="mine"), event()], NOW, new_id=lambda position: f"upl-{position}")
    assert checked.message_ids == ["mine", "upl-1"]
    assert [a.generated for a in checked.accepted] == [False, True]


def test_each_invalid_event_is_reported_by_index_and_the_rest_accepted():
    events = [
        event(),
        {"properties": {}, "timestamp": "2025-10-29T22:00:00Z"},  # no event
        event(properties="not an object"),
        event(timestamp="2025-10-29T22:00:00"),  # no offset: not an RFC 3339 date-time
        event(timestamp="yesterday"),
        event(messageId="x" * 101),
        event(messageId=""),
        "not an object",
        event(event=""),
        event(messageId="m-ok"),
    ]
    checked = check_events(events, NOW)
    assert [e["index"] for e in checked.errors] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "event is required" in checked.errors[0]["error"]
    assert checked.message_ids[1] == "m-ok" and len(checked.accepted) == 2


def test_an_event_over_64_kb_is_a_per_item_error():
    big = event(properties={"blob": "x" * (64 * 1024)})
    checked = check_events([big, event()], NOW)
    assert [e["index"] for e in checked.errors] == [0] and "65,536" in checked.errors[0]["error"]
    assert len(checked.accepted) == 1


def test_repeated_message_ids_are_listed_each_time():
    checked = check_events([event(messageId="same"), event(messageId="same")], NOW)
    assert checked.message_ids == ["same", "same"]
