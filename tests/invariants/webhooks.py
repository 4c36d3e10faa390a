"""Webhook deliveries' promises (seed 002's webhooks and notification emails):

- every delivery ends delivered or failed, once: finished_at set, no lease and no next attempt
  left; nothing stays pending unless a message for it is still queued;
- attempts are consistent: a delivered delivery made at least one, none made more than the queue
  allows receives; (given the receivers' calls, keyed by webhook-id) a receiver was called at most
  once per attempt, and a delivered webhook at least once;
- each (target, event key) has one delivery;
- a disabled subscription says when and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from tests.invariants.table import table_items

TERMINAL = ("delivered", "failed")


def deliveries(items: Iterable[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [i for i in (items if items is not None else table_items()) if i.get("type") == "webhook_delivery"]


def subscriptions(items: Iterable[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [i for i in (items if items is not None else table_items()) if i.get("type") == "webhook"]


def webhooks_broken(
    *, calls: Counter[str] | None = None, queued: Iterable[str] = (), max_attempts: int | None = None
) -> list[str]:
    """`calls`: receiver calls by webhook-id header (the delivery id); `queued`: delivery ids with
    a message still on the queue; `max_attempts`: the queue's maxReceiveCount (settings')."""
    from batchops.settings import get_settings

    limit = max_attempts or get_settings().webhook_max_receives
    waiting = set(queued)
    items = table_items()
    broken: list[str] = []
    seen: Counter[tuple[str, str, str]] = Counter()
    for delivery in deliveries(items):
        name = f"delivery {delivery['id']} ({delivery['event_key']} to {delivery['target_kind']})"
        seen[(str(delivery["target_kind"]), str(delivery["target_id"]), str(delivery["event_key"]))] += 1
        status, attempts = delivery["status"], int(delivery["attempts"])
        if status not in TERMINAL:
            if delivery["id"] not in waiting:
                broken.append(f"{name}: {status} with no message queued")
            continue
        if not delivery.get("finished_at"):
            broken.append(f"{name}: {status} without finished_at")
        for left in ("lease_until", "next_attempt_at"):
            if delivery.get(left):
                broken.append(f"{name}: {status} with {left} left")
        if status == "delivered" and attempts < 1:
            broken.append(f"{name}: delivered in {attempts} attempts")
        if attempts > limit:
            broken.append(f"{name}: {attempts} attempts, the queue allows {limit}")
        if calls is not None and delivery["target_kind"] != "email":
            made = calls.get(str(delivery["id"]), 0)
            if made > attempts:
                broken.append(f"{name}: receiver called {made} times in {attempts} attempts")
            if status == "delivered" and made == 0:
                broken.append(f"{name}: delivered without a call")
    for key, count in seen.items():
        if count != 1:
            broken.append(f"{key}: {count} deliveries")
    for webhook in subscriptions(items):
        if webhook.get("status") == "disabled" and not (webhook.get("disabled_at") and webhook.get("disabled_reason")):
            broken.append(f"webhook {webhook['id']}: disabled without when and why")
    return broken
