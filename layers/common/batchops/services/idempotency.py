"""Run an operation once per `Idempotency-Key`, with Powertools idempotency on DynamoDB.

The record key is the workspace, the route and the client's key, so two
workspaces sending the same key never see each other's responses. The request
body is the validation payload: the same key with a different body is refused.
Only completed results are stored; an operation that raises leaves no record,
so retrying after an error runs it again (errors change no state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from batchops.dal.idempotency import persistence_layer
from batchops.errors import IdempotencyInProgressError, IdempotencyKeyReusedError
from batchops.observability import logger
from batchops.settings import get_settings

REPLAYED = "replayed"


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, REPLAYED: True}


def run_once(
    *,
    workspace_id: str,
    scope: str,
    key: str,
    payload: Any,
    operation: Callable[[], dict[str, Any]],
    lambda_context: Any = None,
) -> dict[str, Any]:
    """`operation()`'s result, or the stored result of its first run under this key.

    A replayed result carries `"replayed": True`.
    """
    settings = get_settings()
    config = IdempotencyConfig(
        event_key_jmespath="[workspace, scope, key]",
        payload_validation_jmespath="payload",
        expires_after_seconds=settings.idempotency_ttl_seconds,
        response_hook=_mark_replayed,
    )
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)

    done: list[dict[str, Any]] = []

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="request",
        persistence_store=persistence_layer(settings.idempotency_table_name),
        config=config,
    )
    def once(request: dict[str, Any]) -> dict[str, Any]:
        done.append(operation())
        return done[0]

    try:
        result: dict[str, Any] = once(
            request={"workspace": workspace_id, "scope": scope, "key": key, "payload": payload}
        )
    except IdempotencyPersistenceLayerError:
        if not done:
            raise
        # The work is done and stored; only remembering its answer failed. The client gets the
        # real answer; a retry waits for the in-progress record to lapse, then runs again.
        logger().error("Idempotency record not saved", extra={"scope": scope}, exc_info=True)
        return done[0]
    except IdempotencyValidationError:
        raise IdempotencyKeyReusedError("This Idempotency-Key was already used with a different request body") from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyInProgressError(
            "A request with this Idempotency-Key is still in progress; retry shortly"
        ) from None
    return result
