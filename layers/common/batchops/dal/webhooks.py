"""Webhook subscriptions and webhook deliveries in the domain table.

A subscription keeps its signing secret: it signs every delivery, though the client sees it only
once, at creation. A delivery is one event to one target; its id is derived from the target and
the event, so writing it is conditional on its absence and a repeated emission writes nothing.
Every later change of a delivery is a conditional write on the status and attempt count it had,
so a duplicate SQS message can neither send it twice at once nor count an attempt twice.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from batchops.dal import clients, keys
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import conditional_write, newest_first, query_gsi1

WEBHOOK_TYPE = "webhook"
DELIVERY_TYPE = "webhook_delivery"
# A subscription as the API shows it, in this order; absent values are null.
WEBHOOK_FIELDS = ("id", "url", "events", "status", "created_at", "disabled_at", "disabled_reason")
# One entry of a delivery log, in this order.
DELIVERY_FIELDS = ("id", "event", "status", "attempts", "last_status_code", "next_attempt_at", "created_at")


def public_webhook(item: dict[str, Any]) -> dict[str, Any]:
    """Never the secret: that is shown once, by the service that created it."""
    return {name: item.get(name) for name in WEBHOOK_FIELDS}


def public_delivery(item: dict[str, Any]) -> dict[str, Any]:
    return {name: item.get(name) for name in DELIVERY_FIELDS}


def delivery_log(workspace_id: str, target_kind: str, target_id: str) -> str:
    """gsi1pk of a target's log: a subscription's own, or the batch's (its webhook and its email
    share one log, `batch:<batch id>`)."""
    return keys.deliveries_of(workspace_id, target_id if target_kind == "subscription" else f"batch:{target_id}")


class _Listings:
    """Subscription lists read in this invocation, by workspace; the records of one invocation may
    run on several threads (each in a copy of the invocation's context), which share it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_workspace: dict[str, builtins.list[dict[str, Any]]] = {}


_listings: ContextVar[_Listings | None] = ContextVar("webhook_listings", default=None)


@contextmanager
def subscriptions_read_once() -> Iterator[None]:
    """Within: each workspace's subscription list is read at most once (`WebhookRepository.
    subscriptions_to_notify`). Entered by a worker around one invocation (one SQS batch), so it is
    empty when each invocation starts; nothing is kept between invocations.

    Why a subscription created meanwhile may miss this invocation's events, and why that is the
    promise: an event goes to the subscriptions that existed when the invocation that emits it
    started; one created later gets the events emitted from the next invocation on (Lambda
    invocations are short: a job worker's lasts at most its timeout). Subscriptions are not
    retroactive anywhere: Stripe sends an endpoint only events created after it was added, and
    Standard Webhooks promises nothing about events that precede a subscription. Nothing is sent
    to a subscription deleted or disabled meanwhile: `deliver` reads the subscription again before
    every attempt and fails the delivery unsent. A subscription this process creates, deletes or
    disables (an operation run in-process by the same worker) clears its workspace's entry, so the
    invocation sees its own changes at once."""
    token = _listings.set(_Listings())
    try:
        yield
    finally:
        _listings.reset(token)


def _forget(workspace_id: str) -> None:
    listings = _listings.get()
    if listings is not None:
        with listings.lock:
            listings.by_workspace.pop(workspace_id, None)


class WebhookRepository:
    def __init__(self, table: str):
        self.table = table

    # ---------------------------------------------------------------- subscriptions
    def put(self, workspace_id: str, webhook: dict[str, Any]) -> bool:
        """Store a new subscription (with its `signing_secret`); False if the id exists."""
        item = {
            **keys.webhook(workspace_id, webhook["id"]),
            **webhook,
            "type": WEBHOOK_TYPE,
            "gsi1pk": keys.webhooks_of_workspace(workspace_id),
            "gsi1sk": f"{webhook['created_at']}#{webhook['id']}",
        }
        written = conditional_write(
            "put_item", TableName=self.table, Item=serialize(item), ConditionExpression="attribute_not_exists(pk)"
        )
        _forget(workspace_id)  # after the write: a read racing it cannot cache the old list
        return written

    def get(self, workspace_id: str, webhook_id: str) -> dict[str, Any] | None:
        """The stored subscription, secret included (deliveries sign with it)."""
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.webhook(workspace_id, webhook_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def list(self, workspace_id: str) -> list[dict[str, Any]]:
        """Every subscription of the workspace, oldest first, secrets included (emit matches on
        them; the service strips secrets before showing any)."""
        return list(query_gsi1(self.table, keys.webhooks_of_workspace(workspace_id)))

    def subscriptions_to_notify(self, workspace_id: str) -> builtins.list[dict[str, Any]]:
        """`list`, read once per workspace inside `subscriptions_read_once` (one Query per
        invocation instead of one per emitted event), else read now. For emitting only: listing
        the subscriptions to a client always reads them."""
        listings = _listings.get()
        if listings is None:
            return self.list(workspace_id)
        with listings.lock:  # held across the read: concurrent records wait for one Query
            found = listings.by_workspace.get(workspace_id)
            if found is None:
                found = listings.by_workspace[workspace_id] = self.list(workspace_id)
            return builtins.list(found)

    def delete(self, workspace_id: str, webhook_id: str) -> bool:
        """False when there was nothing to delete."""
        written = conditional_write(
            "delete_item",
            TableName=self.table,
            Key=serialize(keys.webhook(workspace_id, webhook_id)),
            ConditionExpression="attribute_exists(pk)",
        )
        _forget(workspace_id)  # after the write: a read racing it cannot cache the old list
        return written

    def disable(self, workspace_id: str, webhook_id: str, *, reason: str, at: str) -> bool:
        """active -> disabled, once; False when it was no longer active (or is gone)."""
        written = conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.webhook(workspace_id, webhook_id)),
            UpdateExpression="SET #status = :disabled, disabled_at = :at, disabled_reason = :reason",
            ConditionExpression="attribute_exists(pk) AND #status = :active",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize(
                {":disabled": "disabled", ":active": "active", ":at": at, ":reason": reason}
            ),
        )
        _forget(workspace_id)  # after the write: a read racing it cannot cache the old list
        return written

    # ---------------------------------------------------------------- deliveries
    def put_new_delivery(self, delivery: dict[str, Any]) -> bool:
        """Write a delivery unless one with its (deterministic) id exists: False for a repeated
        emission, which then writes and sends nothing."""
        workspace_id = delivery["workspace_id"]
        item = {
            **keys.webhook_delivery(workspace_id, delivery["id"]),
            **delivery,
            "type": DELIVERY_TYPE,
            "gsi1pk": delivery_log(workspace_id, delivery["target_kind"], delivery["target_id"]),
            "gsi1sk": f"{delivery['created_at']}#{delivery['id']}",
        }
        return conditional_write(
            "put_item", TableName=self.table, Item=serialize(item), ConditionExpression="attribute_not_exists(pk)"
        )

    def get_delivery(self, workspace_id: str, delivery_id: str) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.webhook_delivery(workspace_id, delivery_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def record_attempt(
        self,
        workspace_id: str,
        delivery_id: str,
        *,
        from_attempts: int,
        status: str,
        attempts: int,
        fields: dict[str, Any] | None = None,
    ) -> bool:
        """Move a pending delivery that has made `from_attempts` attempts to `status` with
        `attempts`; `fields` are set too (a None value removes the attribute: next_attempt_at of
        a finished delivery, an ended lease). False when the delivery is no longer in that state:
        another message got there first, and this one must change nothing."""
        names = {"#status": "status", "#attempts": "attempts"}
        values: dict[str, Any] = {":pending": "pending", ":seen": from_attempts, ":to": status, ":n": attempts}
        sets = ["#status = :to", "#attempts = :n"]
        removes: list[str] = []
        for n, (name, value) in enumerate((fields or {}).items()):
            names[f"#f{n}"] = name
            if value is None:
                removes.append(f"#f{n}")
            else:
                values[f":f{n}"] = value
                sets.append(f"#f{n} = :f{n}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.webhook_delivery(workspace_id, delivery_id)),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk) AND #status = :pending AND #attempts = :seen",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def list_deliveries(
        self, workspace_id: str, target_kind: str, target_id: str, *, limit: int
    ) -> builtins.list[dict[str, Any]]:
        """A target's deliveries, newest first, at most `limit`."""
        items, _ = newest_first(
            self.table,
            delivery_log(workspace_id, target_kind, target_id),
            pk_prefix=keys.webhook_delivery_prefix(workspace_id),
            limit=limit,
            cursor=None,
        )
        return items
