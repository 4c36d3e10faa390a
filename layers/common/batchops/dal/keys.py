"""Every DynamoDB key batchops writes, built in one place.

Every partition key of tenant data starts with `WS#<workspace>`, so a lookup with
another workspace's id cannot find anything. The one exception is the API key
lookup item, found by the key's hash before the workspace is known; it holds
only the hash, ids and timestamps.
"""

from __future__ import annotations

KeyDict = dict[str, str]


def workspace_prefix(workspace_id: str) -> str:
    if "#" in workspace_id or not workspace_id:
        raise ValueError("workspace id must be non-empty and must not contain '#'")
    return f"WS#{workspace_id}"


def workspace(workspace_id: str) -> KeyDict:
    return {"pk": workspace_prefix(workspace_id), "sk": "WORKSPACE"}


def api_key(key_hash: str) -> KeyDict:
    return {"pk": f"APIKEY#{key_hash}", "sk": "APIKEY"}


def api_keys_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's keys."""
    return f"{workspace_prefix(workspace_id)}#APIKEYS"


EVENT_SK = "ENTRY"


def event_entry(workspace_id: str, execution_id: str) -> KeyDict:
    """An entry sent without an idempotencyKey, keyed by the executionId batchops generated for it."""
    return {"pk": f"{workspace_prefix(workspace_id)}#EXEC#{execution_id}", "sk": EVENT_SK}


def event_entry_by_idempotency_key(workspace_id: str, idempotency_key: str) -> KeyDict:
    """An entry sent with an idempotencyKey, keyed by that key: one key can only ever hold one entry
    in a workspace, and a conditional write tells whether it was already there."""
    return {"pk": f"{workspace_prefix(workspace_id)}#EVTKEY#{idempotency_key}", "sk": EVENT_SK}


def event_log_sequence(workspace_id: str) -> KeyDict:
    """The counter eventLogIds are drawn from (the platform's identity column), per workspace."""
    return {"pk": f"{workspace_prefix(workspace_id)}#EVTSEQ", "sk": "SEQ"}


def event_batch(workspace_id: str, batch_id: str) -> str:
    """gsi1pk of the entries of one event-log batch."""
    return f"{workspace_prefix(workspace_id)}#EVTBATCH#{batch_id}"


def event_batch_sort(event_timestamp: str, event_log_id: int) -> str:
    """gsi1sk: eventTimestamps are fixed-width UTC, so the index orders entries by time; equal
    timestamps fall back to eventLogId, the order they were stored in."""
    return f"{event_timestamp}#{event_log_id:016d}"


def operation_job(workspace_id: str, job_id: str) -> str:
    """pk of an operations job (async or transaction): the job item and one item per operation."""
    return f"{workspace_prefix(workspace_id)}#OPJOB#{job_id}"


JOB_SK = "JOB"


def operation_sk(index: int) -> str:
    return f"OP#{index:03d}"


def async_jobs_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's async jobs; gsi1sk is createdAt#jobId (newest last)."""
    return f"{workspace_prefix(workspace_id)}#ASYNCJOBS"


IN_FLIGHT_JOBS = "INFLIGHT#OPJOB"


def in_flight_sort(created_at: str, workspace_id: str, job_id: str) -> str:
    """gsi2sk of an unfinished job: oldest first, so the sweeper reads only what is overdue."""
    return f"{created_at}#{workspace_prefix(workspace_id)}#{job_id}"


def job(workspace_id: str, job_id: str) -> KeyDict:
    return {"pk": f"{workspace_prefix(workspace_id)}#JOB#{job_id}", "sk": "JOB"}


def job_prefix(workspace_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}#JOB#"


def job_name(workspace_id: str, name: str) -> KeyDict:
    """The item that keeps job names unique in a workspace."""
    return {"pk": f"{workspace_prefix(workspace_id)}#JOBNAME#{name}", "sk": "NAME"}


def job_slug(workspace_id: str, slug: str) -> KeyDict:
    """The item that keeps job slugs unique in a workspace (Strait: UNIQUE (project_id, slug)),
    and finds a job by its slug."""
    return {"pk": f"{workspace_prefix(workspace_id)}#JOBSLUG#{slug}", "sk": "SLUG"}


def jobs_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's jobs; gsi1sk is created_at#job_id."""
    return f"{workspace_prefix(workspace_id)}#JOBS"


def run(workspace_id: str, run_id: str) -> KeyDict:
    return {"pk": f"{workspace_prefix(workspace_id)}#RUN#{run_id}", "sk": "RUN"}


RUN_RESULT_SK = "RESULT"


def run_result(workspace_id: str, run_id: str) -> KeyDict:
    """A run's result lives beside the run: payload (256 KB) and result (256 KB) together would
    pass DynamoDB's 400 KB item limit."""
    return {"pk": f"{workspace_prefix(workspace_id)}#RUN#{run_id}", "sk": RUN_RESULT_SK}


def run_prefix(workspace_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}#RUN#"


def runs_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's runs; gsi1sk is created_at#run_id."""
    return f"{workspace_prefix(workspace_id)}#RUNS"


def runs_of_job(workspace_id: str, job_id: str) -> str:
    """gsi3pk listing one job's runs; gsi3sk is created_at#run_id."""
    return f"{workspace_prefix(workspace_id)}#JOB#{job_id}#RUNS"


def run_claim(workspace_id: str, job_id: str, kind: str, digest: str) -> KeyDict:
    """What makes a run unique for its job: an idempotency key, or a payload within the job's
    de-duplication window. Written conditionally, so two triggers cannot both claim it."""
    return {"pk": f"{workspace_prefix(workspace_id)}#RUNCLAIM#{job_id}#{kind}#{digest}", "sk": "CLAIM"}


# Unfinished runs are spread over shards of the sparse gsi2, so a busy system never makes one
# index partition hot; the sweeper reads every shard.
IN_FLIGHT_RUN_SHARDS = 16


def in_flight_runs(shard: int) -> str:
    return f"INFLIGHT#RUN#{shard:02d}"


def in_flight_run_sort(check_at: str, workspace_id: str, run_id: str) -> str:
    """gsi2sk of an unfinished run: when the sweeper should look at it if nothing happened."""
    return f"{check_at}#{workspace_prefix(workspace_id)}#{run_id}"


def batch_operation(workspace_id: str, batch_id: str) -> KeyDict:
    return {"pk": f"{workspace_prefix(workspace_id)}#BATCHOP#{batch_id}", "sk": "BATCHOP"}


def batch_operation_prefix(workspace_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}#BATCHOP#"


def batch_operations_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's bulk-trigger batches; gsi1sk is created_at#batch_id."""
    return f"{workspace_prefix(workspace_id)}#BATCHOPS"


def tracked_event(workspace_id: str, message_id: str) -> KeyDict:
    """A tracked event (seed 004), keyed by its messageId: one item per id, however often sent."""
    return {"pk": f"{workspace_prefix(workspace_id)}#TEVT#{message_id}", "sk": "EVENT"}


def rate_bucket(workspace_id: str, bucket: str) -> KeyDict:
    """A workspace's token bucket (GCRA: one number, the theoretical arrival time)."""
    return {"pk": f"{workspace_prefix(workspace_id)}#RATE#{bucket}", "sk": "BUCKET"}


def tracking_upload(workspace_id: str, upload_id: str) -> KeyDict:
    """A bulk-track upload (a body sent through S3): its status and result counts."""
    return {"pk": f"{workspace_prefix(workspace_id)}#TUPLOAD#{upload_id}", "sk": "UPLOAD"}


# ---------------------------------------------------------------- Batches surface (seed 002)
def batch(workspace_id: str, batch_id: str) -> KeyDict:
    """A batch (POST /v1/batches): its counters live on this item; its jobs share the partition,
    so one Query reads a batch and all its jobs."""
    return {"pk": f"{workspace_prefix(workspace_id)}#BATCH#{batch_id}", "sk": BATCH_SK}


BATCH_SK = "BATCH"
BATCH_JOB_SK_PREFIX = "JOB#"
BATCH_RESULT_SK_PREFIX = "RESULT#"
BATCH_OUTBOX_SK_PREFIX = "OUTBOX#"


def batch_prefix(workspace_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}#BATCH#"


def batch_job(workspace_id: str, batch_id: str, index: int) -> KeyDict:
    return {"pk": batch(workspace_id, batch_id)["pk"], "sk": f"{BATCH_JOB_SK_PREFIX}{index:04d}"}


def batch_job_result(workspace_id: str, batch_id: str, index: int) -> KeyDict:
    """A job's result beside the job: config (256 KB) and result (256 KB) together would pass
    DynamoDB's 400 KB item limit."""
    return {"pk": batch(workspace_id, batch_id)["pk"], "sk": f"{BATCH_RESULT_SK_PREFIX}{index:04d}"}


def batch_outbox(workspace_id: str, batch_id: str, event_key: str) -> KeyDict:
    """A batch event not yet handed to its webhooks: written with the state change that causes
    it, deleted once its deliveries are stored and queued (the batch's outbox)."""
    return {"pk": batch(workspace_id, batch_id)["pk"], "sk": f"{BATCH_OUTBOX_SK_PREFIX}{event_key}"}


def batches_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's batches; gsi1sk is created_at#batch_id."""
    return f"{workspace_prefix(workspace_id)}#BATCHES"


# Unfinished batches, on shards of the sparse gsi2 (beside in-flight runs), sorted by when the
# sweeper should look at them next.
ACTIVE_BATCH_SHARDS = 4


def active_batches(shard: int) -> str:
    return f"ACTIVE#BATCH#{shard:02d}"


def active_batch_sort(check_at: str, workspace_id: str, batch_id: str) -> str:
    return f"{check_at}#{workspace_prefix(workspace_id)}#{batch_id}"


def batch_quota(workspace_id: str) -> KeyDict:
    """The workspace's count of unfinished batches (plan quota: concurrent batches)."""
    return {"pk": f"{workspace_prefix(workspace_id)}#BATCHQUOTA", "sk": "ACTIVE"}


def batch_day(workspace_id: str, day: str) -> KeyDict:
    """Batches created on one UTC day (plan quota: batches per day)."""
    return {"pk": f"{workspace_prefix(workspace_id)}#BATCHDAY#{day}", "sk": "COUNT"}


def job_stats(workspace_id: str) -> KeyDict:
    """Recorded job durations per job type, for estimated_completion."""
    return {"pk": f"{workspace_prefix(workspace_id)}#JOBSTATS", "sk": "STATS"}


def webhook(workspace_id: str, webhook_id: str) -> KeyDict:
    """A workspace webhook subscription (POST /v1/webhooks)."""
    return {"pk": f"{workspace_prefix(workspace_id)}#WEBHOOK#{webhook_id}", "sk": "WEBHOOK"}


def webhook_prefix(workspace_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}#WEBHOOK#"


def webhooks_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's subscriptions; gsi1sk is created_at#webhook_id."""
    return f"{workspace_prefix(workspace_id)}#WEBHOOKS"


def webhook_delivery(workspace_id: str, delivery_id: str) -> KeyDict:
    """One event to one target (a subscription, a batch's own webhook, or an email)."""
    return {"pk": f"{workspace_prefix(workspace_id)}#WHDELIVERY#{delivery_id}", "sk": "DELIVERY"}


def webhook_delivery_prefix(workspace_id: str) -> str:
    return f"{workspace_prefix(workspace_id)}#WHDELIVERY#"


def deliveries_of(workspace_id: str, target: str) -> str:
    """gsi1pk of a target's delivery log (target: a webhook id, or batch:<batch id>);
    gsi1sk is created_at#delivery_id."""
    return f"{workspace_prefix(workspace_id)}#WHDELIVERIES#{target}"
