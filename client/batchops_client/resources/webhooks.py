"""`client.webhooks`: webhook subscriptions (`/v1/webhooks`), their delivery log, and checking a
delivery's Standard Webhooks signature (`verify`, or `verify_webhook` without a client)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from typing import Optional, Union

from standardwebhooks.webhooks import EmptyWebhookSecretError
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError as StandardVerificationError

from batchops_client._core import Plan
from batchops_client._resource import D, Resource, endpoint, path
from batchops_client.errors import WebhookVerificationError
from batchops_client.models.webhooks import Webhook, WebhookDelivery, WebhookEvent


def verify_webhook(payload: Union[bytes, str], headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """The event a delivery carries, once its signature is checked: `payload` is the request body
    exactly as received (bytes or text, not re-serialized JSON), `headers` its headers (any
    mapping; `webhook-id`, `webhook-timestamp` and `webhook-signature` are read, in any case) and
    `secret` the subscription's (or batch's) `whsec_...` secret. Raises WebhookVerificationError
    when a header is missing, the signature does not match, or the timestamp is more than five
    minutes from now (a replayed delivery). Receivers should also drop a `webhook-id` they have
    seen: a delivery may come more than once."""
    try:
        parsed = StandardWebhook(secret).verify(payload, {str(k): str(v) for k, v in headers.items()})
    except StandardVerificationError as error:
        raise WebhookVerificationError(str(error), code="WEBHOOK_VERIFICATION_FAILED") from error
    except EmptyWebhookSecretError as error:
        raise WebhookVerificationError("the webhook secret is empty", code="WEBHOOK_VERIFICATION_FAILED") from error
    except ValueError as error:
        # A secret or signature that is not base64, a signature without its `v1,` prefix, a body
        # that is not UTF-8 JSON (binascii.Error, UnicodeDecodeError, JSONDecodeError are all
        # ValueErrors): nothing batchops would have sent.
        raise WebhookVerificationError(
            f"malformed webhook: {type(error).__name__}: {error}", code="WEBHOOK_VERIFICATION_FAILED"
        ) from error
    if not isinstance(parsed, dict):
        raise WebhookVerificationError(
            f"the webhook body is {json.dumps(parsed)[:40]}, not a JSON object", code="WEBHOOK_VERIFICATION_FAILED"
        )
    return WebhookEvent.model_validate(parsed)


class Webhooks(Resource[D]):
    @endpoint
    def create(self, url: str, events: Sequence[str], *, idempotency_key: Optional[str] = None) -> Plan[Webhook]:
        """Subscribe `url` to batch events (`POST /v1/webhooks`; `batch.created`, `batch.started`,
        `batch.progress`, `batch.job_completed`, `batch.completed`, `batch.failed`,
        `batch.cancelled`). The answer's `secret` signs every delivery and is shown only here.
        ConflictError past 20 subscriptions; ValidationError for a private or malformed URL."""
        body = {"url": url, "events": [str(event) for event in events]}
        answer = yield from self._request("POST", "/v1/webhooks", json=body, idempotency_key=idempotency_key)
        return Webhook.model_validate(answer["data"])

    @endpoint
    def delete(self, webhook_id: str) -> Plan[None]:
        """Delete a subscription (`DELETE /v1/webhooks/{webhook_id}`); NotFoundError if unknown."""
        yield from self._request("DELETE", path("/v1/webhooks/{}", webhook_id))

    @endpoint
    def deliveries(self, webhook_id: str) -> Plan[builtins.list[WebhookDelivery]]:
        """A subscription's delivery log, newest first, at most 100 entries
        (`GET /v1/webhooks/{webhook_id}/deliveries`)."""
        answer = yield from self._request("GET", path("/v1/webhooks/{}/deliveries", webhook_id))
        return [WebhookDelivery.model_validate(item) for item in answer["data"]]

    def verify(self, payload: Union[bytes, str], headers: Mapping[str, str], secret: str) -> WebhookEvent:
        """`verify_webhook`: checks a delivery's signature locally (no request) and returns its event."""
        return verify_webhook(payload, headers, secret)

    # Last: inside the class body, a method named `list` hides the builtin from the annotations after it.
    @endpoint
    def list(self) -> Plan[builtins.list[Webhook]]:
        """The workspace's subscriptions, oldest first, without their secrets (`GET /v1/webhooks`)."""
        answer = yield from self._request("GET", "/v1/webhooks")
        return [Webhook.model_validate(item) for item in answer["data"]]
