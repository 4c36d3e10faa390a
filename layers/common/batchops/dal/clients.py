"""boto3 clients, created on first use and replaceable in tests.

botocore honours AWS_ENDPOINT_URL itself, which is how the local stack points
every client at moto without a code path of its own.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_lock = threading.Lock()
_clients: dict[str, Any] = {}
# Standard retry mode backs off on throttling; adaptive would add client-side rate limiting we don't need.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10)
# Presigned S3 forms and links must be SigV4 (the only signature new regions accept).
_SERVICE_CONFIG = {"s3": _CONFIG.merge(Config(signature_version="s3v4"))}


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is None:
        with _lock:
            found = _clients.get(service)
            if found is None:
                config = _SERVICE_CONFIG.get(service, _CONFIG)
                found = boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
                _clients[service] = found
    return found


def dynamodb() -> Any:
    return client("dynamodb")


def set_client(service: str, value: Any) -> None:
    """Inject a client (a stub, or one bound to another endpoint)."""
    with _lock:
        _clients[service] = value


def reset_clients() -> None:
    with _lock:
        _clients.clear()
