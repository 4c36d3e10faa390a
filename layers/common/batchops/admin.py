"""`python -m batchops.admin` (installed as `batchops-admin`): workspaces and API keys.

These write the domain table directly, with AWS credentials, against AWS or the local stack
(`--endpoint-url http://127.0.0.1:5000 --table DomainTable`). There are no administrative API
routes (docs/threat-model.md), so this lives with the server, not in the HTTP client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from batchops.errors import BatchopsError

PLANS = ["free", "pro", "team", "enterprise"]


def _environment(args: argparse.Namespace) -> None:
    # The services read these lazily, so setting them before the first call is enough.
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if args.table:
        os.environ["BATCHOPS_TABLE_NAME"] = args.table
    if "BATCHOPS_TABLE_NAME" not in os.environ:
        raise SystemExit("Give --table (the stack's DomainTableName output) or set BATCHOPS_TABLE_NAME")


def _run(args: argparse.Namespace) -> Any:
    _environment(args)
    from batchops.services import api_keys

    if args.command == "create-workspace":
        return api_keys.create_workspace(args.name, args.plan, workspace_id=args.id).model_dump(mode="json")
    if args.command == "create-key":
        created = api_keys.create_key(args.workspace).model_dump(mode="json")
        return {**created, "note": "Store this key now: it is not shown again."}
    if args.command == "revoke-key":
        revoked = api_keys.revoke_key(key=args.key, workspace_id=args.workspace, key_id=args.key_id)
        return {"revoked": revoked.key_id, "workspace_id": revoked.workspace_id}
    return [k.model_dump(mode="json", exclude={"key_hash"}) for k in api_keys.list_keys(args.workspace)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batchops-admin", description=__doc__)
    parser.add_argument("--endpoint-url", help="AWS endpoint, e.g. the local stack's http://127.0.0.1:5000")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument("--table", help="domain table name (default: $BATCHOPS_TABLE_NAME)")
    commands = parser.add_subparsers(dest="command", required=True)
    create_ws = commands.add_parser("create-workspace")
    create_ws.add_argument("--name", required=True)
    create_ws.add_argument("--plan", default="free", choices=PLANS)
    create_ws.add_argument("--id", help="workspace id (default: generated)")
    commands.add_parser("create-key").add_argument("--workspace", required=True)
    revoke = commands.add_parser("revoke-key", help="by --key, or by --workspace and --key-id")
    revoke.add_argument("--key")
    revoke.add_argument("--workspace")
    revoke.add_argument("--key-id")
    commands.add_parser("list-keys").add_argument("--workspace", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = _run(args)
    except BatchopsError as error:
        print(json.dumps({"error": error.message, "code": error.code}), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
