"""Workspaces and API keys: create, revoke, and authenticate a bearer key.

Keys are `bo_` + 32 random bytes (URL-safe base64), shown once and stored only as
their SHA-256: a leaked table does not leak keys. Lookup is by that hash, and the
final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from batchops.dal.workspaces import ApiKeyRepository, WorkspaceRepository
from batchops.errors import NotFoundError, UnauthorizedError, ValidationFailedError
from batchops.models.common import Caller, Plan
from batchops.models.workspace import WORKSPACE_ID_PATTERN, ApiKey, CreatedKey, Workspace
from batchops.settings import get_settings

KEY_PREFIX = "bo_"
KEY_RANDOM_BYTES = 32
# Keys given explicitly (local stack, tests) must still look like keys and be hard to guess.
_GIVEN_KEY = re.compile(r"^bo_[A-Za-z0-9_-]{16,200}$")
_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)


def _now() -> datetime:
    return datetime.now(UTC)


def _workspaces() -> WorkspaceRepository:
    return WorkspaceRepository(get_settings().table_name)


def _keys() -> ApiKeyRepository:
    return ApiKeyRepository(get_settings().table_name)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def create_workspace(name: str, plan: Plan | str = Plan.FREE, workspace_id: str | None = None) -> Workspace:
    chosen = workspace_id or f"ws_{uuid.uuid4().hex[:20]}"
    if not re.match(WORKSPACE_ID_PATTERN, chosen):
        raise ValidationFailedError(
            "Invalid workspace id",
            details=[{"field": "workspace_id", "error": f"must match {WORKSPACE_ID_PATTERN}"}],
        )
    workspace = Workspace(id=chosen, name=name, plan=parse_plan(plan), created_at=_now())
    _workspaces().create(workspace)
    return workspace


def parse_plan(plan: Plan | str) -> Plan:
    try:
        return Plan(plan)
    except ValueError:
        choices = ", ".join(p.value for p in Plan)
        raise ValidationFailedError(f"Unknown plan {plan!r}; use one of {choices}") from None


def get_workspace(workspace_id: str) -> Workspace:
    workspace = _workspaces().get(workspace_id)
    if workspace is None:
        raise NotFoundError(f"Workspace {workspace_id} not found")
    return workspace


def ensure_workspace(workspace_id: str, plan: Plan | str, name: str | None = None) -> Workspace:
    """The workspace with this id, created when missing (local stack seeding)."""
    existing = _workspaces().get(workspace_id)
    if existing is not None:
        return existing
    return create_workspace(name or workspace_id, plan, workspace_id)


def create_key(workspace_id: str, secret: str | None = None) -> CreatedKey:
    get_workspace(workspace_id)
    if secret is not None and not _GIVEN_KEY.match(secret):
        raise ValidationFailedError("An API key must be 'bo_' followed by at least 16 URL-safe characters")
    key = secret or generate_key()
    stored = ApiKey(
        key_id=f"key_{uuid.uuid4().hex[:20]}",
        workspace_id=workspace_id,
        key_hash=hash_key(key),
        created_at=_now(),
    )
    _keys().create(stored)
    return CreatedKey(key_id=stored.key_id, workspace_id=workspace_id, key=key, created_at=stored.created_at)


def list_keys(workspace_id: str) -> list[ApiKey]:
    return _keys().list_for_workspace(workspace_id)


def revoke_key(*, key: str | None = None, workspace_id: str | None = None, key_id: str | None = None) -> ApiKey:
    """Revoke by the plaintext key, or by workspace + key id."""
    repository = _keys()
    if key is not None:
        found = repository.get_by_hash(hash_key(key))
    elif workspace_id and key_id:
        found = next((k for k in repository.list_for_workspace(workspace_id) if k.key_id == key_id), None)
    else:
        raise ValidationFailedError("Give either the key, or the workspace and key id")
    if found is None or not repository.revoke(found.key_hash, _now()):
        raise NotFoundError("API key not found")
    return found


def authenticate(authorization: str | None) -> Caller:
    """The caller behind an `Authorization: Bearer <key>` header, or UnauthorizedError."""
    match = _BEARER.match(authorization or "")
    if not match:
        raise UnauthorizedError("Unauthorized")
    presented = hash_key(match.group(1))
    repository = _keys()
    stored = repository.get_by_hash(presented)
    if stored is None or not hmac.compare_digest(stored.key_hash, presented) or stored.revoked:
        raise UnauthorizedError("Unauthorized")
    workspace = _workspaces().get(stored.workspace_id)
    if workspace is None:
        raise UnauthorizedError("Unauthorized")
    now = _now()
    resolution = timedelta(seconds=get_settings().key_last_used_resolution_seconds)
    if stored.last_used_at is None or stored.last_used_at < now - resolution:
        repository.touch(stored.key_hash, now, now - resolution)
    return Caller(workspace_id=workspace.id, key_id=stored.key_id, plan=workspace.plan)
