"""The local stack runs each function with its role as `sam deploy` expands it: a template that
takes a permission away makes the route that needs it fail, as it would on AWS."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import KEY_A
from tests.e2e.harness import RunningStack, start_stack, template_copy, wait_for

KEY = "bo_e2e_iam_removed_policy_key_0001"
SEND_TO_TRACKING_QUEUE = """        - SQSSendMessagePolicy:
            QueueName: !GetAtt TrackingQueue.QueueName
      Events:
        BulkTrack:"""


def _without_bulk_track_send(text: str) -> str:
    # Only BulkTrackFunction's grant (its Events block follows it); the upload worker keeps its own.
    return text.replace(SEND_TO_TRACKING_QUEUE, "      Events:\n        BulkTrack:")


@pytest.fixture(scope="module")
def stripped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("iam-removed")
    template = template_copy(workdir / "template", _without_bulk_track_send)
    running = start_stack(workdir / "stack", {"BATCHOPS_LOCAL_API_KEYS": f"ws-iam:pro:{KEY}"}, template=template)
    try:
        yield running
    finally:
        assert running.stop(signal.SIGINT) == 0, running.logs()


def test_removing_a_policy_makes_its_route_fail_and_the_log_says_why(
    stack: RunningStack, stripped: RunningStack
) -> None:
    events = [{"event": "signup", "properties": {}, "timestamp": "2026-10-29T22:00:00Z", "messageId": "iam-1"}]
    # With the template as it is, the request succeeds.
    whole = httpx.post(f"{stack.api}/v1/bulk-track", json=events, headers={"Authorization": f"Bearer {KEY_A}"})
    assert whole.status_code == 200, whole.text
    response = httpx.post(
        f"{stripped.api}/v1/bulk-track", json=events, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    # SQS refused the send: nothing was queued, and the client is told to send again.
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "STORAGE_ERROR"
    logs = wait_for(lambda: "IAM AccessDenied: BulkTrackFunction" in stripped.logs() and stripped.logs(), what="log")
    assert (
        "IAM AccessDenied: BulkTrackFunction (role BulkTrackFunctionRole) may not sqs:SendMessage on "
        "arn:aws:sqs:us-east-1:123456789012:TrackingQueue" in logs
    )
    # Everything else of the role still works: the same workspace reads its limits.
    limits = httpx.get(f"{stripped.api}/v1/batch/limits", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert limits.status_code == 200
