"""rate() expressions and the scheduled event payload."""

from __future__ import annotations

import pytest

from batchops_local.schedule import parse_rate, scheduled_event


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
        (" rate( 2 minutes ) ", 120),
    ],
)
def test_valid_rates(expression: str, seconds: float) -> None:
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(5 seconds)",
        "cron(0 12 * * ? *)",
        "rate(x days)",
    ],
)
def test_invalid_rates(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(expression)


def test_scheduled_event_shape() -> None:
    event = scheduled_event("SweeperFunctionEvery5Minutes")
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/SweeperFunctionEvery5Minutes"]
    assert event["detail"] == {}
    assert event["time"].endswith("Z")
