"""Strait's documented job create body (its docs' apps/docs/examples/requests/create-http-job.json),
with batchops' test workspace `ws-a` as the project: what Strait's clients send, shared by the
integration and end-to-end tests of the Jobs surface."""

from __future__ import annotations

from typing import Any

STRAIT_CREATE_JOB: dict[str, Any] = {
    "project_id": "ws-a",
    "name": "Send Welcome Email",
    "slug": "send-welcome-email",
    "execution_mode": "http",
    "endpoint_url": "https://jobs.example.com/strait/send-welcome-email",
    "timeout_secs": 60,
    "max_attempts": 5,
    "retry_strategy": "exponential",
    "max_concurrency": 10,
    "rate_limit_max": 100,
    "rate_limit_window_secs": 60,
    "tags": {"team": "growth", "tier": "production"},
    "default_run_metadata": {"service": "signup"},
}


def strait_job(**fields: Any) -> dict[str, Any]:
    """The documented body with `fields` changed or added."""
    return {**STRAIT_CREATE_JOB, **fields}
