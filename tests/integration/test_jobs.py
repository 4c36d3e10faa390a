"""Jobs (seed 001) CRUD through the real handlers on moto."""

from __future__ import annotations

import pytest

from tests.support import api_event, invoke, load_function

pytestmark = pytest.mark.usefixtures("aws")

CREATE = load_function("create_job")
LIST = load_function("list_jobs")
GET = load_function("get_job")
UPDATE = load_function("update_job")
DELETE = load_function("delete_job")
BATCH = load_function("batch")


def create(body, workspace="ws-a"):
    return invoke(CREATE, api_event("create_job", body=body, workspace=workspace))


def get(job_id, workspace="ws-a"):
    return invoke(GET, api_event("get_job", path_params={"jobID": job_id}, workspace=workspace))


def update(job_id, body, workspace="ws-a"):
    return invoke(UPDATE, api_event("update_job", body=body, path_params={"jobID": job_id}, workspace=workspace))


def delete(job_id, workspace="ws-a"):
    return invoke(DELETE, api_event("delete_job", path_params={"jobID": job_id}, workspace=workspace))


def listing(workspace="ws-a", **query):
    return invoke(LIST, api_event("list_jobs", query={k: str(v) for k, v in query.items()}, workspace=workspace))


JOB = {"name": "send-welcome", "endpoint_url": "https://hooks.example.com/welcome"}


def test_create_shows_the_signing_secret_once_and_applies_defaults():
    status, _, job = create(JOB)
    assert status == 201
    assert job["signing_secret"].startswith("whsec_")
    assert job["project_id"] == "ws-a" and job["id"].startswith("job_")
    assert (job["method"], job["timeout_secs"], job["max_attempts"], job["retry_backoff_secs"]) == ("POST", 30, 3, 2)
    assert (job["dedup_window_secs"], job["enabled"], job["headers"]) == (0, True, {})
    status, _, read = get(job["id"])
    assert status == 200 and "signing_secret" not in read
    assert read == {k: v for k, v in job.items() if k != "signing_secret"}


def test_names_are_unique_per_workspace():
    create(JOB)
    status, _, body = create(JOB)
    assert (status, body["code"]) == (409, "JOB_NAME_TAKEN")
    assert create(JOB, workspace="ws-b")[0] == 201


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/x", "INVALID_URL"),
        ("not a url", "INVALID_URL"),
        ("http://169.254.169.254/latest/meta-data/", "UNSAFE_URL"),
        ("http://10.0.0.5/hook", "UNSAFE_URL"),
        ("http://127.0.0.1:9000/hook", "UNSAFE_URL"),
        ("http://[::ffff:127.0.0.1]/", "UNSAFE_URL"),
    ],
)
def test_unsafe_or_malformed_urls_are_422(url, code):
    status, _, body = create({**JOB, "endpoint_url": url})
    assert (status, body["code"]) == (422, code)


def test_local_mode_allows_loopback(monkeypatch):
    from batchops.settings import reset_settings

    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")
    reset_settings()
    assert create({**JOB, "endpoint_url": "http://127.0.0.1:9000/hook"})[0] == 201
    assert create({**JOB, "name": "zero", "endpoint_url": "http://0.0.0.0:9000/hook"})[0] == 422


@pytest.mark.parametrize(
    "change",
    [{"timeout_secs": 0}, {"timeout_secs": 901}, {"max_attempts": 11}, {"dedup_window_secs": 86401}, {"colour": 1}],
)
def test_bad_settings_are_422(change):
    assert create({**JOB, **change})[0] == 422


def test_patch_changes_fields_rechecks_the_url_and_moves_the_name():
    _, _, job = create(JOB)
    status, _, changed = update(job["id"], {"enabled": False, "name": "renamed", "max_attempts": 5})
    assert status == 200
    assert (changed["enabled"], changed["name"], changed["max_attempts"]) == (False, "renamed", 5)
    assert changed["updated_at"] >= job["updated_at"]
    # the old name is free again, the new one is taken
    assert create(JOB)[0] == 201
    assert create({**JOB, "name": "renamed"})[2]["code"] == "JOB_NAME_TAKEN"
    status, _, body = update(job["id"], {"endpoint_url": "http://192.168.0.10/"})
    assert (status, body["code"]) == (422, "UNSAFE_URL")
    assert update(job["id"], {"name": "send-welcome"})[2]["code"] == "JOB_NAME_TAKEN"


def test_delete_and_isolation():
    _, _, job = create(JOB)
    for call in (
        lambda: get(job["id"], "ws-b"),
        lambda: update(job["id"], {"enabled": False}, "ws-b"),
        lambda: delete(job["id"], "ws-b"),
    ):
        status, _, body = call()
        assert (status, body["code"]) == (404, "JOB_NOT_FOUND")
    assert delete(job["id"])[0] == 204
    assert get(job["id"])[0] == 404
    assert delete(job["id"])[0] == 404
    assert create(JOB)[0] == 201  # the name is free once the job is gone


def test_list_newest_first_with_cursor():
    ids = [create({**JOB, "name": f"job-{i}"})[2]["id"] for i in range(5)]
    _, _, first = listing(limit=2)
    _, _, second = listing(limit=2, cursor=first["next_cursor"])
    _, _, third = listing(limit=2, cursor=second["next_cursor"])
    assert [j["id"] for page in (first, second, third) for j in page["data"]] == ids[::-1]
    assert third["next_cursor"] is None
    assert all("signing_secret" not in j for j in first["data"])
    assert listing(workspace="ws-b")[2] == {"data": [], "next_cursor": None}
    assert listing(limit=0)[0] == 422 and listing(limit=101)[0] == 422
    assert listing(cursor="garbage")[0] == 422


def test_operations_can_call_the_job_routes():
    status, _, body = invoke(
        BATCH,
        api_event(
            "batch",
            body={
                "operations": [
                    {"id": "make", "method": "POST", "path": "/v1/jobs", "body": JOB},
                    {"id": "off", "method": "PATCH", "path": "/v1/jobs/${make.body.id}", "body": {"enabled": False}},
                    {"id": "gone", "method": "DELETE", "path": "/v1/jobs/${make.body.id}"},
                ]
            },
        ),
    )
    assert status == 200
    assert [r["status"] for r in body["results"]] == [201, 200, 204]
    assert body["results"][1]["body"]["enabled"] is False
