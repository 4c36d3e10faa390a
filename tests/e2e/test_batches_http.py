"""Batches (seed 002) over real HTTP through the local stack: its SQS pollers run the batch job
worker and the webhook dispatcher, which call a real HTTP server on 127.0.0.1 that verifies every
request's Standard Webhooks signature with the `standardwebhooks` library.

The local stack runs up to BATCHOPS_LOCAL_CONCURRENCY sandboxes (default 5) per function, so
jobs of one window run at once, as on Lambda."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openpyxl
import pytest
from pypdf import PdfReader
from standardwebhooks import Webhook, WebhookVerificationError

from batchops.models.webhooks import BATCH_EVENTS
from tests.e2e.conftest import KEY_A, KEY_B, KEY_BULK
from tests.e2e.harness import RunningStack, wait_for
from tests.job_endpoint import Call, JobEndpoints, Reply, job_endpoints

ACCEPT = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


@pytest.fixture(scope="module")
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as server:
        yield server


def client(stack: RunningStack, key: str = KEY_A) -> httpx.Client:
    return httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def unique(prefix: str) -> str:
    return f"/{prefix}/{uuid.uuid4().hex[:8]}"


def http_job(job_id: str, url: str, body: Any = None) -> dict[str, Any]:
    return {"id": job_id, "type": "http", "config": {"url": url, "body": body or {"job": job_id}}}


def create(http: httpx.Client, jobs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    response = http.post("/v1/batches", json={"name": "e2e", "type": "analysis", "jobs": jobs, **fields})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def get(http: httpx.Client, batch_id: str, **query: Any) -> dict[str, Any]:
    response = http.get(f"/v1/batches/{batch_id}", params=query)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def finished(http: httpx.Client, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    done: dict[str, Any] = wait_for(
        lambda: (b := get(http, batch_id))["status"] not in ("queued", "running") and b,
        timeout=timeout,
        what=f"batch {batch_id} to finish",
    )
    return done


def signed_by(call: Call, secret: str) -> bool:
    try:
        Webhook(secret).verify(call.raw, call.headers)
    except WebhookVerificationError:
        return False
    return True


def deliveries(endpoints: JobEndpoints, path: str, batch_id: str) -> dict[str, Call]:
    """The distinct deliveries (by webhook-id: a redelivery repeats it) about one batch."""
    return {c.headers["webhook-id"]: c for c in endpoints.calls_to(path) if c.body.get("batch_id") == batch_id}


def events(found: dict[str, Call]) -> list[str]:
    return sorted(c.body["event"] for c in found.values())


class WindowWatch:
    """Samples the batch's job items in the table: jobs queued on SQS or running, at most the window."""

    def __init__(self, stack: RunningStack, workspace_id: str, batch_id: str):
        self._dynamodb = stack.client("dynamodb")
        self._pk = f"WS#{workspace_id}#BATCH#{batch_id}"
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def in_flight(self) -> int:
        pages = self._dynamodb.get_paginator("query").paginate(
            TableName="DomainTable",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :job)",
            ExpressionAttributeValues={":pk": {"S": self._pk}, ":job": {"S": "JOB#"}},
        )
        return sum(item["status"]["S"] in ("queued", "running") for page in pages for item in page["Items"])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.in_flight())
            self._stop.wait(0.05)

    def __enter__(self) -> WindowWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_twenty_jobs_keep_a_window_of_three_and_report_in_every_format(
    stack: RunningStack, endpoints: JobEndpoints
) -> None:
    work, note, subscribed = unique("work"), unique("note"), unique("subscribed")
    endpoints.script(work, Reply(200, {"metrics": {"score": 4}, "files": 10}, delay=0.1))
    with client(stack) as http:
        response = http.post("/v1/webhooks", json={"url": endpoints.url(subscribed), "events": list(BATCH_EVENTS)})
        assert response.status_code == 201, response.text
        subscription = response.json()["data"]
        endpoints.verify_with(subscribed, subscription["secret"])

        jobs = [http_job(f"j{n:02d}", endpoints.url(work), {"n": n}) for n in range(20)]
        options = {"max_parallel": 3, "notification": {"webhook": endpoints.url(note)}}
        created = create(http, jobs, options=options)
        batch_id, secret = created["batch_id"], created["signing_secret"]
        assert created["status"] == "queued" and created["jobs"]["total"] == 20
        with WindowWatch(stack, "ws-a", batch_id) as watch:
            done = finished(http, batch_id)
        assert done["status"] == "completed" and done["jobs"]["completed"] == 20
        assert done["progress"]["percentage"] == 100
        # Filled (three released at once) and never more.
        assert watch.samples and max(watch.samples) == 3, watch.samples
        assert 1 <= endpoints.peak(work) <= 3

        # Every job call was the built-in http job's: the batch's secret signed its JSON body.
        calls = endpoints.calls_to(work)
        assert sorted(c.body["n"] for c in calls) == list(range(20))
        assert all(signed_by(c, secret) for c in calls)
        assert len({c.headers["webhook-id"] for c in calls}) == 20

        # Lifecycle webhooks, to the subscription (its own secret) and to notification.webhook
        # (the batch's secret); delivery is asynchronous, through the dispatcher's queue.
        for path in (subscribed, note):
            # Each event is its own SQS message: batch.completed may come before the last
            # job_completed (a standard queue keeps no order), so wait for all of them.
            wait_for(
                lambda path=path: (
                    "batch.completed" in (kinds := events(deliveries(endpoints, path, batch_id)))
                    and kinds.count("batch.job_completed") >= 20
                ),
                timeout=60,
                what=f"batch.completed and 20 job_completed at {path}",
            )
            found = deliveries(endpoints, path, batch_id)
            kinds = events(found)
            assert kinds.count("batch.completed") == 1 and kinds.count("batch.job_completed") == 20
            assert kinds.count("batch.created") == 1 and kinds.count("batch.started") == 1
            progress = sorted(
                c.body["data"]["progress"]["percentage"] for c in found.values() if c.body["event"] == "batch.progress"
            )
            assert progress == [25, 50, 75]
        assert all(c.verified for c in deliveries(endpoints, subscribed, batch_id).values())
        assert all(signed_by(c, secret) for c in deliveries(endpoints, note, batch_id).values())

        log = http.get(f"/v1/webhooks/{subscription['id']}/deliveries")
        assert log.status_code == 200, log.text
        ours = [d for d in log.json()["data"] if d["status"] == "delivered"]
        assert ours and all(d["attempts"] >= 1 and d["last_status_code"] == 200 for d in ours)
        assert http.delete(f"/v1/webhooks/{subscription['id']}").status_code == 204

        check_results(http, batch_id)


def check_results(http: httpx.Client, batch_id: str) -> None:
    response = http.get(f"/v1/batches/{batch_id}/results")
    assert response.status_code == 200, response.text
    results = response.json()["data"]
    assert results["summary"]["jobs_total"] == 20 and results["summary"]["completed"] == 20
    assert results["summary"]["partial"] is False
    assert results["aggregated_metrics"]["metrics.score"] == {
        "count": 20,
        "average": 4.0,
        "min": 4,
        "max": 4,
        "sum": 80,
    }
    assert len(results["job_results"]) == 20
    raw = httpx.get(results["download_links"]["raw_data"], timeout=30)
    assert raw.status_code == 200 and len(raw.json()["job_results"]) == 20, raw.text[:300]

    def exported(fmt: str, **query: str) -> httpx.Response:
        answer = http.get(
            f"/v1/batches/{batch_id}/results", params={"format": fmt, **query}, headers={"Accept": ACCEPT[fmt]}
        )
        assert answer.status_code == 200, answer.text[:300]
        assert answer.headers["Content-Type"].startswith(ACCEPT[fmt].split(";")[0])
        assert answer.headers["Content-Disposition"] == f'attachment; filename="{batch_id}.{fmt}"'
        return answer

    rows = list(csv.reader(io.StringIO(exported("csv", jobs="j00,j07").text)))
    assert rows[0][:5] == ["job_id", "type", "status", "duration_ms", "error"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [("j00", "http", "completed"), ("j07", "http", "completed")]
    assert rows[1][rows[0].index("metrics.score")] == "4"

    sheet = openpyxl.load_workbook(io.BytesIO(exported("xlsx").content), read_only=True).active
    assert sheet is not None
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert table[0][:5] == ["job_id", "type", "status", "duration_ms", "error"]
    assert sorted(row[0] for row in table[1:]) == [f"j{n:02d}" for n in range(20)]

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(exported("pdf").content)).pages)
    assert batch_id in text and "j19" in text


def test_cancel_mid_run_then_retry_the_cancelled_jobs(stack: RunningStack, endpoints: JobEndpoints) -> None:
    slow, marker = unique("slow"), unique("marker")
    endpoints.script(slow, Reply(200, {"ok": True}, delay=1.0))
    with client(stack) as http:
        created = create(http, [http_job(f"j{n}", endpoints.url(slow)) for n in range(6)], options={"max_parallel": 1})
        batch_id = created["batch_id"]
        wait_for(lambda: endpoints.calls_to(slow), timeout=60, what="the first job to start")
        early = http.post(f"/v1/batches/{batch_id}/retry", json={})
        assert (early.status_code, early.json()["code"]) == (409, "BATCH_NOT_FINISHED")

        response = http.request("DELETE", f"/v1/batches/{batch_id}", json={"reason": "changed my mind"})
        assert response.status_code == 200, response.text
        cancelled = response.json()["data"]
        assert cancelled["status"] == "cancelled"
        assert cancelled["jobs_cancelled"] + cancelled["jobs_completed"] == 6 and cancelled["jobs_cancelled"] >= 4
        started = len(endpoints.calls_to(slow))

        # A later batch on the same queue and worker runs to the end; by then a release the
        # cancel missed would have started another job of the cancelled batch.
        endpoints.script(marker, Reply(200, {"ok": True}))
        finished(http, create(http, [http_job("m", endpoints.url(marker))])["batch_id"])
        jobs = WindowWatch(stack, "ws-a", batch_id)
        wait_for(lambda: jobs.in_flight() == 0, timeout=30, what="nothing of the batch in flight")
        assert len(endpoints.calls_to(slow)) == started
        view = get(http, batch_id)
        assert view["status"] == "cancelled" and view["jobs"]["cancelled"] == cancelled["jobs_cancelled"]
        for _ in range(2):  # a client retrying its cancel gets the cancel's answer again
            again = http.request("DELETE", f"/v1/batches/{batch_id}")
            assert (again.status_code, again.json()["data"]) == (200, cancelled)

        endpoints.script(slow, Reply(200, {"ok": True}))
        response = http.post(f"/v1/batches/{batch_id}/retry", json={})
        assert response.status_code == 201, response.text
        retry = response.json()["data"]
        assert retry["batch_id"] == batch_id and retry["jobs_retried"] == cancelled["jobs_cancelled"]
        again_done = finished(http, retry["new_batch_id"])
        assert again_done["status"] == "completed" and again_done["retry_of"] == batch_id
        assert get(http, batch_id)["retried_by"] == [retry["new_batch_id"]]


def test_failed_jobs_retry_into_a_new_linked_batch(stack: RunningStack, endpoints: JobEndpoints) -> None:
    good, bad = unique("good"), unique("bad")
    endpoints.script(bad, Reply(400, {"error": "not today"}))
    with client(stack) as http:
        jobs = [
            http_job("g0", endpoints.url(good)),
            http_job("g1", endpoints.url(good)),
            http_job("b", endpoints.url(bad)),
        ]
        batch_id = create(http, jobs)["batch_id"]
        done = finished(http, batch_id)
        assert done["status"] == "failed" and (done["jobs"]["completed"], done["jobs"]["failed"]) == (2, 1)
        partial = http.get(f"/v1/batches/{batch_id}/results").json()["data"]
        assert [j["status"] for j in sorted(partial["job_results"], key=lambda j: j["id"])] == [
            "failed",
            "completed",
            "completed",
        ]

        refused = http.post(f"/v1/batches/{batch_id}/retry", json={"job_ids": ["g0", "b"]})
        assert (refused.status_code, refused.json()["code"]) == (409, "JOB_SUCCEEDED")

        endpoints.script(bad, Reply(200, {"fixed": True}))
        response = http.post(f"/v1/batches/{batch_id}/retry", json={"max_retries": 1})
        assert response.status_code == 201, response.text
        retry = response.json()["data"]
        assert retry["jobs_retried"] == 1
        new = finished(http, retry["new_batch_id"])
        assert new["status"] == "completed" and new["jobs"]["total"] == 1 and new["retry_of"] == batch_id
        assert get(http, batch_id)["retried_by"] == [retry["new_batch_id"]]
        assert len(endpoints.calls_to(bad)) == 2  # the original attempt and the retry's


def test_free_plan_quotas(stack: RunningStack, endpoints: JobEndpoints) -> None:
    """ws-b is on the free plan: 5 jobs a batch, 1 batch at a time, 3 a day (and 5 requests/s, burst
    10, so this stays at 9 requests)."""
    slow = unique("free")
    endpoints.script(slow, Reply(200, {"ok": True}, delay=3.0))
    with client(stack, KEY_B) as http:
        too_big = http.post(
            "/v1/batches", json={"name": "big", "jobs": [http_job(f"j{n}", endpoints.url(slow)) for n in range(6)]}
        )
        assert (too_big.status_code, too_big.json()["code"]) == (422, "BATCH_SIZE_EXCEEDED")

        one = [http_job("j", endpoints.url(slow))]
        first = create(http, one)
        busy = http.post("/v1/batches", json={"name": "more", "jobs": one})
        assert (busy.status_code, busy.json()["code"]) == (429, "QUOTA_EXCEEDED")
        assert int(busy.headers["Retry-After"]) >= 1

        # Cancelling frees the slot at once; the day allows three.
        assert http.request("DELETE", f"/v1/batches/{first['batch_id']}").status_code == 200
        second = create(http, one)
        assert http.request("DELETE", f"/v1/batches/{second['batch_id']}").status_code == 200
        third = create(http, one)
        assert http.request("DELETE", f"/v1/batches/{third['batch_id']}").status_code == 200
        daily = http.post("/v1/batches", json={"name": "more", "jobs": one})
        assert (daily.status_code, daily.json()["code"]) == (429, "QUOTA_EXCEEDED")
        assert 1 <= int(daily.headers["Retry-After"]) <= 86_400


def test_another_workspace_gets_404_for_every_batch_route(stack: RunningStack, endpoints: JobEndpoints) -> None:
    with client(stack) as http:
        batch_id = create(http, [http_job("j", endpoints.url(unique("mine")))])["batch_id"]
        finished(http, batch_id)
    with client(stack, KEY_BULK) as other:
        for method, path in (
            ("GET", f"/v1/batches/{batch_id}"),
            ("GET", f"/v1/batches/{batch_id}/results"),
            ("DELETE", f"/v1/batches/{batch_id}"),
            ("POST", f"/v1/batches/{batch_id}/retry"),
        ):
            response = other.request(method, path, json={} if method == "POST" else None)
            assert (response.status_code, response.json()["code"]) == (404, "BATCH_NOT_FOUND"), path
        listed = other.get("/v1/batches", params={"per_page": 100}).json()["data"]
        assert batch_id not in {b["batch_id"] for b in listed}
