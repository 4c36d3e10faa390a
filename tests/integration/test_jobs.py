"""Jobs (seed 001) CRUD through the real handlers on moto."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.strait_bodies import strait_job
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


def test_names_may_be_any_printable_text():
    status, _, job = create({**JOB, "name": "Send Welcome Email — v2 (EU)"})
    assert status == 201 and job["name"] == "Send Welcome Email — v2 (EU)"


def test_create_shows_the_signing_secret_once_and_applies_defaults():
    status, _, job = create(JOB)
    assert status == 201
    assert job["signing_secret"].startswith("whsec_")
    assert job["project_id"] == "ws-a" and job["id"].startswith("job_")
    assert (job["method"], job["timeout_secs"], job["max_attempts"], job["retry_backoff_secs"]) == ("POST", 30, 3, 2)
    assert (job["dedup_window_secs"], job["enabled"], job["headers"]) == (0, True, {})
    # Strait's fields every job has (domain/types.go Job).
    assert (job["slug"], job["paused"], job["version"]) == (None, False, 1)
    assert job["created_by"] == job["updated_by"] == "apikey:key_test"
    assert "description" not in job and "tags" not in job  # unset settings are left out, as in Strait
    status, _, read = get(job["id"])
    assert status == 200 and "signing_secret" not in read
    assert read == {k: v for k, v in job.items() if k != "signing_secret"}


# Strait's documented create body, and a description.
STRAIT_JOB = strait_job(description="Sends the welcome email")


def test_a_strait_job_body_is_accepted_and_returned():
    status, _, job = create(STRAIT_JOB)
    assert status == 201, job
    assert job["project_id"] == "ws-a"
    assert {k: job[k] for k in STRAIT_JOB} == STRAIT_JOB
    _, _, read = get(job["id"])
    assert {k: read[k] for k in STRAIT_JOB} == STRAIT_JOB
    # Without project_id the caller's workspace is meant.
    body = {k: v for k, v in STRAIT_JOB.items() if k != "project_id"}
    status, _, second = create({**body, "name": "Second", "slug": "second"})
    assert (status, second["project_id"]) == (201, "ws-a")


def test_every_strait_job_setting_is_accepted_and_stored():
    settings = {
        "group_id": "g1",
        "cron": "*/5 * * * *",
        "payload_schema": {"type": "object", "properties": {"n": {"type": "number", "minimum": 0.5}}},
        "fallback_endpoint_url": "https://fallback.example.com/hook",
        "max_concurrency_per_key": 2,
        "execution_window_cron": "0 9-17 * * 1-5",
        "timezone": "Europe/Paris",
        "run_ttl_secs": 600,
        "retry_delays_secs": [1, 5, 30],
        "retry_priority_boost": 2,
        "environment_id": "env_prod",
        "version_policy": "pin",
        "result_schema": {"type": "object", "nested": [[[[{"deep": True}]]]]},
        "cron_overlap_policy": "skip",
        "debounce_window_secs": 0,
        "batch_window_secs": 30,
        "batch_max_size": 100,
        "queue_name": "emails",
        "poison_pill_threshold": 3,
        "on_complete_trigger_workflow": "wf1",
        "on_complete_trigger_job": "job2",
        "on_complete_payload_mapping": {"x": "$.result.x"},
        "on_failure_trigger_job": "job3",
        "on_failure_trigger_workflow": "wf2",
        "on_failure_payload_mapping": {"y": 1.25},
        "webhook_url": "https://hooks.example.com/done",
    }
    status, _, job = create({**STRAIT_JOB, **settings})
    assert status == 201, job
    _, _, read = get(job["id"])
    assert {k: read[k] for k in settings} == settings
    # Write-only secrets never come back.
    status, _, secret = create({**JOB, "name": "secret", "endpoint_signing_secret": "s" * 16})
    assert status == 201 and "endpoint_signing_secret" not in get(secret["id"])[2]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "x" * 129}, "slug"),
        ({"name": "x" * 256}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"description": "x" * 2001}, "description"),
        ({"execution_mode": "worker"}, "execution_mode"),
        ({"retry_strategy": "random"}, "retry_strategy"),
        ({"retry_delays_secs": [0]}, "retry_delays_secs"),
        ({"tags": {f"k{n}": "v" for n in range(21)}}, "tags"),
        ({"cron": "* * *"}, "cron"),
        ({"queue_name": "has space"}, "queue_name"),
        ({"endpoint_signing_secret": "short"}, "endpoint_signing_secret"),
        ({"payload_schema": {"blob": "x" * 40_000}}, "payload_schema"),
        ({"run_ttl_secs": -1}, "run_ttl_secs"),
        ({"fallback_endpoint_url": "http://10.0.0.1/"}, "fallback_endpoint_url"),
    ],
)
def test_strait_settings_are_validated(change, field):
    status, _, body = create({**STRAIT_JOB, **change})
    assert status == 422 and body["details"][0]["field"] == field, body


def test_another_workspaces_project_id_is_404_everywhere():
    # DESIGN §5: another workspace's id is a 404, never a 403; for the caller it does not exist.
    missing = (404, "PROJECT_NOT_FOUND", "Project ws-b not found")
    status, _, body = create({**STRAIT_JOB, "project_id": "ws-b"})
    assert (status, body["code"], body["error"]) == missing
    _, _, job = create(STRAIT_JOB)
    status, _, body = update(job["id"], {"project_id": "ws-b", "enabled": False})
    assert (status, body["code"], body["error"]) == missing
    assert get(job["id"])[2]["enabled"] is True  # nothing changed
    status, _, body = listing(project_id="ws-b")
    assert (status, body["code"], body["error"]) == missing
    event = api_event("get_job", path_params={"jobID": job["id"]}, query={"project_id": "ws-b"})
    assert invoke(GET, event)[2]["code"] == "PROJECT_NOT_FOUND"
    # The caller's own project is the default, and may be named.
    assert update(job["id"], {"project_id": "ws-a", "enabled": False})[2]["enabled"] is False
    assert [j["id"] for j in listing(project_id="ws-a")[2]["data"]] == [job["id"]]


def test_slugs_are_unique_per_workspace_and_found_by_listing():
    _, _, job = create(STRAIT_JOB)
    status, _, body = create({**STRAIT_JOB, "name": "Other name"})
    assert (status, body["code"]) == (409, "JOB_SLUG_TAKEN")
    assert create({**STRAIT_JOB, "project_id": "ws-b"}, workspace="ws-b")[0] == 201
    _, _, found = listing(slug="send-welcome-email")
    assert [j["id"] for j in found["data"]] == [job["id"]] and found["has_more"] is False
    assert listing(slug="nope")[2] == {"data": [], "has_more": False}
    # A new slug frees the old one; deleting the job frees its slug.
    assert update(job["id"], {"slug": "welcome"})[2]["slug"] == "welcome"
    assert listing(slug="send-welcome-email")[2]["data"] == []
    assert create({**STRAIT_JOB, "name": "Another"})[0] == 201
    assert update(job["id"], {"slug": "send-welcome-email"})[2]["code"] == "JOB_SLUG_TAKEN"
    assert delete(job["id"])[0] == 204
    assert create({**STRAIT_JOB, "name": "Third", "slug": "welcome"})[0] == 201


def test_listing_by_tag():
    _, _, growth = create(STRAIT_JOB)
    _, _, core = create({**JOB, "name": "core", "tags": {"team": "core"}})
    create({**JOB, "name": "untagged"})
    assert [j["id"] for j in listing(tag_key="team")[2]["data"]] == [core["id"], growth["id"]]
    assert [j["id"] for j in listing(tag_key="team", tag_value="growth")[2]["data"]] == [growth["id"]]
    assert listing(tag_value="growth")[0] == 422


def test_patch_counts_versions_and_null_clears_optional_settings():
    _, _, job = create(STRAIT_JOB)
    status, _, changed = update(job["id"], {"description": None, "tags": {"team": "core"}, "name": None})
    assert status == 200
    assert "description" not in changed and changed["tags"] == {"team": "core"}
    assert changed["name"] == "Send Welcome Email"  # batchops' own fields are never cleared
    assert (changed["version"], changed["updated_by"]) == (2, "apikey:key_test")
    assert update(job["id"], {"backwards_compatible": True})[2]["version"] == 3


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
    [
        {"timeout_secs": 0},
        {"timeout_secs": 901},
        {"max_attempts": 11},
        {"dedup_window_secs": 86401},
        {"colour": 1},
    ],
)
def test_bad_settings_are_422(change):
    assert create({**JOB, **change})[0] == 422


def test_a_lone_surrogate_in_a_setting_is_400_malformed_json():
    # no route can take such a body (it has no UTF-8 form): refused whole, before validation
    status, _, body = create({**JOB, "name": "bad\ud800"})
    assert (status, body["code"]) == (400, "MALFORMED_JSON")


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
    assert (first["has_more"], third["has_more"]) == (True, False) and "next_cursor" not in third
    assert all("signing_secret" not in j for j in first["data"])
    assert listing(workspace="ws-b")[2] == {"data": [], "has_more": False}
    assert listing(limit=0)[0] == 422
    assert len(listing(limit=101)[2]["data"]) == 5  # more than 100 is served 100, as Strait does
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


def test_a_rename_racing_a_delete_leaves_no_name_or_slug_behind(monkeypatch):
    """The delete reads the job, a rename (new name and slug) lands, then the delete writes: it is
    conditional on the version it read, so it does not delete the old job item and orphan the new
    name and slug items (which would answer 409 for those names forever); it reads again and
    deletes the job as it now is."""
    from batchops.dal.jobs import JobRepository

    _, _, job = create(STRAIT_JOB)
    read = threading.Event()
    renamed = threading.Event()
    real_delete = JobRepository.delete

    def delete_after_the_rename(self, workspace_id, seen):
        if not renamed.is_set():
            read.set()
            assert renamed.wait(30)
        return real_delete(self, workspace_id, seen)

    monkeypatch.setattr(JobRepository, "delete", delete_after_the_rename)
    with ThreadPoolExecutor(max_workers=1) as pool:
        deleting = pool.submit(delete, job["id"])
        assert read.wait(30)
        status, _, renamed_job = update(job["id"], {"name": "Renamed", "slug": "renamed"})
        assert status == 200, renamed_job
        renamed.set()
        assert deleting.result()[0] == 204
    assert get(job["id"])[0] == 404
    # Both names and both slugs are free again.
    for name, slug in (("Renamed", "renamed"), (STRAIT_JOB["name"], STRAIT_JOB["slug"])):
        status, _, body = create({**STRAIT_JOB, "name": name, "slug": slug})
        assert status == 201, body


def test_two_creates_racing_for_one_slug_make_one_job():
    barrier = threading.Barrier(4)

    def racer(n):
        barrier.wait(10)
        return create({**STRAIT_JOB, "name": f"Racer {n}"})

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(racer, range(4)))
    assert sorted(status for status, _, _ in outcomes) == [201, 409, 409, 409]
    assert {body["code"] for status, _, body in outcomes if status == 409} == {"JOB_SLUG_TAKEN"}
    assert len(listing()[2]["data"]) == 1


@pytest.mark.parametrize("change", ["create", "update"])
def test_a_transaction_conflict_is_tried_again_not_a_500(monkeypatch, change):
    """DynamoDB cancels a transaction that collides with another one on the same items
    (TransactionConflict, e.g. two creates of one slug at once); that is tried again."""
    from botocore.exceptions import ClientError

    from batchops.dal import clients

    _, _, job = create(JOB)
    dynamodb = clients.dynamodb()
    real = dynamodb.transact_write_items
    conflicts = []

    def conflicting_once(**request):
        if not conflicts:
            conflicts.append(request)
            reasons = [{"Code": "TransactionConflict"} for _ in request["TransactItems"]]
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return real(**request)

    monkeypatch.setattr(dynamodb, "transact_write_items", conflicting_once)
    if change == "create":
        status, _, body = create({**JOB, "name": "second", "slug": "second"})
        assert status == 201, body
    else:
        status, _, body = update(job["id"], {"name": "renamed"})
        assert (status, body["name"]) == (200, "renamed")
    assert len(conflicts) == 1
