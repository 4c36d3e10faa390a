"""Workspaces and their API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from batchops.models.base import Model
from batchops.models.common import Plan

WORKSPACE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class Workspace(Model):
    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=WORKSPACE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    plan: Plan
    created_at: datetime


class ApiKey(Model):
    """A stored key: only the SHA-256 of the secret is ever kept."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    workspace_id: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class CreatedKey(Model):
    """What `create_key` returns: the plaintext key, shown this once."""

    key_id: str
    workspace_id: str
    key: str
    created_at: datetime
