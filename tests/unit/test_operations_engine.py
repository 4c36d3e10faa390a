"""The operations engine without AWS: references, summaries, validation, modes, journal."""

from __future__ import annotations

import re
import threading
import time

import pytest

from batchops.errors import PayloadTooLargeError, ValidationFailedError
from batchops.models.common import Caller, Plan
from batchops.models.operations import BatchRequest, Operation, OperationResult, Summary
from batchops.services import operations, references
from batchops.services.operations import Deadline
from batchops.services.references import UnresolvedReferenceError

CALLER = Caller(workspace_id="ws", key_id="k", plan=Plan.PRO)


def result(op_id, status=201, body=None):
    return OperationResult(id=op_id, status=status, body=body)


EARLIER = {
    "create": result("create", body={"executionIds": ["e1", "e2"], "count": 2, "nested": {"ok": True}}),
    "broken": result("broken", status=422, body={"error": "bad", "code": "VALIDATION_FAILED"}),
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${create.body.executionIds.1}", "e2"),
        ("${create.body.count}", 2),
        ("${create.body.nested}", {"ok": True}),
        ("id-${create.body.count}-${create.body.executionIds.0}", "id-2-e1"),
        ("x ${create.body.nested} y", 'x {"ok": true} y'),
        ({"a": ["${create.body.count}", {"b": "${create.body.executionIds.0}"}]}, {"a": [2, {"b": "e1"}]}),
        ("no references here", "no references here"),
        (7, 7),
    ],
)
def test_resolve(value, expected):
    assert references.resolve(value, EARLIER) == expected


def test_whole_body_reference():
    assert references.resolve("${create.body}", EARLIER)["count"] == 2


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("${unknown.body.x}", "no earlier operation 'unknown'"),
        ("${broken.body.code}", "did not succeed (422)"),
        ("${create.body.executionIds.5}", "has no '5'"),
        ("${create.body.missing}", "has no 'missing'"),
    ],
)
def test_unresolved(value, reason):
    with pytest.raises(UnresolvedReferenceError, match=re.escape(reason)):
        references.resolve(value, EARLIER)


def test_path_references_become_url_encoded_text():
    assert references.resolve_path("/v1/items/${create.body.count}", EARLIER) == "/v1/items/2"
    assert references.resolve_path("${create.body.count}", EARLIER) == "2"
    slashy = {"a": result("a", body={"id": "x/y?z"})}
    assert references.resolve_path("/v1/items/${a.body.id}", slashy) == "/v1/items/x%2Fy%3Fz"


@pytest.mark.parametrize("text", ["Hello ${name}", "${create.status}", "cost: ${price}", "${}"])
def test_other_dollar_brace_text_is_not_a_reference(text):
    assert references.resolve(text, EARLIER) == text
    assert list(references.references_in(text)) == []


def test_references_in_and_target_id():
    found = list(references.references_in(["/v1/${a.body.x}", {"k": ["${b.body}", "plain"]}]))
    assert found == ["a.body.x", "b.body"]
    assert references.target_id("op.with.dots.body.x") == "op.with.dots"


def test_summary_counts():
    results = [
        result("a", 201),
        result("b", 204),
        result("c", 422, {"code": "VALIDATION_FAILED"}),
        result("d", 424, {"error": "Skipped: a previous operation failed", "code": "SKIPPED"}),
        result("e", 424, {"code": "UNRESOLVED_REFERENCE"}),
        result("f", 504, {"code": "TIMEOUT"}),
    ]
    assert Summary.of(results) == Summary(total=6, succeeded=2, failed=3, skipped=1)


class RecordingTarget:
    """Runs nothing: answers from a script and records what it was asked, for mode semantics."""

    def __init__(self, statuses=None, delay=0.0):
        self.statuses = statuses or {}
        self.delay = delay
        self.calls = []
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def call(self, caller, operation):
        with self.lock:
            self.calls.append(operation)
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
        return self.statuses.get(operation.id, 201), {"echo": operation.body}

    def check(self, caller, operation):
        return 200, {"valid": True}

    def allowed_paths(self):
        return ["/v1/x"]


def request(n, **options):
    return BatchRequest(
        operations=[Operation(id=f"o{i}", method="POST", path="/v1/x", body={"i": i}) for i in range(n)], **options
    )


def test_sequential_stops_after_a_failure_when_asked():
    target = RecordingTarget({"o1": 500})
    response = operations.run(CALLER, request(4, continueOnError=False), target, Deadline.after(5))
    assert [r.status for r in response.results] == [201, 500, 424, 424]
    assert [op.id for op in target.calls] == ["o0", "o1"]


def test_parallel_runs_concurrently_on_a_bounded_pool():
    target = RecordingTarget(delay=0.05)
    response = operations.run(CALLER, request(20, parallel=True), target, Deadline.after(10))
    assert [r.id for r in response.results] == [f"o{i}" for i in range(20)]
    assert 1 < target.peak <= operations.PARALLEL_WORKERS


class FlagDeadline:
    """A deadline the test passes at a chosen moment (no clock involved)."""

    def __init__(self) -> None:
        self.flag = threading.Event()

    def remaining(self) -> float:
        return 0.0 if self.flag.is_set() else 0.01  # the collector looks again every 10 ms

    def passed(self) -> bool:
        return self.flag.is_set()


def wait_for(condition, seconds=10.0):
    """Poll with a deadline (threads of the pool finish on their own time)."""
    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up, "condition not reached"
        time.sleep(0.005)


def test_parallel_deadline_reports_running_operations_as_interrupted_not_timed_out():
    deadline = FlagDeadline()
    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    class Target(RecordingTarget):
        def call(self, caller, operation):
            with lock:
                started.append(operation.id)
                if len(started) == 3:
                    deadline.flag.set()  # the deadline passes while all three run
            release.wait(30)
            return 201, {}

    try:
        response = operations.run(CALLER, request(3, parallel=True), Target(), deadline)
    finally:
        release.set()
    # All three had started: their effect is unknown, so none may be reported as "did not run".
    assert [(r.status, r.body["code"]) for r in response.results] == [(500, "INTERRUPTED")] * 3


def test_parallel_deadline_never_starts_an_operation_afterwards_nor_misreports_running_ones():
    workers = operations.PARALLEL_WORKERS
    deadline = FlagDeadline()
    release = threading.Event()
    started: list[str] = []
    finished: list[str] = []
    lock = threading.Lock()

    class Target(RecordingTarget):
        def call(self, caller, operation):
            with lock:
                started.append(operation.id)
            if operation.id == "o0":
                # o0 ends exactly at the deadline, once every other thread of the pool is busy:
                # its thread is then free to pick the next queued operation.
                wait_for(lambda: len(started) == workers)
                deadline.flag.set()
                return 201, {"first": True}
            release.wait(30)
            with lock:
                finished.append(operation.id)
            return 201, {"late": operation.id}

    journal = MemoryJournal()
    try:
        response = operations.run(CALLER, request(workers + 1, parallel=True), Target(), deadline, journal)
    finally:
        release.set()  # let the stragglers go whatever happened
    codes = [(r.status, (r.body or {}).get("code")) for r in response.results]
    assert codes[0] == (201, None)
    # Running when the deadline passed: they may take effect, so they say so.
    assert codes[1:workers] == [(500, "INTERRUPTED")] * (workers - 1)
    assert "still running" in response.results[1].body["error"]
    # Not started by the deadline: reported as not run, and never started afterwards.
    assert codes[workers] == (504, "TIMEOUT")
    wait_for(lambda: len(finished) == len(started) - 1)
    assert f"o{workers}" not in started
    # The stragglers' late results do not replace what the answer said.
    assert all(journal.recorded[n].body["code"] == "INTERRUPTED" for n in range(1, workers))
    assert journal.recorded[workers].body["code"] == "TIMEOUT"


def test_sequential_deadline_reports_the_rest_as_timeouts():
    target = RecordingTarget(delay=0.15)
    response = operations.run(CALLER, request(4), target, Deadline.after(0.2))
    statuses = [r.status for r in response.results]
    assert statuses[0] == 201 and statuses[-1] == 504
    assert len(target.calls) < 4


class MemoryJournal:
    def __init__(self, recorded=None, claimed=()):
        self.recorded = dict(recorded or {})
        self.claimed = set(claimed)

    def begin(self, index):
        if index in self.recorded:
            return self.recorded[index]
        if index in self.claimed:
            return operations.interrupted(Operation(id=f"o{index}", method="POST", path="/v1/x"))
        self.claimed.add(index)
        return None

    def finish(self, index, outcome):
        self.recorded[index] = outcome


def test_journal_makes_a_second_run_reuse_results_and_never_rerun_a_claimed_operation():
    journal = MemoryJournal(recorded={0: result("o0", body={"first": True})}, claimed={1})
    target = RecordingTarget()
    response = operations.run(CALLER, request(3), target, Deadline.after(5), journal)
    assert [op.id for op in target.calls] == ["o2"]
    assert response.results[0].body == {"first": True}
    assert response.results[1].status == 500 and response.results[1].body["code"] == "INTERRUPTED"


def test_validate_limits():
    with pytest.raises(PayloadTooLargeError):
        operations.validate(request(1), 5 * 1024 * 1024 + 1)
    big = BatchRequest(operations=[Operation(id="b", method="POST", path="/v1/x", body={"x": "y" * 102_400})])
    with pytest.raises(ValidationFailedError, match="Operation body must not exceed 100KB"):
        operations.validate(big, 1000)
    with_ref = BatchRequest(
        operations=[
            Operation(id="a", method="POST", path="/v1/x"),
            Operation(id="b", method="post", path="/v1/${a.body.id}"),
        ],
        parallel=True,
    )
    with pytest.raises(ValidationFailedError, match="parallel"):
        operations.validate(with_ref, 1000)
    assert with_ref.operations[1].method == "POST"


def test_large_results_are_kept_compressed_and_oversized_ones_keep_their_status():
    import secrets

    from batchops.dal.operation_jobs import MAX_RESULT_BYTES, pack_result, unpack_result

    compressible = result("big", body={"ids": [f"exec-{i:06d}" for i in range(50_000)]})
    assert len(compressible.model_dump_json()) > 400 * 1024
    assert unpack_result(pack_result(compressible)) == compressible

    random_body = result("huge", status=201, body={"blob": secrets.token_hex(MAX_RESULT_BYTES)})
    kept = unpack_result(pack_result(random_body))
    assert kept.status == 201 and kept.body["code"] == "RESULT_TOO_LARGE"
