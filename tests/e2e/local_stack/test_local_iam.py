"""Each function runs with its role as `sam deploy` expands it, and only its own environment."""

from __future__ import annotations

import httpx

from tests.e2e.harness import RunningStack, wait_for


def test_calls_outside_the_role_are_refused_as_aws_refuses_them(stack: RunningStack, auth: dict[str, str]) -> None:
    response = httpx.get(f"{stack.api}/iam-probe", headers=auth, timeout=30)
    assert response.status_code == 200, response.text
    outcomes = response.json()
    # Allowed: a put under its dynamodb:LeadingKeys condition, reading the bucket (SAM's S3ReadPolicy).
    assert outcomes["own_key"] == "ok"
    assert outcomes["read_upload"] == "ok"
    # Refused, with each service's own error code as botocore reports it.
    assert outcomes["other_key"] == "AccessDeniedException"
    assert outcomes["batch_mixed"] == "AccessDeniedException"  # one item outside the condition
    assert outcomes["scan"] == "AccessDeniedException"
    assert outcomes["send"] == "AccessDenied"
    assert outcomes["write_upload"] == "AccessDenied"
    items = stack.client("dynamodb").scan(TableName="RecordsTable")["Items"]
    keys = {item["pk"]["S"] for item in items}
    assert "probe#1" in keys
    assert not keys & {"msg#forged", "msg#forged2", "probe#2"}  # a refused batch writes nothing
    # The log names the function, the action and the resource.
    logs = wait_for(lambda: "IAM AccessDenied: IamProbeFunction" in stack.logs() and stack.logs(), what="IAM log")
    assert (
        "IAM AccessDenied: IamProbeFunction (role IamProbeFunctionRole) may not sqs:SendMessage on "
        "arn:aws:sqs:us-east-1:123456789012:WorkQueue: no identity-based policy allows" in logs
    )
    assert "may not dynamodb:PutItem on arn:aws:dynamodb:us-east-1:123456789012:table/RecordsTable" in logs


def test_a_function_sees_only_its_template_environment(stack: RunningStack, auth: dict[str, str]) -> None:
    seen = set(httpx.get(f"{stack.api}/iam-probe", headers=auth, timeout=30).json()["env"])
    # Its own variables, the Globals, the runtime's and the role's credentials ...
    assert {"WORK_QUEUE_URL", "RECORDS_TABLE", "UPLOAD_BUCKET", "STAGE"} <= seen
    assert {"AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"} <= seen
    # ... and nothing from the stack's process (the harness starts it with the test's environment).
    assert not {"BATCHOPS_LOCAL_PORT", "BATCHOPS_TABLE_NAME", "PYTEST_CURRENT_TEST"} & seen
    echo = httpx.get(f"{stack.api}/echo/1", headers=auth, timeout=30).json()
    assert echo["context"]["function_name"] == "EchoFunction"
