"""`python -m batchops.admin ...` against moto: the commands people run to onboard a workspace."""

from __future__ import annotations

import json

import pytest

from batchops.admin import main
from batchops.services import api_keys

pytestmark = pytest.mark.usefixtures("aws")


def run(capsys, *argv: str):
    code = main(["--table", "DomainTable", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_create_workspace_key_list_and_revoke(capsys):
    code, workspace, _ = run(capsys, "create-workspace", "--name", "Acme", "--plan", "team", "--id", "acme")
    assert code == 0 and workspace["id"] == "acme" and workspace["plan"] == "team"

    code, created, _ = run(capsys, "create-key", "--workspace", "acme")
    assert code == 0 and created["key"].startswith("bo_")
    assert api_keys.authenticate(f"Bearer {created['key']}").workspace_id == "acme"

    code, listed, _ = run(capsys, "list-keys", "--workspace", "acme")
    assert code == 0 and [k["key_id"] for k in listed] == [created["key_id"]]
    assert "key_hash" not in listed[0] and "key" not in listed[0]

    code, revoked, _ = run(capsys, "revoke-key", "--workspace", "acme", "--key-id", created["key_id"])
    assert code == 0 and revoked["revoked"] == created["key_id"]
    code, listed, _ = run(capsys, "list-keys", "--workspace", "acme")
    assert listed[0]["revoked_at"] is not None


def test_errors_are_one_line_of_json_and_exit_1(capsys):
    code, _, err = run(capsys, "create-key", "--workspace", "missing")
    assert code == 1
    assert json.loads(err) == {"error": "Workspace missing not found", "code": "NOT_FOUND"}
    run(capsys, "create-workspace", "--name", "Acme", "--id", "acme")
    code, _, err = run(capsys, "create-workspace", "--name", "Acme", "--id", "acme")
    assert code == 1 and json.loads(err)["code"] == "WORKSPACE_EXISTS"
