"""`batchops`: admin commands (workspaces, keys) and event-log calls.

Admin commands write the domain table directly, against AWS or against the local
stack (`--endpoint-url http://127.0.0.1:5000`, table `DomainTable`). API commands
call the HTTP API with a key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchops.errors import BatchopsError
from batchops_client.sdk import ApiError, BatchopsClient


def _admin_environment(args: argparse.Namespace) -> None:
    # The services read these lazily, so setting them before the first call is enough.
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if args.table:
        os.environ["BATCHOPS_TABLE_NAME"] = args.table
    if "BATCHOPS_TABLE_NAME" not in os.environ:
        raise SystemExit("Give --table (the stack's DomainTableName output) or set BATCHOPS_TABLE_NAME")


def _admin(args: argparse.Namespace) -> Any:
    _admin_environment(args)
    from batchops.services import api_keys

    if args.admin_command == "create-workspace":
        return api_keys.create_workspace(args.name, args.plan, workspace_id=args.id).model_dump(mode="json")
    if args.admin_command == "create-key":
        created = api_keys.create_key(args.workspace).model_dump(mode="json")
        return {**created, "note": "Store this key now: it is not shown again."}
    if args.admin_command == "revoke-key":
        revoked = api_keys.revoke_key(key=args.key, workspace_id=args.workspace, key_id=args.key_id)
        return {"revoked": revoked.key_id, "workspace_id": revoked.workspace_id}
    if args.admin_command == "list-keys":
        return [k.model_dump(mode="json", exclude={"key_hash"}) for k in api_keys.list_keys(args.workspace)]
    raise SystemExit(f"unknown admin command {args.admin_command}")


def _events(args: argparse.Namespace) -> Any:
    api_key = args.api_key or os.environ.get("BATCHOPS_API_KEY")
    with BatchopsClient(args.api_url, api_key) as client:
        if args.events_command == "create-batch":
            source = sys.stdin if args.file == "-" else Path(args.file).open(encoding="utf-8")  # noqa: SIM115
            with source:
                payload = json.load(source)
            events = payload["events"] if isinstance(payload, dict) else payload
            batch_id = args.batch_id or (payload.get("batchId") if isinstance(payload, dict) else None)
            return client.create_event_batch(events, batch_id, idempotency_key=args.idempotency_key)
        if args.events_command == "get-batch":
            return client.get_event_batch(
                args.batch_id, page=args.page, page_size=args.page_size, event_status=args.status
            )
        if args.events_command == "summary":
            return client.get_event_batch_summary(args.batch_id)
    raise SystemExit(f"unknown events command {args.events_command}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batchops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    admin = commands.add_parser("admin", help="workspaces and API keys (writes the domain table)")
    admin.add_argument("--endpoint-url", help="AWS endpoint, e.g. the local stack's http://127.0.0.1:5000")
    admin.add_argument("--region", help="AWS region")
    admin.add_argument("--table", help="domain table name (default: $BATCHOPS_TABLE_NAME)")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create_ws = admin_commands.add_parser("create-workspace")
    create_ws.add_argument("--name", required=True)
    create_ws.add_argument("--plan", default="free", choices=["free", "pro", "team", "enterprise"])
    create_ws.add_argument("--id", help="workspace id (default: generated)")
    create_key = admin_commands.add_parser("create-key")
    create_key.add_argument("--workspace", required=True)
    revoke = admin_commands.add_parser("revoke-key", help="by --key, or by --workspace and --key-id")
    revoke.add_argument("--key")
    revoke.add_argument("--workspace")
    revoke.add_argument("--key-id")
    list_keys = admin_commands.add_parser("list-keys")
    list_keys.add_argument("--workspace", required=True)

    events = commands.add_parser("events", help="event-log API calls")
    events.add_argument("--api-url", default=os.environ.get("BATCHOPS_API_URL", "http://127.0.0.1:3000"))
    events.add_argument("--api-key", help="API key (default: $BATCHOPS_API_KEY)")
    events_commands = events.add_subparsers(dest="events_command", required=True)
    create_batch = events_commands.add_parser("create-batch", help="POST /v1/events/batch from a JSON file")
    create_batch.add_argument("file", help="JSON file ({events, batchId} or a list of events); - for stdin")
    create_batch.add_argument("--batch-id")
    create_batch.add_argument("--idempotency-key")
    get_batch = events_commands.add_parser("get-batch")
    get_batch.add_argument("batch_id")
    get_batch.add_argument("--page", type=int, default=1)
    get_batch.add_argument("--page-size", type=int, default=20)
    get_batch.add_argument("--status")
    summary = events_commands.add_parser("summary")
    summary.add_argument("batch_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = _admin(args) if args.command == "admin" else _events(args)
    except ApiError as error:
        print(json.dumps(error.body, indent=2), file=sys.stderr)
        return 1
    except BatchopsError as error:
        print(json.dumps({"error": error.message, "code": error.code}), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
