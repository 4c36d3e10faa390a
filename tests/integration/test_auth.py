"""API keys and the REQUEST authorizer, on moto."""

from __future__ import annotations

import hashlib

import boto3
import pytest

from batchops.errors import ConflictError, NotFoundError, UnauthorizedError, ValidationFailedError
from batchops.services import api_keys
from tests.support import LambdaContext, fixture_event, load_function

pytestmark = pytest.mark.usefixtures("aws")

AUTHORIZER = load_function("authorizer")


def authorize(header: str | None):
    event = fixture_event("authorizer")
    event["headers"] = {} if header is None else {"authorization": header}
    return AUTHORIZER.lambda_handler(event, LambdaContext())


def table_items():
    return boto3.client("dynamodb").scan(TableName="DomainTable")["Items"]


def test_created_key_is_shown_once_and_stored_only_as_a_hash():
    api_keys.create_workspace("Acme", "team", workspace_id="acme")
    created = api_keys.create_key("acme")
    assert created.key.startswith("bo_") and len(created.key) >= 3 + 43
    dump = repr(table_items())
    assert created.key not in dump
    assert hashlib.sha256(created.key.encode()).hexdigest() in dump


def test_authorizer_allows_a_valid_key_with_the_workspace_context():
    api_keys.create_workspace("Acme", "team", workspace_id="acme")
    created = api_keys.create_key("acme")
    policy = authorize(f"Bearer {created.key}")
    assert policy["principalId"] == "acme"
    assert policy["context"] == {"workspace_id": "acme", "key_id": created.key_id, "plan": "team"}
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    # cached per key for every route, so the policy must cover the whole stage
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/*/*"]


def test_scheme_is_case_insensitive():
    api_keys.create_workspace("Acme", "pro", workspace_id="acme")
    created = api_keys.create_key("acme")
    assert authorize(f"bearer {created.key}")["principalId"] == "acme"


def assert_denied(policy):
    # A Deny (API Gateway's ACCESS_DENIED, mapped to our 401), not an exception: a bad key
    # must not count as a Lambda error and set off the function-errors alarm.
    assert policy["principalId"] == "anonymous"
    assert not policy.get("context")
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/*/*"]


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer bo_unknownkeyunknownkey", "Token x"]
)
def test_missing_malformed_or_unknown_keys_are_denied(header):
    assert_denied(authorize(header))


def test_revoked_key_is_refused():
    api_keys.create_workspace("Acme", "pro", workspace_id="acme")
    created = api_keys.create_key("acme")
    api_keys.revoke_key(workspace_id="acme", key_id=created.key_id)
    assert_denied(authorize(f"Bearer {created.key}"))
    other = api_keys.create_key("acme")
    api_keys.revoke_key(key=other.key)
    with pytest.raises(UnauthorizedError):
        api_keys.authenticate(f"Bearer {other.key}")


def test_revoking_an_unknown_key_is_not_found():
    api_keys.create_workspace("Acme", "pro", workspace_id="acme")
    with pytest.raises(NotFoundError):
        api_keys.revoke_key(workspace_id="acme", key_id="key_nope")
    with pytest.raises(NotFoundError):
        api_keys.revoke_key(key="bo_" + "x" * 43)


def test_last_used_is_recorded_once_per_interval():
    api_keys.create_workspace("Acme", "pro", workspace_id="acme")
    created = api_keys.create_key("acme")
    assert api_keys.list_keys("acme")[0].last_used_at is None
    api_keys.authenticate(f"Bearer {created.key}")
    first = api_keys.list_keys("acme")[0].last_used_at
    assert first is not None
    api_keys.authenticate(f"Bearer {created.key}")
    assert api_keys.list_keys("acme")[0].last_used_at == first


def test_workspace_rules():
    api_keys.create_workspace("Acme", "pro", workspace_id="acme")
    with pytest.raises(ConflictError):
        api_keys.create_workspace("Again", "pro", workspace_id="acme")
    with pytest.raises(ValidationFailedError):
        api_keys.create_workspace("Bad", "pro", workspace_id="has#hash")
    with pytest.raises(ValidationFailedError, match="Unknown plan 'platinum'"):
        api_keys.create_workspace("Bad", "platinum")
    with pytest.raises(NotFoundError):
        api_keys.create_key("missing")
    generated = api_keys.create_workspace("Generated")
    assert generated.id.startswith("ws_") and generated.plan == "free"


def test_given_keys_must_look_like_keys():
    api_keys.create_workspace("Acme", "pro", workspace_id="acme")
    with pytest.raises(ValidationFailedError):
        api_keys.create_key("acme", secret="short")
    created = api_keys.create_key("acme", secret="bo_local_development_key_1")
    assert api_keys.authenticate(f"Bearer {created.key}").workspace_id == "acme"
