"""Python SDK and the `batchops` CLI."""

from batchops_client.sdk import ApiError, BatchopsClient

__all__ = ["ApiError", "BatchopsClient"]
