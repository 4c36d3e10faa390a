"""Tracked events' `timestamp` is an RFC 3339 date-time string (seed 004: `type: string, format:
date-time`). pydantic's lax datetime took a JSON number, or a string of digits, as Unix time; such an
event is now a per-item error like any other invalid field."""

from __future__ import annotations

import pytest

from batchops.services.tracking import check_events

NOW = "2026-11-23T10:00:00.000000Z"
MUST = "timestamp must be an RFC 3339 date-time string with an offset, e.g. 2025-10-29T22:00:00.778Z"


def event(timestamp: object) -> dict[str, object]:
    return {"event": "signup", "properties": {"plan": "basic"}, "timestamp": timestamp}


@pytest.mark.parametrize("unix", [1761775200, 1761775200.778, 1761775200778, "1761775200", "1761775200.778", 0, True])
def test_a_unix_number_is_a_per_item_error(unix: object) -> None:
    checked = check_events([event("2025-10-29T22:00:00.778Z"), event(unix)], NOW)
    assert checked.errors == [{"index": 1, "error": MUST}]
    assert len(checked.accepted) == 1


@pytest.mark.parametrize(
    "moment", ["2025-10-29T22:00:00.778Z", "2025-10-29T22:00:00+02:00", "2025-10-29t22:00:00z", "2025-10-29T22:00:00Z"]
)
def test_rfc_3339_strings_are_accepted(moment: str) -> None:
    assert check_events([event(moment)], NOW).errors == []
