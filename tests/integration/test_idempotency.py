"""Idempotency-Key on the event-log POSTs: Powertools idempotency on the DynamoDB table of the template."""

from __future__ import annotations

import json

import pytest

from tests.support import LambdaContext, api_event, invoke, load_function, log_entry

pytestmark = pytest.mark.usefixtures("aws")

CREATE_BATCH = load_function("create_event_batch")
CREATE_ONE = load_function("create_event")
GET_BATCH = load_function("get_event_batch")


def post(body, key, workspace="ws-a"):
    return invoke(
        CREATE_BATCH,
        api_event("create_event_batch", body=body, headers={"Idempotency-Key": key}, workspace=workspace),
    )


def batch_size(batch_id, workspace="ws-a"):
    status, _, body = invoke(
        GET_BATCH, api_event("get_event_batch", path_params={"batchId": batch_id}, workspace=workspace)
    )
    return body["totalCount"] if status == 200 else 0


BODY = {"events": [log_entry("c1")], "batchId": "idem"}


def test_retry_returns_the_first_response_and_stores_once():
    first = post(BODY, "key-1")
    second = post(BODY, "key-1")
    assert first[0] == second[0] == 201
    # generated executionIds prove it is the same stored response, not a second run
    assert second[2] == first[2]
    assert second[1].get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first[1]
    assert batch_size("idem") == 1


def test_same_key_with_a_different_body_is_422():
    post(BODY, "key-2")
    other = {**BODY, "events": [log_entry("c2")]}
    status, _, body = post(other, "key-2")
    assert (status, body["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert batch_size("idem") == 1


def test_key_order_and_whitespace_do_not_make_a_different_body():
    post(BODY, "key-3")
    reordered = {"batchId": "idem", "events": [dict(reversed(log_entry("c1").items()))]}
    status, headers, _ = post(reordered, "key-3")
    assert status == 201 and headers.get("Idempotent-Replayed") == "true"


def test_keys_are_scoped_to_the_workspace():
    a = post(BODY, "shared-key", workspace="ws-a")
    b = post(BODY, "shared-key", workspace="ws-b")
    assert a[0] == b[0] == 201
    assert a[2]["executionIds"] != b[2]["executionIds"]
    assert "Idempotent-Replayed" not in b[1]
    assert batch_size("idem", "ws-a") == 1 and batch_size("idem", "ws-b") == 1


def test_errors_are_not_replayed():
    bad = {"events": [{"correlationId": "c1"}], "batchId": "idem"}
    assert post(bad, "key-4")[0] == 422
    # the key is not burnt by a refused request: a corrected retry with a new body would be a reuse,
    # but the same body simply runs (and fails) again
    status, headers, _ = post(bad, "key-4")
    assert status == 422 and "Idempotent-Replayed" not in headers


def test_invalid_key_is_422():
    status, _, body = post(BODY, "x" * 256)
    assert (status, body["code"]) == (422, "INVALID_IDEMPOTENCY_KEY")


def test_single_event_post_is_idempotent_too():
    event = api_event(
        "create_event",
        body=log_entry("one"),
        headers={"Idempotency-Key": "one-1"},
    )
    first = invoke(CREATE_ONE, event)
    second = invoke(CREATE_ONE, event)
    assert first[0] == second[0] == 201
    assert first[2] == second[2]


def test_a_large_answer_is_remembered_and_replayed():
    # 1,000 entries, every other one refused with twenty problems: over 400 KB of answer before
    # compression
    bad_links = {"spanLinks": ["not-hex"] * 20}
    events = [log_entry(f"c{i}", **(bad_links if i % 2 else {})) for i in range(1000)]
    body = {"events": events, "batchId": "large"}
    first = post(body, "large-key")
    assert first[0] == 201 and first[2]["totalInserted"] == 500 and len(first[2]["errors"]) == 500
    assert len(json.dumps(first[2])) > 400_000  # more than a DynamoDB item holds, uncompressed
    again = post(body, "large-key")
    assert again[0] == 201 and again[1].get("Idempotent-Replayed") == "true"
    assert again[2] == first[2]


def test_when_the_record_cannot_be_saved_the_client_still_gets_the_real_answer(monkeypatch):
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import DynamoDBPersistenceLayer

    def refuse(self, data, result):
        raise RuntimeError("item too large")

    monkeypatch.setattr(DynamoDBPersistenceLayer, "save_success", refuse)
    status, headers, body = post(BODY, "unsaved")
    assert status == 201 and body["totalInserted"] == 1
    assert "Idempotent-Replayed" not in headers
    # the in-progress record still guards against an immediate second run
    status, _, body = post(BODY, "unsaved")
    assert (status, body["code"]) == (409, "IDEMPOTENCY_IN_PROGRESS")
    assert batch_size("idem") == 1


def test_a_request_still_running_under_the_same_key_is_409():
    from batchops.errors import IdempotencyInProgressError
    from batchops.services import idempotency

    seen = []

    def inner():
        try:
            idempotency.run_once(
                workspace_id="ws-a",
                scope="s",
                key="k",
                payload={},
                operation=dict,
                lambda_context=LambdaContext(),
            )
        except IdempotencyInProgressError as error:
            seen.append(error)
        return {"status": 201}

    idempotency.run_once(
        workspace_id="ws-a", scope="s", key="k", payload={}, operation=inner, lambda_context=LambdaContext()
    )
    assert len(seen) == 1
