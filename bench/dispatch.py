"""Operations dispatch overhead (issue 14: <= 200 us per operation).

`PYTHONPATH=layers/common .venv/bin/python -m bench.dispatch` runs POST /v1/events as a sync
batch's operations do, through `api.dispatch.InProcessTarget` (synthetic API Gateway event,
Powertools resolver, validation, error
mapping), with the route's service stubbed (`services.event_log.create_one` answers at once), and
subtracts the time of calling the same route function directly with an already validated entry.
What is left is the price of going through the route table: building the event, routing, parsing
and validating the body, the handler's context, serializing the answer and reading it back. The
target is built per batch, as `POST /v1/batch` does (its first call builds the resolver).

Printed: the median over ROUNDS rounds of (through the target - direct) / OPERATIONS, in us of
CPU (process time: on a shared machine wall time counts other processes' turns).

`PYTHONPATH=layers/common .venv/bin/python -m bench.dispatch fanout` measures the conditional-PutItem pool of
`dal/tracking.py` (PUT_THREADS): real botocore, its HTTP send stubbed with a 5 ms round trip.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

OPERATIONS = 1_000
ROUNDS = 5


def _environment() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "bench")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines every 100 operations


def dispatch_overhead_us(operations: int = OPERATIONS, rounds: int = ROUNDS) -> tuple[float, float, float]:
    """(median overhead per operation, median through the target, median direct), in us."""
    _environment()
    from batchops.api.context import handling
    from batchops.api.dispatch import InProcessTarget
    from batchops.api.event_log import create_event
    from batchops.models.common import Caller, Plan
    from batchops.models.event_log import CreateEventResponse, EventLogEntry
    from batchops.models.operations import Operation
    from batchops.services import event_log

    answer = CreateEventResponse(executionIds=["e-1"], correlationId="0" * 32)
    event_log.create_one = lambda workspace_id, entry: answer
    caller = Caller(workspace_id="ws-bench", key_id="k-bench", plan=Plan.FREE)
    body: dict[str, Any] = {
        "correlationId": "0" * 32,
        "accountId": "a-1",
        "traceId": "t-1",
        "applicationId": "bench",
        "targetSystem": "bench",
        "originatingSystem": "bench",
        "processName": "bench",
        "eventType": "STEP",
        "eventStatus": "SUCCESS",
        "identifiers": {},
        "summary": "bench",
        "result": "ok",
        "eventTimestamp": "2026-01-01T00:00:00Z",
    }
    ops = [Operation(id=f"op-{n}", method="POST", path="/v1/events", body=body) for n in range(operations)]
    entry = EventLogEntry.model_validate(body)
    status, first = InProcessTarget().call(caller, ops[0])
    assert status == 201, first  # the route really ran, not an error path

    through: list[float] = []
    direct: list[float] = []
    for _ in range(rounds):
        started = time.process_time()
        target = InProcessTarget()
        for op in ops:
            target.call(caller, op)
        through.append((time.process_time() - started) / operations * 1e6)
        started = time.process_time()
        with handling({}, None, caller):
            for _ in ops:
                create_event(entry)
        direct.append((time.process_time() - started) / operations * 1e6)
    overheads = [t - d for t, d in zip(through, direct, strict=True)]
    return statistics.median(overheads), statistics.median(through), statistics.median(direct)


def fanout(round_trip: float = 0.005, events: int = 2_000) -> list[tuple[int, float, float]]:
    """(threads, puts per second, CPU ms per put) for conditional PutItems of tracked events."""
    _environment()
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    from batchops.dal import clients, tracking

    class _Body:
        def stream(self, **_: Any) -> Any:
            yield b"{}"

    def send(request: Any, **_: Any) -> AWSResponse:
        time.sleep(round_trip)
        headers = HTTPHeaders()
        headers["x-amzn-requestid"] = "bench"
        return AWSResponse(request.url, 200, headers, _Body())

    client = boto3.session.Session().client("dynamodb", region_name="us-east-1")
    # A before-send handler that returns a response replaces the HTTP send (botocore's contract;
    # its stubs type every handler as returning None).
    client.meta.events.register("before-send.dynamodb.*", send)  # type: ignore[arg-type]
    clients.set_client("dynamodb", client)
    texts = [(f"m-{n}", f'{{"event":"signup","properties":{{"n":{n}}}}}') for n in range(events)]
    repository = tracking.TrackedEventRepository("bench")
    repository.insert_new("ws", texts[:20], expires_at=1, now=0)  # warm: botocore's first request
    found = []
    configured = tracking.PUT_THREADS
    try:
        for threads in (1, 2, 4, 8, 12, 16):
            tracking.PUT_THREADS = threads
            wall, cpu = time.perf_counter(), time.process_time()
            repository.insert_new("ws", texts, expires_at=1, now=0)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            found.append((threads, events / wall, cpu / events * 1000))
    finally:
        tracking.PUT_THREADS = configured
    return found


def main() -> None:
    if sys.argv[1:] == ["fanout"]:
        for threads, rate, cpu in fanout():
            print(f"threads={threads:2d}  puts/s={rate:6.0f}  cpu/put={cpu:.2f} ms")
        return
    overhead, through, direct = dispatch_overhead_us()
    print(
        f"dispatch overhead: {overhead:.0f} us/operation "
        f"(through InProcessTarget {through:.0f} us, direct {direct:.0f} us)"
    )


if __name__ == "__main__":
    main()
