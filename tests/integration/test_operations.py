"""Operations surface (seed 003), sync modes, through the real handlers on moto."""

from __future__ import annotations

import json

import pytest

from tests.support import api_event, invoke, load_function
from tests.support import log_entry as event
from tests.support import operation as op

pytestmark = pytest.mark.usefixtures("aws")

BATCH = load_function("batch")
DRY_RUN = load_function("batch_dry_run")
LIMITS = load_function("batch_limits")
GET_EVENTS = load_function("get_event_batch")


def post(module, name, body, workspace="ws-a"):
    return invoke(module, api_event(name, body=body, workspace=workspace))


def test_sequential_results_in_order_with_summary():
    status, _, body = post(
        BATCH,
        "batch",
        {
            "operations": [
                op("one", body=event()),
                op("many", "/v1/events/batch", body={"events": [event("d")], "batchId": "ops-b"}),
                op("bad", body={"eventStatus": "SUCCESS"}),
            ]
        },
    )
    assert status == 200
    assert [(r["id"], r["status"]) for r in body["results"]] == [("one", 201), ("many", 201), ("bad", 422)]
    one = body["results"][0]["body"]
    assert list(one) == ["success", "executionIds", "correlationId"]
    assert one["success"] is True and len(one["executionIds"]) == 1
    assert one["correlationId"] == event()["correlationId"]
    assert body["results"][2]["body"]["code"] == "VALIDATION_FAILED"
    assert body["summary"] == {"total": 3, "succeeded": 2, "failed": 1, "skipped": 0}


def test_operations_behave_like_the_direct_call_in_the_callers_workspace():
    post(BATCH, "batch", {"operations": [op("b", "/v1/events/batch", body={"events": [event()], "batchId": "mine"})]})
    mine = invoke(GET_EVENTS, api_event("get_event_batch", path_params={"batchId": "mine"}, workspace="ws-a"))
    theirs = invoke(GET_EVENTS, api_event("get_event_batch", path_params={"batchId": "mine"}, workspace="ws-b"))
    assert mine[0] == 200 and theirs[0] == 404


def test_continue_on_error_false_skips_the_rest_with_424():
    _, _, body = post(
        BATCH,
        "batch",
        {
            "operations": [op("ok", body=event()), op("bad", body={}), op("later", body=event())],
            "continueOnError": False,
        },
    )
    assert [r["status"] for r in body["results"]] == [201, 422, 424]
    assert body["results"][2]["body"] == {"error": "Skipped: a previous operation failed", "code": "SKIPPED"}
    assert body["summary"] == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}


def test_parallel_keeps_request_order():
    operations = [op(f"op{i}", body=event(f"c{i}")) for i in range(12)]
    _, _, body = post(BATCH, "batch", {"operations": operations, "parallel": True})
    assert [r["id"] for r in body["results"]] == [f"op{i}" for i in range(12)]
    assert [r["body"]["correlationId"] for r in body["results"]] == [event(f"c{i}")["correlationId"] for i in range(12)]
    assert body["summary"]["succeeded"] == 12


def test_unknown_path_is_a_404_result_and_wrong_method_a_405_result():
    _, _, body = post(
        BATCH,
        "batch",
        {
            "operations": [
                op("nowhere", "/v1/nothing", body={}),
                op("wrong", "/v1/events", method="DELETE"),
                op("nested", "/v1/batch", body={"operations": []}),
                op("fine", body=event()),
            ]
        },
    )
    assert [r["status"] for r in body["results"]] == [404, 405, 404, 201]
    assert body["results"][1]["body"]["code"] == "METHOD_NOT_ALLOWED"


def test_authorization_header_is_dropped_and_idempotency_key_applies_per_operation():
    ops = [
        op("a", body=event(), headers={"Authorization": "Bearer bo_someone_else_000000000", "Idempotency-Key": "k1"}),
        op("b", body=event(), headers={"Idempotency-Key": "k1"}),
    ]
    _, _, body = post(BATCH, "batch", {"operations": ops})
    assert [r["status"] for r in body["results"]] == [201, 201]
    # the same key and body: the second is a replay of the first, not a second entry
    assert body["results"][0]["body"] == body["results"][1]["body"]


def test_references_use_earlier_results():
    _, _, body = post(
        BATCH,
        "batch",
        {
            "operations": [
                op("create", "/v1/events/batch", body={"events": [event("first")], "batchId": "refs"}),
                op(
                    "follow",
                    body=event(
                        "${create.body.correlationIds.0}",
                        "SUCCESS",
                        summary="after ${create.body.executionIds.0} in ${create.body.batchId}",
                    ),
                ),
            ]
        },
    )
    assert [r["status"] for r in body["results"]] == [201, 201]
    assert body["results"][1]["body"]["correlationId"] == event("first")["correlationId"]


@pytest.mark.parametrize(
    "reference",
    ["${missing.body.x}", "${later.body.executionId}", "${failed.body.executionId}", "${create.body.nothere}"],
)
def test_unresolved_references_fail_that_operation_with_424(reference):
    _, _, body = post(
        BATCH,
        "batch",
        {
            "operations": [
                op("create", body=event()),
                op("failed", body={}),
                op("use", body=event(reference)),
                op("later", body=event()),
            ]
        },
    )
    use = body["results"][2]
    assert use["status"] == 424 and use["body"]["code"] == "UNRESOLVED_REFERENCE"
    assert reference[2:-1] in use["body"]["error"]
    assert body["summary"]["failed"] == 2 and body["summary"]["skipped"] == 0


def test_references_are_refused_up_front_in_parallel_mode():
    status, _, body = post(
        BATCH, "batch", {"operations": [op("a", body=event()), op("b", body=event("${a.body.x}"))], "parallel": True}
    )
    assert status == 422 and body["details"][0]["index"] == 1


@pytest.mark.parametrize(
    ("request_body", "status"),
    [
        ({"operations": []}, 422),
        ({"operations": [op(f"o{i}", body=event()) for i in range(101)]}, 422),
        ({"operations": [op("x", body=event()), op("x", body=event())]}, 422),
        ({"operations": [op("x" * 65, body=event())]}, 422),
        ({"operations": [op("x", "/v1/" + "a" * 500, body=event())]}, 422),
        ({"operations": [op("x", method="GET")]}, 422),
        ({"operations": [op("x", method="PUT")]}, 422),
        ({"operations": [{"id": "x", "path": "/v1/events"}]}, 422),
        ({"operations": "nope"}, 422),
    ],
)
def test_whole_batch_rejections(request_body, status):
    for module, name in ((BATCH, "batch"), (DRY_RUN, "batch_dry_run")):
        got, _, body = post(module, name, request_body)
        assert got == status, (name, body)
        assert body["code"] == "VALIDATION_FAILED"


def test_operation_body_over_100kb_rejects_the_whole_batch():
    big = event(summary="x" * 9_000, metadata={"blob": "y" * (100 * 1024)})
    for module, name in ((BATCH, "batch"), (DRY_RUN, "batch_dry_run")):
        status, _, body = post(module, name, {"operations": [op("ok", body=event()), op("big", body=big)]})
        assert status == 422
        assert body["error"] == "Operation body must not exceed 100KB"
        assert body["details"][0]["index"] == 1


def test_request_body_over_5mb_is_413():
    operations = [op(f"o{i}", body=event(summary="x" * 9_000, metadata={"b": "y" * 90_000})) for i in range(55)]
    raw = json.dumps({"operations": operations})
    assert 5 * 1024 * 1024 < len(raw) < 6 * 1024 * 1024
    status, _, body = invoke(BATCH, api_event("batch", raw_body=raw))
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_malformed_json_is_400():
    status, _, body = invoke(BATCH, api_event("batch", raw_body="{oops"))
    assert (status, body["code"]) == (400, "MALFORMED_JSON")


def test_dry_run_gives_verdicts_without_running_anything():
    _, _, body = post(
        DRY_RUN,
        "batch_dry_run",
        {
            "operations": [
                op("good", "/v1/events/batch", body={"events": [event()], "batchId": "dry"}),
                op("invalid", body={"eventStatus": "SUCCESS"}),
                op("nowhere", "/v1/nothing", body={}),
                op("wrong", "/v1/events", method="PATCH", body={}),
                op("ref", body=event("${good.body.correlationIds.0}")),
                op("badref", body=event("${later.body.x}")),
                op("later", body=event()),
            ]
        },
    )
    assert [r["status"] for r in body["results"]] == [200, 422, 404, 405, 200, 424, 200]
    assert body["results"][1]["body"]["code"] == "VALIDATION_FAILED"
    assert body["results"][5]["body"]["code"] == "UNRESOLVED_REFERENCE"
    # nothing ran
    assert invoke(GET_EVENTS, api_event("get_event_batch", path_params={"batchId": "dry"}))[0] == 404


def test_limits_come_from_the_validators_settings():
    status, _, body = invoke(LIMITS, api_event("batch_limits"))
    assert status == 200
    assert body == {
        "maxOperations": 100,
        "timeoutMs": 60000,
        "allowedMethods": ["POST", "PATCH", "DELETE"],
        "allowedPaths": [
            "/v1/events",
            "/v1/events/batch",
            "/v1/jobs",
            "/v1/jobs/{jobID}",
            "/v1/jobs/{jobID}/trigger",
            "/v1/jobs/{jobID}/trigger-bulk",
            "/v1/jobs/{jobID}/trigger/bulk",
            "/v1/bulk-track",
            "/v1/track",
            "/v1/bulk-track/uploads",
            # Webhook subscriptions; /v1/batches routes are batch routes, never operations.
            "/v1/webhooks",
            "/v1/webhooks/{webhook_id}",
        ],
        "maxBodyBytes": 5 * 1024 * 1024,
        "maxOperationBodyBytes": 100 * 1024,
        "plan": "pro",
        "rateLimits": {"requestsPerSecond": 50, "requestBurst": 100, "trackedEventsPerSecond": 2_000},
    }


def test_timeout_reports_unfinished_operations_as_504(monkeypatch):
    monkeypatch.setenv("BATCHOPS_HTTP_DEADLINE_MS", "1")
    from batchops.settings import reset_settings

    reset_settings()
    _, _, body = post(BATCH, "batch", {"operations": [op("a", body=event()), op("b", body=event())]})
    statuses = [r["status"] for r in body["results"]]
    assert statuses[-1] == 504 and body["results"][-1]["body"]["code"] == "TIMEOUT"
    assert len(statuses) == 2


def test_sync_batches_publish_emf_metrics(capsys):
    post(BATCH, "batch", {"operations": [op("a", body=event()), op("b", body={})], "continueOnError": False})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    batch = next(m for m in lines if "SyncOperationsExecuted" in m)
    assert batch["SyncOperationsExecuted"] == [2.0] and batch["SyncOperationsFailed"] == [1.0]
    assert batch["SyncOperationsSkipped"] == [0.0]


@pytest.mark.parametrize("path", ["//[/v1/events", "//evil.example/v1/events", "http://x/v1/events", "v1/events", ""])
def test_odd_paths_are_404_results_never_500_or_another_route(path):
    for module, name in ((BATCH, "batch"), (DRY_RUN, "batch_dry_run")):
        status, _, body = post(module, name, {"operations": [op("odd", path, body=event())]})
        if path == "":
            assert status == 422  # path is 1-500 characters
            continue
        assert status == 200, body
        assert body["results"][0]["status"] == 404 and body["results"][0]["body"]["code"] == "NOT_FOUND"


def test_query_strings_in_paths_are_passed_on():
    _, _, body = post(BATCH, "batch", {"operations": [op("q", "/v1/events?debug=1", body=event())]})
    assert body["results"][0]["status"] == 201


def test_dollar_brace_text_that_is_not_a_reference_passes_through():
    message = "Hello ${name}, total ${price}"
    for parallel in (False, True):
        _, _, body = post(BATCH, "batch", {"operations": [op("t", body=event(summary=message))], "parallel": parallel})
        assert body["results"][0]["status"] == 201


def test_oversized_operation_headers_reject_the_batch():
    headers = {"X-Big": "v" * (8 * 1024 + 1)}
    status, _, body = post(BATCH, "batch", {"operations": [op("h", body=event(), headers=headers)]})
    assert status == 422 and body["details"][0]["field"].startswith("operations.0.headers")
    many = {f"X-{i}": "v" for i in range(51)}
    assert post(BATCH, "batch", {"operations": [op("h", body=event(), headers=many)]})[0] == 422


def test_a_reference_that_grows_a_body_past_100kb_fails_that_operation():
    # The answer to 200 entries (an executionId and a correlationId each) is about 15 KB; copied into
    # a 96 KB body it passes 100 KB.
    events = [event(f"corr-{i:04d}") for i in range(200)]
    copy = event(metadata={"all": "${create.body}", "pad": "p" * 95_000})
    assert len(json.dumps({"events": events})) < 100 * 1024 and len(json.dumps(copy)) < 100 * 1024
    operations = [op("create", "/v1/events/batch", body={"events": events}), op("copy", body=copy)]
    _, _, body = post(BATCH, "batch", {"operations": operations})
    assert body["results"][0]["status"] == 201
    assert body["results"][1]["status"] == 422
    assert body["results"][1]["body"]["error"] == "Operation body must not exceed 100KB"


def test_parallel_with_continue_on_error_false_skips_operations_not_yet_started():
    operations = [op("bad", body={})] + [op(f"ok{i}", body=event(f"c{i}")) for i in range(30)]
    _, _, body = post(BATCH, "batch", {"operations": operations, "parallel": True, "continueOnError": False})
    statuses = [r["status"] for r in body["results"]]
    assert statuses[0] == 422
    assert set(statuses[1:]) <= {201, 424}
    assert body["summary"]["skipped"] == statuses.count(424)


def test_dry_run_accepts_fields_whose_whole_value_is_a_reference():
    _, _, body = post(
        DRY_RUN,
        "batch_dry_run",
        {
            "operations": [
                op("a", body=event()),
                op("b", body=event(eventStatus="${a.body.status}")),
                op("c", body={"correlationId": "${a.body.correlationId}"}),
            ]
        },
    )
    assert [r["status"] for r in body["results"]] == [200, 200, 422]
    assert body["results"][1]["body"] == {"valid": True, "unchecked": ["eventStatus"]}


def test_the_same_idempotency_key_replays_a_whole_batch():
    request = {"operations": [op("a", "/v1/events/batch", body={"events": [event()], "batchId": "idem-batch"})]}
    headers = {"Idempotency-Key": "batch-key-1"}
    first = invoke(BATCH, api_event("batch", body=request, headers=headers))
    again = invoke(BATCH, api_event("batch", body=request, headers=headers))
    assert first[2] == again[2] and again[1].get("Idempotent-Replayed") == "true"
    _, _, page = invoke(GET_EVENTS, api_event("get_event_batch", path_params={"batchId": "idem-batch"}))
    assert page["totalCount"] == 1


def test_hop_by_hop_headers_are_not_forwarded():
    from batchops.executors.operations import forwarded_headers

    sent = {
        "Authorization": "Bearer x",
        "Connection": "close",
        "Transfer-Encoding": "chunked",
        "Host": "evil",
        "Idempotency-Key": "k",
        "X-Custom": "1",
    }
    assert forwarded_headers(sent) == {"Idempotency-Key": "k", "X-Custom": "1"}


def test_a_response_too_large_for_lambda_keeps_statuses_and_cuts_bodies():
    from batchops.models.operations import OperationResult
    from batchops.services.operations import RESULTS_BUDGET_BYTES, respond

    blob = "x" * (RESULTS_BUDGET_BYTES // 3)
    results = [OperationResult(id=f"o{i}", status=201, body={"blob": blob}) for i in range(5)]
    response = respond(results)
    assert [r.status for r in response.results] == [201] * 5
    assert [r.body.get("code") for r in response.results] == [
        None,
        None,
        "RESULT_TOO_LARGE",
        "RESULT_TOO_LARGE",
        "RESULT_TOO_LARGE",
    ]
    assert response.summary.succeeded == 5


def tracked(message_id: str) -> dict:
    return {"event": "signup", "properties": {}, "timestamp": "2026-10-29T22:00:00Z", "messageId": message_id}


def test_bulk_track_takes_its_array_body_as_an_operation(monkeypatch):
    import boto3

    from batchops.settings import reset_settings

    queue = boto3.client("sqs").get_queue_url(QueueName="TrackingQueue")["QueueUrl"]
    monkeypatch.setenv("BATCHOPS_TRACKING_QUEUE_URL", queue)
    reset_settings()
    status, _, body = post(
        BATCH,
        "batch",
        {
            "operations": [
                op("track", "/v1/bulk-track", body=[tracked("op-1"), tracked("op-2")]),
                # An object route still refuses an array, as the direct call does.
                op("array", "/v1/events", body=[event(), event()]),
            ]
        },
    )
    assert status == 200, body
    track, array = body["results"]
    assert (track["status"], track["body"]["messageIds"]) == (200, ["op-1", "op-2"])
    assert (array["status"], array["body"]["code"]) == (422, "VALIDATION_FAILED")
    queued = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert queued["Attributes"]["ApproximateNumberOfMessages"] == "1"  # both events packed in one message


def test_dry_run_refuses_what_a_self_parsing_route_would():
    _, _, body = post(
        DRY_RUN,
        "batch_dry_run",
        {
            "operations": [
                op("fine", "/v1/bulk-track", body=[tracked("d-1")]),
                op("empty", "/v1/bulk-track"),
                op("not-an-event", "/v1/bulk-track", body=[{"messageId": "d-2"}]),
                op("one", "/v1/track", body=tracked("d-3")),
                op("one-bad", "/v1/track", body={"event": ""}),
            ]
        },
    )
    assert [(r["status"], (r["body"] or {}).get("code")) for r in body["results"]] == [
        (200, None),
        (400, "MALFORMED_JSON"),  # as the route answers a request without a body
        (400, "INVALID_EVENT"),
        (200, None),
        (400, "INVALID_EVENT"),
    ]
