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


def event_entry(workspace_id: str, execution_id: str) -> KeyDict:
    # Keyed by executionId: the id is unique per workspace by construction, and an
    # entry is one item (one write, nothing to keep consistent).
    return {"pk": f"{workspace_prefix(workspace_id)}#EXEC#{execution_id}", "sk": "ENTRY"}


def event_batch(workspace_id: str, batch_id: str) -> str:
    """gsi1pk of the entries of one event-log batch."""
    return f"{workspace_prefix(workspace_id)}#EVTBATCH#{batch_id}"


def event_batch_sort(timestamp: str, received_ns: int, position: int) -> str:
    """gsi1sk: timestamps are fixed-width UTC, so the index returns entries in time order; equal
    timestamps fall back to the order of receipt (request time, then place in the request)."""
    return f"{timestamp}#{received_ns:020d}#{position:05d}"


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


def jobs_of_workspace(workspace_id: str) -> str:
    """gsi1pk listing a workspace's jobs; gsi1sk is created_at#job_id."""
    return f"{workspace_prefix(workspace_id)}#JOBS"
