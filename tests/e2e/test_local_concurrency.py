"""The local stack runs several sandboxes of one function at once, up to BATCHOPS_LOCAL_CONCURRENCY
(lowered by ReservedConcurrentExecutions), each a process of its own: concurrent API requests to
one function overlap and keep their own module state, and the SQS pollers invoke a Batches
worker as many times at once as the batch's max_parallel lets jobs run."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import KEY_BULK
from tests.e2e.harness import RunningStack, start_stack, wait_for
from tests.job_endpoint import Reply, job_endpoints

HERE = Path(__file__).resolve().parent
CONCURRENCY = 3


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("concurrency-stack"),
        {"BATCHOPS_LOCAL_CONCURRENCY": str(CONCURRENCY)},
        template=HERE / "concurrency_stack" / "template.yaml",
    )
    try:
        yield running
    finally:
        assert running.stop(signal.SIGTERM) == 0, running.logs()


def together(stack: RunningStack, path: str, count: int, barrier: Path, wait: float) -> list[dict[str, Any]]:
    """`count` requests sent at once; each waits in its sandbox until `count` have arrived (or `wait` s)."""
    barrier.mkdir()

    def one(n: int) -> dict[str, Any]:
        query = {"token": f"t{n}", "barrier": str(barrier), "parties": str(count), "wait": str(wait)}
        response = httpx.get(f"{stack.api}{path}", params=query, timeout=60)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = json.loads(response.text)
        assert answer["token"] == f"t{n}", "another request's state leaked into this sandbox"
        return answer

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_requests_run_in_sandboxes_of_their_own(small_stack, tmp_path):
    first = together(small_stack, "/state", CONCURRENCY, tmp_path / "first", wait=15)
    # Each met the others at the barrier: all were running at once, each in its own process,
    # each the first invocation of its sandbox.
    assert [a["met"] for a in first] == [True] * CONCURRENCY
    assert max(a["peak"] for a in first) == CONCURRENCY
    assert len({a["pid"] for a in first}) == CONCURRENCY
    assert [a["invocations"] for a in first] == [1] * CONCURRENCY
    # The same sandboxes serve the next round: started on demand, kept, and no more than the setting.
    second = together(small_stack, "/state", CONCURRENCY, tmp_path / "second", wait=15)
    assert {a["pid"] for a in second} == {a["pid"] for a in first}
    assert [a["invocations"] for a in second] == [2] * CONCURRENCY


def test_more_requests_than_the_setting_wait_for_a_sandbox(small_stack, tmp_path):
    answers = together(small_stack, "/state", CONCURRENCY + 1, tmp_path / "over", wait=2)
    # CONCURRENCY ran at once, and the first of them waited out the barrier: the last ran only once
    # a sandbox was free.
    assert max(a["peak"] for a in answers) == CONCURRENCY
    assert not all(a["met"] for a in answers)
    assert len({a["pid"] for a in answers}) == CONCURRENCY


def test_reserved_concurrency_lowers_the_setting(small_stack, tmp_path):
    answers = together(small_stack, "/reserved", 2, tmp_path / "reserved", wait=1)
    # One sandbox: the first waited alone until its wait ran out, the second came after it.
    assert [a["peak"] for a in answers] == [1, 1]
    assert sorted(a["met"] for a in answers) == [False, True]
    assert len({a["pid"] for a in answers}) == 1


def test_a_batch_runs_max_parallel_jobs_at_once(stack):
    """The job worker's poller invokes up to the function's concurrency (5 by default) at once."""
    with (
        job_endpoints() as endpoints,
        httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {KEY_BULK}"}, timeout=60) as http,
    ):
        path = f"/slow/{uuid.uuid4().hex[:8]}"
        # Slow enough that the five released together are all still being served when the last arrives.
        endpoints.script(path, Reply(200, {"ok": True}, delay=3))
        jobs = [{"id": f"j{n}", "type": "http", "config": {"url": endpoints.url(path)}} for n in range(10)]
        body = {"name": "parallel", "type": "analysis", "jobs": jobs, "options": {"max_parallel": 5}}
        created = http.post("/v1/batches", json=body)
        assert created.status_code == 201, created.text
        batch_id = created.json()["data"]["batch_id"]
        done = wait_for(
            lambda: (
                (b := http.get(f"/v1/batches/{batch_id}").json()["data"])["status"] not in ("queued", "running") and b
            ),
            timeout=120,
            what="the batch to finish",
        )
        assert done["status"] == "completed"
        assert len(endpoints.calls_to(path)) == 10
        assert endpoints.peak(path) == 5
