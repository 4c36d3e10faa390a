"""The batchops Python SDK (`BatchopsClient`, `AsyncBatchopsClient`) and the `batchops` CLI."""

from batchops_client._client import AsyncBatchopsClient, BatchopsClient
from batchops_client._core import Retry, RetryPolicy
from batchops_client._version import __version__
from batchops_client.errors import (
    APIConnectionError,
    AuthenticationError,
    BatchopsError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
    WaitTimeout,
    WebhookVerificationError,
)
from batchops_client.resources.events import event_log_entry, new_correlation_id, new_span_id, new_trace_id
from batchops_client.resources.webhooks import verify_webhook

__all__ = [
    "APIConnectionError",
    "AsyncBatchopsClient",
    "AuthenticationError",
    "BatchopsClient",
    "BatchopsError",
    "ConfigurationError",
    "ConflictError",
    "NotFoundError",
    "RateLimitError",
    "Retry",
    "RetryPolicy",
    "ServerError",
    "ValidationError",
    "WaitTimeout",
    "WebhookVerificationError",
    "__version__",
    "event_log_entry",
    "new_correlation_id",
    "new_span_id",
    "new_trace_id",
    "verify_webhook",
]
