"""`client.batches`: the Batches document's calls under its SDK's names, against respx: paths,
methods, queries and bodies; the envelope unwrapped into typed models that also read as the
document's dicts; file results as bytes or written to disk; a 303 followed to S3 without the API
key; iteration over every page; waiting."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from batchops_client import AsyncBatchopsClient, AuthenticationError, NotFoundError, WaitTimeout
from batchops_client.models.batches import Batch, CreatedBatch
from tests.unit.client.conftest import API, query, sent

JOBS = [{"id": "job_1", "type": "analysis", "config": {"rules": ["complexity"]}}]
CREATED = {"batch_id": "batch_abc", "name": "Q3", "status": "queued", "signing_secret": "whsec_x"}


def ok(data, status: int = 200, **extra) -> httpx.Response:
    return httpx.Response(status, json={"success": True, "data": data, **extra})


def batch(status: str, percentage: int, **more) -> dict:
    return {"batch_id": "batch_abc", "name": "Q3", "status": status, "progress": {"percentage": percentage}, **more}


def test_create_posts_only_the_given_fields_and_reads_as_model_and_dict(sdk, api):
    route = api.post("/v1/batches").mock(return_value=ok(CREATED, 201))
    created = sdk.batches.create("Q3", JOBS, type="analysis", priority="high", options={"max_parallel": 5})
    assert isinstance(created, CreatedBatch) and created.batch_id == "batch_abc"
    # The seed's Python example reads the answer as a dict.
    assert created["batch_id"] == "batch_abc" and created["signing_secret"] == "whsec_x"
    assert created.to_dict() == CREATED
    assert sent(route.calls.last.request) == {
        "name": "Q3",
        "jobs": JOBS,
        "type": "analysis",
        "priority": "high",
        "options": {"max_parallel": 5},
    }


def test_get_status_sends_booleans_and_quotes_the_id(sdk, api):
    route = api.route(method="GET", path__startswith="/v1/batches/").mock(return_value=ok(batch("running", 65)))
    status = sdk.batches.get_status("batch_abc", include_jobs=True, job_status="failed")
    assert isinstance(status, Batch) and status["progress"]["percentage"] == 65 and status.progress.percentage == 65
    sdk.batches.get("a/b")
    first, second = (call.request for call in route.calls)
    assert query(first) == {"include_jobs": ["true"], "job_status": ["failed"]}
    assert second.url.raw_path.startswith(b"/v1/batches/a%2Fb?") and query(second) == {"include_jobs": ["false"]}


def test_list_is_one_typed_page_and_iterate_walks_them_all(sdk, api):
    def page(number: int, ids: list[str]) -> httpx.Response:
        pagination = {"page": number, "per_page": 2, "total_pages": 2, "total_items": 3}
        return ok([{"batch_id": i, "name": i, "status": "completed"} for i in ids], pagination=pagination)

    route = api.get("/v1/batches").mock(side_effect=[page(1, ["a", "b"]), page(1, ["a", "b"]), page(2, ["c"])])
    listed = sdk.batches.list(status="completed", per_page=2, sort="created_at")
    assert [b.batch_id for b in listed.data] == ["a", "b"] and listed.pagination.total_items == 3
    assert query(route.calls[0].request) == {"status": ["completed"], "per_page": ["2"], "sort": ["created_at"]}
    assert [b.batch_id for b in sdk.batches.iterate(status="completed", per_page=2)] == ["a", "b", "c"]
    assert [query(call.request)["page"] for call in route.calls[1:]] == [["1"], ["2"]]


def test_json_results_are_typed(sdk, api):
    route = api.get("/v1/batches/batch_abc/results").mock(
        return_value=ok({"batch_id": "batch_abc", "status": "completed", "summary": {"projects_analyzed": 2}})
    )
    results = sdk.batches.get_results("batch_abc", include_raw=True, jobs=["job_1", "job_2"])
    assert results.summary == {"projects_analyzed": 2}
    request = route.calls.last.request
    assert query(request) == {"format": ["json"], "include_raw": ["true"], "jobs": ["job_1,job_2"]}
    assert request.headers["Accept"] == "application/json"


def test_file_results_are_bytes_asked_for_by_their_type_or_written_to_output(sdk, api, tmp_path):
    csv = b"job_id,quality_score\njob_1,8.5\n"
    route = api.get("/v1/batches/batch_abc/results").respond(200, content=csv, headers={"Content-Type": "text/csv"})
    assert sdk.batches.results("batch_abc", format="csv") == csv
    assert route.calls.last.request.headers["Accept"] == "text/csv"
    written = sdk.batches.get_results("batch_abc", format="csv", output=tmp_path / "reports")
    assert written == tmp_path / "reports" / "batch_abc.csv" and written.read_bytes() == csv
    named = sdk.batches.get_results("batch_abc", format="csv", output=tmp_path / "q3.csv")
    assert named == tmp_path / "q3.csv" and named.read_bytes() == csv


def test_an_id_cannot_steer_the_written_file_out_of_the_folder(sdk, api, tmp_path):
    api.get(url__regex=r".*/results.*").respond(200, content=b"x")
    written = sdk.batches.get_results("../../etc", format="pdf", output=tmp_path)
    assert written.parent == tmp_path


def test_a_303_is_followed_to_s3_without_the_api_key(sdk, api):
    s3 = "https://bucket.s3.amazonaws.com/exports/batch_abc.xlsx?X-Amz-Signature=sig"
    api.get("/v1/batches/batch_abc/results").respond(303, headers={"Location": s3}, json={"data": {"download_url": s3}})
    download = api.route(url=s3).respond(200, content=b"PK\x03\x04xlsx")
    assert sdk.batches.get_results("batch_abc", format="xlsx") == b"PK\x03\x04xlsx"
    assert "Authorization" not in download.calls.last.request.headers


def test_a_303_without_location_falls_back_to_the_download_url(sdk, api):
    s3 = "https://bucket.s3.amazonaws.com/exports/batch_abc.pdf?sig=1"
    api.get("/v1/batches/batch_abc/results").mock(return_value=ok({"download_url": s3}, 303))
    api.route(url=s3).respond(200, content=b"%PDF-1.7")
    assert sdk.batches.get_results("batch_abc", format="pdf") == b"%PDF-1.7"


def test_a_refused_download_is_a_typed_error(sdk, api):
    s3 = "https://bucket.s3.amazonaws.com/x.csv?sig=expired"
    api.get("/v1/batches/batch_abc/results").respond(303, headers={"Location": s3})
    api.route(url=s3).respond(403, text="<Error><Code>AccessDenied</Code></Error>")
    with pytest.raises(AuthenticationError) as refused:
        sdk.batches.get_results("batch_abc", format="csv")
    assert refused.value.status == 403 and "AccessDenied" in refused.value.body


def test_an_unknown_format_is_refused_before_sending(sdk, api):
    with pytest.raises(ValueError, match="format"):
        sdk.batches.get_results("batch_abc", format="docx")
    assert not api.calls


def test_cancel_sends_its_body_only_when_given(sdk, api):
    cancelled = {"batch_id": "batch_abc", "status": "cancelled", "jobs_cancelled": 3, "credits_refunded": 25}
    route = api.delete("/v1/batches/batch_abc").mock(return_value=ok(cancelled))
    answer = sdk.batches.cancel("batch_abc", reason="Emergency deployment", cancel_running_jobs=False)
    assert answer.jobs_cancelled == 3 and answer.credits_refunded == 25
    sdk.batches.cancel("batch_abc")
    first, second = (call.request for call in route.calls)
    assert sent(first) == {"reason": "Emergency deployment", "cancel_running_jobs": False}
    assert second.content == b""


def test_retry_posts_the_jobs_to_retry(sdk, api):
    retried = {"batch_id": "batch_abc", "jobs_retried": 2, "new_batch_id": "batch_def"}
    route = api.post("/v1/batches/batch_abc/retry").mock(return_value=ok(retried, 201))
    assert sdk.batches.retry(
        "batch_abc", job_ids=["job_3", "job_5"], max_retries=2, retry_delay_minutes=5
    ).new_batch_id == ("batch_def")
    sdk.batches.retry("batch_abc")
    first, second = (call.request for call in route.calls)
    assert sent(first) == {"job_ids": ["job_3", "job_5"], "max_retries": 2, "retry_delay_minutes": 5}
    assert sent(second) == {}


def test_wait_polls_until_a_final_status_and_reports_progress(sdk, api, waits):
    api.get("/v1/batches/batch_abc").mock(
        side_effect=[ok(batch("queued", 0)), ok(batch("running", 50)), ok(batch("completed", 100))]
    )
    progress: list[int] = []
    done = sdk.batches.wait_for_completion(
        "batch_abc", poll_interval=5.0, on_progress=lambda p: progress.append(p.percentage)
    )
    assert done.status == "completed" and done.succeeded
    assert progress == [0, 50, 100] and waits == [5.0, 5.0]


@pytest.mark.parametrize("final", ["failed", "cancelled", "timed_out"])
def test_wait_stops_at_every_final_status(sdk, api, final):
    route = api.get("/v1/batches/batch_abc").mock(side_effect=[ok(batch("running", 40)), ok(batch(final, 40))])
    done = sdk.batches.wait_for_completion("batch_abc")
    assert done.status == final and done.finished and not done.succeeded and route.call_count == 2


def test_wait_gives_up_at_the_deadline_with_the_last_state(sdk, api, waits):
    route = api.get("/v1/batches/batch_abc").mock(return_value=ok(batch("running", 10)))
    with pytest.raises(WaitTimeout, match="batch batch_abc still running after 10 s") as late:
        sdk.batches.wait_for_completion("batch_abc", timeout=10.0, poll_interval=4.0)
    # Polls at 0, 4, 8 and (a shortened last sleep) 10 seconds, then stops.
    assert waits == [4.0, 4.0, 2.0] and route.call_count == 4
    assert isinstance(late.value, TimeoutError) and late.value.last.progress.percentage == 10


def test_the_async_client_iterates_and_waits():
    async def scenario() -> tuple[list[str], str, int]:
        async def no_sleep(seconds: float) -> None:
            return None

        with respx.mock(base_url=API) as api:
            pagination = {"page": 1, "per_page": 100, "total_pages": 1, "total_items": 1}
            api.get("/v1/batches").mock(
                return_value=ok([{"batch_id": "a", "name": "a", "status": "queued"}], pagination=pagination)
            )
            api.get("/v1/batches/a").mock(side_effect=[ok(batch("running", 50)), ok(batch("failed", 50))])
            api.get("/v1/batches/none").respond(404, json={"error": "Batch none not found", "code": "BATCH_NOT_FOUND"})
            async with AsyncBatchopsClient("bo_test", API, sleep=no_sleep) as sdk:
                ids = [b.batch_id async for b in sdk.batches.iterate()]
                done = await sdk.batches.wait_for_completion("a", poll_interval=0.01)
                try:
                    await sdk.batches.get_status("none")
                except NotFoundError as error:
                    return ids, done.status, error.status
        raise AssertionError("404 expected")

    assert asyncio.run(scenario()) == (["a"], "failed", 404)
