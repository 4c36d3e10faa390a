"""`Idempotency-Key` (or `X-Idempotency-Key`) on every creating route: a retried request gets the
first response back, marked `Idempotent-Replayed: true`."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from batchops.api.context import IDEMPOTENCY_HEADERS, current_caller, idempotency_key_of
from batchops.errors import ValidationFailedError

HEADER = IDEMPOTENCY_HEADERS[0]
REPLAYED_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _payload(app: APIGatewayRestResolver) -> Any:
    # Validation already parsed the body, so compare parsed JSON: key order and spacing don't matter.
    try:
        return app.current_event.json_body
    except ValueError:
        return app.current_event.body


def idempotent(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    key = idempotency_key_of(app.current_event.raw_event)
    if key is None:
        return next_middleware(app)
    if not _VALID_KEY.match(key):
        raise ValidationFailedError(
            "Invalid Idempotency-Key",
            code="INVALID_IDEMPOTENCY_KEY",
            details=[{"field": HEADER, "error": "must be 1-255 visible ASCII characters"}],
        )

    def operation() -> dict[str, Any]:
        response = next_middleware(app)
        return {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": _pack(response.body),
        }

    # Imported here: Powertools idempotency loads boto3, which routes without a key never need.
    from batchops.services import idempotency

    event = app.current_event
    result = idempotency.run_once(
        workspace_id=current_caller().workspace_id,
        # The path as requested, not the route: one key sent to two jobs' /trigger is two
        # requests (Strait scopes its keys the same way), not a replay of the first job's run.
        scope=f"{event.http_method} {event.path}",
        key=key,
        payload=_payload(app),
        operation=operation,
        lambda_context=app.lambda_context,
    )
    headers = dict(result["headers"])
    if result.get(idempotency.REPLAYED):
        headers[REPLAYED_HEADER] = "true"
    return Response(status_code=result["status"], body=_unpack(result["body"]), headers=headers)


def _pack(body: Any) -> str:
    # Stored gzipped: a 1,000-item answer must fit the record's 400 KB DynamoDB item.
    text = body if isinstance(body, str) else json.dumps(body)
    return base64.b64encode(gzip.compress(text.encode())).decode()


def _unpack(packed: str) -> str:
    return gzip.decompress(base64.b64decode(packed)).decode()
