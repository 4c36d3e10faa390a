"""Tracking's promises (seed 004): bulk-track, track and uploads through S3.

- every event a client was told was accepted (its messageId in an answer) is readable, and stored
  once: one item per (workspace, messageId), holding that messageId;
- nothing else is stored: no event the answers did not accept (a refused send that was stored
  anyway, or a generated id stored twice under two ids);
- every upload is in one terminal state (completed or failed) with completed_at; a completed
  upload's counts add up to its lines and its accepted ids are all stored; its result is in the
  bucket and the uploaded object is gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import boto3

from tests.invariants.table import table_items

TERMINAL_UPLOADS = ("completed", "failed")


def tracked_events(items: Iterable[dict[str, Any]] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Every stored event, by (workspace, messageId from its key), as its parsed JSON."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items if items is not None else table_items():
        if item.get("type") == "tracked_event":
            prefix, message_id = str(item["pk"]).split("#TEVT#", 1)
            found[(prefix.split("#", 1)[1], message_id)] = json.loads(item["event_json"])
    return found


def uploads(items: Iterable[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    return {
        str(item["upload_id"]): item
        for item in (items if items is not None else table_items())
        if item.get("type") == "tracking_upload"
    }


def tracking_broken(
    accepted: Mapping[str, Iterable[str]],
    *,
    lines: Mapping[str, int] | None = None,
    bucket: str | None = None,
    exact: bool = True,
) -> list[str]:
    """`accepted`: per workspace, every messageId an answer (or an upload's result) reported
    accepted. `lines`: per upload id, how many events its object held. `exact`: nothing but those
    ids may be stored (off when a scenario also stores events it does not track)."""
    from batchops.errors import NotFoundError
    from batchops.services import tracking

    items = table_items()
    stored = tracked_events(items)
    broken: list[str] = []
    promised = {(workspace, message_id) for workspace, ids in accepted.items() for message_id in ids}
    for upload_id, upload in uploads(items).items():
        workspace = str(upload["pk"]).split("#TUPLOAD#", 1)[0].split("#", 1)[1]
        broken += _upload_broken(workspace, upload_id, upload, lines, bucket)
        if upload.get("status") == "completed" and bucket:
            result = _result(bucket, workspace, upload_id)
            promised |= {(workspace, message_id) for message_id in (result or {}).get("messageIds", [])}
    for workspace, message_id in sorted(promised):
        try:
            event = tracking.get_event(workspace, message_id)
        except NotFoundError:
            broken.append(f"{workspace}/{message_id}: accepted, not readable")
            continue
        if event.get("messageId") != message_id:
            broken.append(f"{workspace}/{message_id}: stored under another messageId {event.get('messageId')}")
    if exact:
        for extra in sorted(set(stored) - promised):
            broken.append(f"{extra[0]}/{extra[1]}: stored but never reported accepted")
    return broken


def _result(bucket: str, workspace: str, upload_id: str) -> dict[str, Any] | None:
    from batchops.services.tracking_uploads import result_key

    try:
        body = boto3.client("s3", region_name="us-east-1").get_object(
            Bucket=bucket, Key=result_key(workspace, upload_id)
        )["Body"]
    except boto3.client("s3", region_name="us-east-1").exceptions.NoSuchKey:
        return None
    found: dict[str, Any] = json.loads(body.read())
    return found


def _upload_broken(
    workspace: str, upload_id: str, upload: dict[str, Any], lines: Mapping[str, int] | None, bucket: str | None
) -> list[str]:
    from batchops.services.tracking_uploads import object_key

    broken: list[str] = []
    status = upload.get("status")
    if status not in TERMINAL_UPLOADS:
        return [f"upload {upload_id}: still {status}"]
    if not upload.get("completed_at"):
        broken.append(f"upload {upload_id}: {status} without completed_at")
    if status == "completed":
        counted = int(upload.get("accepted", -1)) + int(upload.get("rejected", -1))
        if lines is not None and upload_id in lines and counted != lines[upload_id]:
            broken.append(f"upload {upload_id}: accepted + rejected = {counted}, its object had {lines[upload_id]}")
    if bucket:
        result = _result(bucket, workspace, upload_id)
        if result is None:
            broken.append(f"upload {upload_id}: {status} without a result object")
        elif status == "completed":
            answered = len(result.get("messageIds", [])) + len(result.get("errors") or [])
            if answered != int(upload.get("accepted", 0)) + int(upload.get("rejected", 0)):
                broken.append(f"upload {upload_id}: the result lists {answered} lines, the record counts differ")
        left = boto3.client("s3", region_name="us-east-1").list_objects_v2(
            Bucket=bucket, Prefix=object_key(workspace, upload_id)
        )
        if left.get("KeyCount"):
            broken.append(f"upload {upload_id}: its uploaded object is still in the bucket")
    return broken
