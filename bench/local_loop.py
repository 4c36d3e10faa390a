"""The local loop's targets (issue 14): `python -m bench.local_loop`.

Starts the local stack as the e2e tests do (`tests.e2e.harness.start_stack`: `python -m
batchops_local` on template.yaml, free ports) and prints three wall-clock times:

1. a 200-job Batches batch (http jobs to a fast endpoint on 127.0.0.1) on the fresh stack, from
   the POST to a final status (target <= 20 s);
2. 10,000 tracked events sent with messageIds through /v1/bulk-track (10 requests of 1,000),
   from the first POST until every one of them is readable through GET /v1/track/events/{id}
   (target <= 5 s): the clock stops once the tracking queue is drained and a sample of ids (every
   100th and the last 100 sent) reads back; then all 10,000 are looked up in the table, untimed,
   so a lost event fails the run instead of hiding behind the sample;
3. a 200-job batch again, now with 20,000 more items in the table (target <= 30 s): tracked
   events of another workspace, written straight into the table with BatchWriteItem.

Each step runs on the same stack, in that order. `--concurrency` sets BATCHOPS_LOCAL_CONCURRENCY.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from batchops.dal import keys
from batchops.dal.items import serialize
from tests.e2e.harness import RunningStack, start_stack, wait_for
from tests.job_endpoint import JobEndpoints, job_endpoints

WORKSPACE = "ws-bench"
KEY = "bo_bench_local_loop_enterprise_key_01"
EVENTS = 10_000
EVENTS_PER_REQUEST = 1_000
JOBS = 200
OTHER_ITEMS = 20_000
TARGETS = {"batch_fresh": 20.0, "tracked_readable": 5.0, "batch_with_20k_items": 30.0}


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float
    detail: str

    def line(self) -> str:
        target = TARGETS[self.name]
        verdict = "ok" if self.seconds <= target else "MISSED"
        return f"{self.name:<22} {self.seconds:8.2f} s  (target <= {target:.0f} s: {verdict})  {self.detail}"


def run_batch(http: httpx.Client, endpoints: JobEndpoints, name: str) -> Timing:
    path = f"/fast/{uuid.uuid4().hex[:8]}"
    jobs = [
        {"id": f"j{n}", "type": "http", "config": {"url": endpoints.url(path), "body": {"n": n}}} for n in range(JOBS)
    ]
    started = time.monotonic()
    response = http.post("/v1/batches", json={"name": "bench", "type": "analysis", "jobs": jobs})
    response.raise_for_status()
    batch_id = response.json()["data"]["batch_id"]

    def done() -> dict[str, Any] | None:
        data: dict[str, Any] = http.get(f"/v1/batches/{batch_id}").json()["data"]
        return data if data["status"] not in ("queued", "running") else None

    # Every 0.5 s, as a client would: GET /v1/batches/{id} reads all 200 job items, and at 0.1 s
    # the polling itself was a large part of moto's work (profiled with py-spy).
    final = wait_for(done, 900, interval=0.5, what=f"batch {batch_id}")
    seconds = time.monotonic() - started
    calls = len(endpoints.calls_to(path))
    return Timing(
        name, seconds, f"status={final['status']} endpoint calls={calls} peak concurrent={endpoints.peak(path)}"
    )


def queue_drained(stack: RunningStack, names: tuple[str, ...]) -> bool:
    sqs = stack.client("sqs")
    for name in names:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if any(value != "0" for value in attributes.values()):
            return False
    return True


def readable(http: httpx.Client, message_id: str) -> bool:
    response = http.get(f"/v1/track/events/{message_id}")
    if response.status_code not in (200, 404):
        response.raise_for_status()
    return response.status_code == 200


def event(n: int, message_id: str) -> dict[str, Any]:
    return {"event": "bench", "properties": {"n": n}, "timestamp": "2026-01-01T00:00:00Z", "messageId": message_id}


def track(stack: RunningStack, http: httpx.Client, name: str) -> Timing:
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}-{n}" for n in range(EVENTS)]
    bodies = [
        [event(n, ids[n]) for n in range(start, start + EVENTS_PER_REQUEST)]
        for start in range(0, EVENTS, EVENTS_PER_REQUEST)
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        for response in pool.map(lambda body: http.post("/v1/bulk-track", json=body), bodies):
            response.raise_for_status()
    sent = time.monotonic() - started
    sample = ids[::100] + ids[-100:]
    wait_for(lambda: queue_drained(stack, ("TrackingQueue",)), 900, interval=0.05, what="the tracking queue to drain")
    with ThreadPoolExecutor(4) as pool:
        for message_id in sample:
            wait_for(lambda m=message_id: readable(http, m), 60, interval=0.05, what=f"event {message_id}")  # type: ignore[misc]
    seconds = time.monotonic() - started
    missing = EVENTS - stored_count(stack, ids)
    if missing:
        raise SystemExit(f"{missing} of {EVENTS} tracked events were never stored")
    return Timing(name, seconds, f"accepted in {sent:.2f} s; all {EVENTS} stored")


def stored_count(stack: RunningStack, ids: list[str]) -> int:
    """How many of the events are in the table (BatchGetItem: 10,000 GETs through the gateway
    took minutes, as long as the rest of the bench)."""
    dynamodb = stack.client("dynamodb")
    found = 0
    for start in range(0, len(ids), 100):
        wanted = [serialize(keys.tracked_event(WORKSPACE, m)) for m in ids[start : start + 100]]
        request: dict[str, Any] = {"DomainTable": {"Keys": wanted, "ProjectionExpression": "pk"}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            found += len(response["Responses"].get("DomainTable", []))
            request = response.get("UnprocessedKeys") or {}
    return found


def seed(stack: RunningStack, count: int) -> None:
    """`count` tracked events of another workspace, as the tracking worker stores them."""
    dynamodb = stack.client("dynamodb")
    run = uuid.uuid4().hex[:8]
    for start in range(0, count, 25):
        puts = [
            {
                "PutRequest": {
                    "Item": serialize({**keys.tracked_event("ws-other", f"{run}-{n}"), "event": "seed", "n": n})
                }
            }
            for n in range(start, min(start + 25, count))
        ]
        request: dict[str, Any] = {"DomainTable": puts}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_loop", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=None, help="BATCHOPS_LOCAL_CONCURRENCY for the stack")
    parser.add_argument("--skip-tracking", action="store_true", help="only the two batches")
    args = parser.parse_args()
    env = {"BATCHOPS_LOCAL_API_KEYS": f"{WORKSPACE}:enterprise:{KEY}", "BATCHOPS_LOCAL_SCHEDULE_SCALE": "0.1"}
    if args.concurrency is not None:
        env["BATCHOPS_LOCAL_CONCURRENCY"] = str(args.concurrency)
    workdir = Path(tempfile.mkdtemp(prefix="bench-local-loop-"))
    stack = start_stack(workdir, env)
    timings: list[Timing] = []
    try:
        with (
            job_endpoints() as endpoints,
            httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as http,
        ):
            timings.append(run_batch(http, endpoints, "batch_fresh"))
            print(timings[-1].line(), flush=True)
            if not args.skip_tracking:
                timings.append(track(stack, http, "tracked_readable"))
                print(timings[-1].line(), flush=True)
            # Written directly (the tracking worker's pace is step 2's measure, not this one's).
            seed(stack, OTHER_ITEMS)
            timings.append(run_batch(http, endpoints, "batch_with_20k_items"))
            print(timings[-1].line(), flush=True)
    finally:
        stack.stop(signal.SIGINT)
        print(f"stack logs: {workdir}", flush=True)
    return 0 if all(t.seconds <= TARGETS[t.name] for t in timings) else 1


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    raise SystemExit(main())
