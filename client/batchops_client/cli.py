"""`batchops`: admin commands (workspaces, keys), event-log, batch and webhook calls.

Admin commands write the domain table directly, against AWS or against the local
stack (`--endpoint-url http://127.0.0.1:5000`, table `DomainTable`). API commands
call the HTTP API with a key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
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


def make_client(api_url: str, api_key: str | None) -> BatchopsClient:
    """How every API command gets its client (tests replace it to script the replies)."""
    return BatchopsClient(api_url, api_key)


def _client(args: argparse.Namespace) -> BatchopsClient:
    return make_client(args.api_url, args.api_key or os.environ.get("BATCHOPS_API_KEY"))


def _read_json(name: str) -> Any:
    source = sys.stdin if name == "-" else Path(name).open(encoding="utf-8")  # noqa: SIM115
    with source:
        return json.load(source)


def _events(args: argparse.Namespace) -> Any:
    with _client(args) as client:
        if args.events_command == "create":
            return client.create_event(_read_json(args.file), idempotency_key=args.idempotency_key)
        if args.events_command == "create-batch":
            payload = _read_json(args.file)
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


BATCH_FIELDS = {"name", "jobs", "description", "type", "priority", "options"}


def _read_batch_config(file: str) -> dict[str, Any]:
    source = sys.stdin if file == "-" else Path(file).open(encoding="utf-8")  # noqa: SIM115
    with source:
        config = json.load(source)
    if not isinstance(config, dict) or "name" not in config or "jobs" not in config:
        raise SystemExit(f"{file}: expected a JSON object with at least name and jobs")
    unknown = sorted(set(config) - BATCH_FIELDS)
    if unknown:
        raise SystemExit(f"{file}: unknown fields {', '.join(unknown)} (allowed: {', '.join(sorted(BATCH_FIELDS))})")
    return config


def _show_progress(batch_id: str) -> Callable[[dict[str, Any]], None]:
    def show(progress: dict[str, Any]) -> None:
        remaining = progress.get("estimated_remaining")
        line = f"{batch_id}: {progress.get('percentage', 0)}%" + (f", {remaining} left" if remaining else "")
        # On stderr, so that stdout stays the final JSON alone.
        print(line, file=sys.stderr, flush=True)

    return show


def _write_results(batch_id: str, result: dict[str, Any] | bytes, file_format: str, output: str | None) -> Any:
    if output is None and isinstance(result, dict):
        return result
    folder = Path(output or ".")
    folder.mkdir(parents=True, exist_ok=True)
    # `.name`: a batch id cannot steer the file out of the folder.
    target = folder / Path(f"{batch_id}.{file_format}").name
    if isinstance(result, bytes):
        target.write_bytes(result)
    else:
        target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return target


def _batch(args: argparse.Namespace) -> Any:
    with _client(args) as client:
        if args.batch_command == "create":
            config = _read_batch_config(args.config)
            return client.create_batch(
                config["name"],
                config["jobs"],
                description=config.get("description"),
                type=config.get("type"),
                priority=config.get("priority"),
                options=config.get("options"),
            )
        if args.batch_command == "status":
            if args.watch:
                return client.wait_for_batch(
                    args.batch_id,
                    timeout=args.timeout,
                    interval=args.interval,
                    on_progress=_show_progress(args.batch_id),
                )
            return client.get_batch(args.batch_id)
        if args.batch_command == "list":
            return client.list_batches(
                status=args.status,
                type=args.type,
                priority=args.priority,
                page=args.page,
                per_page=args.per_page,
                sort=args.sort,
            )
        if args.batch_command == "results":
            result = client.batch_results(
                args.batch_id, format=args.format, include_raw=args.include_raw, jobs=args.jobs
            )
            return _write_results(args.batch_id, result, args.format, args.output)
        if args.batch_command == "cancel":
            return client.cancel_batch(args.batch_id, reason=args.reason, cancel_running_jobs=not args.keep_running)
        if args.batch_command == "retry":
            return client.retry_batch(
                args.batch_id,
                job_ids=args.job_ids,
                max_retries=args.max_retries,
                retry_delay_minutes=args.retry_delay_minutes,
            )
    raise SystemExit(f"unknown batch command {args.batch_command}")


def _webhook(args: argparse.Namespace) -> Any:
    with _client(args) as client:
        if args.webhook_command == "create":
            return client.create_webhook(args.url, args.events)
        if args.webhook_command == "list":
            return client.list_webhooks()
        if args.webhook_command == "delete":
            client.delete_webhook(args.webhook_id)
            return {"deleted": args.webhook_id}
        if args.webhook_command == "deliveries":
            return client.webhook_deliveries(args.webhook_id)
    raise SystemExit(f"unknown webhook command {args.webhook_command}")


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", default=os.environ.get("BATCHOPS_API_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", help="API key (default: $BATCHOPS_API_KEY)")


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
    _api_options(events)
    events_commands = events.add_subparsers(dest="events_command", required=True)
    create_event = events_commands.add_parser("create", help="POST /v1/events: one EventLogEntry from a JSON file")
    create_event.add_argument("file", help="JSON file holding one EventLogEntry; - for stdin")
    create_event.add_argument(
        "--idempotency-key", help="Idempotency-Key header (the entry's idempotencyKey also works)"
    )
    create_batch = events_commands.add_parser("create-batch", help="POST /v1/events/batch from a JSON file")
    create_batch.add_argument("file", help="JSON file ({events, batchId} or a list of events); - for stdin")
    create_batch.add_argument("--batch-id", help="overrides every entry's own batchId")
    create_batch.add_argument("--idempotency-key")
    get_batch = events_commands.add_parser("get-batch", help="one page of a batch's entries, newest first")
    get_batch.add_argument("batch_id")
    get_batch.add_argument("--page", type=int, default=1)
    get_batch.add_argument("--page-size", type=int, default=20)
    get_batch.add_argument(
        "--status", help="only entries with this eventStatus: SUCCESS, FAILURE, IN_PROGRESS, SKIPPED, WARNING"
    )
    summary = events_commands.add_parser("summary")
    summary.add_argument("batch_id")

    batch = commands.add_parser("batch", help="Batches API calls")
    _api_options(batch)
    batch_commands = batch.add_subparsers(dest="batch_command", required=True)
    create = batch_commands.add_parser("create", help="POST /v1/batches")
    create.add_argument("--config", required=True, help="JSON file: {name, jobs, description?, ...}; - for stdin")
    status = batch_commands.add_parser("status")
    status.add_argument("batch_id")
    status.add_argument("--watch", action="store_true", help="poll until the batch finishes (progress on stderr)")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --watch")
    status.add_argument("--timeout", type=float, default=600.0, help="give up watching after this many seconds")
    listing = batch_commands.add_parser("list")
    listing.add_argument("--status", choices=["queued", "running", "completed", "failed", "cancelled", "timed_out"])
    listing.add_argument("--type")
    listing.add_argument("--priority", choices=["low", "medium", "high", "urgent"])
    listing.add_argument("--page", type=int)
    listing.add_argument("--per-page", type=int)
    listing.add_argument("--sort")
    results = batch_commands.add_parser("results", help="print the JSON results, or write a file to --output")
    results.add_argument("batch_id")
    results.add_argument("--format", default="json", choices=["json", "csv", "xlsx", "pdf"])
    results.add_argument("--output", help="folder for <batch_id>.<format> (default: print json, else .)")
    results.add_argument("--include-raw", action="store_true")
    results.add_argument("--jobs", help="comma-separated job ids")
    cancel = batch_commands.add_parser("cancel")
    cancel.add_argument("batch_id")
    cancel.add_argument("--reason")
    cancel.add_argument("--keep-running", action="store_true", help="let running jobs finish")
    retry = batch_commands.add_parser("retry", help="retry failed jobs (all of them without --job-id)")
    retry.add_argument("batch_id")
    retry.add_argument("--job-id", dest="job_ids", action="append")
    retry.add_argument("--max-retries", type=int)
    retry.add_argument("--retry-delay-minutes", type=int)

    webhook = commands.add_parser("webhook", help="webhook subscriptions")
    _api_options(webhook)
    webhook_commands = webhook.add_subparsers(dest="webhook_command", required=True)
    create_hook = webhook_commands.add_parser("create")
    create_hook.add_argument("--url", required=True)
    create_hook.add_argument("--event", dest="events", action="append", required=True, help="e.g. batch.completed")
    webhook_commands.add_parser("list")
    for name in ("delete", "deliveries"):
        webhook_commands.add_parser(name).add_argument("webhook_id")
    return parser


COMMANDS = {"admin": _admin, "events": _events, "batch": _batch, "webhook": _webhook}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = COMMANDS[args.command](args)
    except ApiError as error:
        print(json.dumps(error.body, indent=2), file=sys.stderr)
        return 1
    except BatchopsError as error:
        print(json.dumps({"error": error.message, "code": error.code}), file=sys.stderr)
        return 1
    except TimeoutError as error:
        print(json.dumps({"error": str(error), "code": "TIMEOUT"}), file=sys.stderr)
        return 1
    # A written file is printed as its plain path, for the shell.
    print(result if isinstance(result, Path) else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
