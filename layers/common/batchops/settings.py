"""Typed settings, read from the environment on first use (never at import)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATCHOPS_", frozen=True, extra="ignore")

    table_name: str = "DomainTable"
    idempotency_table_name: str = "IdempotencyTable"
    work_queue_url: str = ""
    run_queue_url: str = ""
    # Runs of priority 5 and above (models/jobs.py URGENT_RUN_PRIORITY) go through their own queue.
    run_urgent_queue_url: str = ""
    tracking_queue_url: str = ""
    # Tracked events are kept this long (DynamoDB TTL on each event).
    tracking_retention_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    # Bodies too large for the API arrive through this bucket (POST /v1/bulk-track/uploads).
    tracking_upload_bucket: str = ""
    tracking_upload_queue_url: str = ""
    transaction_state_machine_arn: str = ""
    # Synchronous batch routes must answer before API Gateway's integration timeout (29 s by
    # default); operations unfinished by then are reported 504 TIMEOUT, never dropped.
    http_deadline_ms: int = Field(default=28_000, gt=0)
    # A claimed operation without a result is declared interrupted only once its claim is older
    # than any run could last (the worker's 90 s timeout, with room); before that it is in flight.
    claim_stale_seconds: int = Field(default=180, gt=0)
    # A job still unfinished this long after creation can no longer finish: 5 deliveries x the
    # queue's 540 s visibility timeout is 45 minutes; transactions end within a minute.
    job_stale_after_seconds: int = Field(default=3600, gt=0)
    # The work queue's maxReceiveCount: the last delivery of a failing job marks it FAILED.
    job_max_receives: int = Field(default=5, gt=0)
    # Async jobs and their operation records are kept this long (DynamoDB TTL).
    job_retention_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    # trigger-bulk accepts 1-500 items; a deployment may lower the ceiling, not raise it past the
    # documented 500 (the OpenAPI document states 500).
    bulk_trigger_max_items: int = Field(default=500, ge=1, le=500)
    # A queued run nothing has touched for this long gets its message sent again by the sweeper
    # (a crash between storing a run and queueing it, or a message lost to the DLQ); duplicates
    # are harmless, every run step being a conditional write.
    run_recheck_seconds: int = Field(default=3600, gt=0)
    # Batches surface (seed 002): job queues (urgent/high jobs have their own), the webhook
    # delivery queue, the bucket of result exports, and the sender of notification emails.
    batch_job_queue_url: str = ""
    batch_urgent_job_queue_url: str = ""
    webhook_queue_url: str = ""
    exports_bucket: str = ""
    email_sender: str = "batchops@example.com"
    # The webhook queue's maxReceiveCount: the last failed attempt marks a delivery failed and
    # leaves its message to SQS's redrive into the DLQ.
    webhook_max_receives: int = Field(default=8, gt=0)
    # First webhook retry delay; each further retry doubles it (full jitter), Retry-After wins.
    webhook_retry_base_seconds: int = Field(default=10, gt=0)
    # Presigned download links of result exports stay valid this long.
    export_link_seconds: int = Field(default=3600, gt=0)
    stage: str = "local"
    # Local mode (the no-Docker stack and tests) relaxes outbound-target rules; template.yaml never sets it.
    local_mode: bool = False

    # Bodies our functions accept. API Gateway refuses > 10 MiB itself; Lambda's synchronous
    # payload limit is 6 MiB, so anything larger never reaches us on AWS.
    max_body_bytes: int = Field(default=6 * MIB, gt=0)
    # How long an Idempotency-Key's first response is replayed.
    idempotency_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    # Retries of BatchWriteItem's UnprocessedItems before an item is reported as failed.
    batch_write_max_attempts: int = Field(default=8, gt=0)
    # last_used_at of an API key is refreshed at most this often (one write per key per interval).
    key_last_used_resolution_seconds: int = Field(default=300, ge=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()
