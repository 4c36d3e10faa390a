"""Development API keys created at start through batchops' own service (never written by hand).

Seeding needs the domain table, so it only runs when the template's functions define
BATCHOPS_TABLE_NAME; a test template without it starts with no keys.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

DEFAULT_WORKSPACE = "dev"
DEFAULT_PLAN = "pro"
TABLE_VARIABLE = "BATCHOPS_TABLE_NAME"


@dataclass(frozen=True)
class KeySpec:
    workspace: str
    plan: str
    secret: str | None  # None: the service generates the key


@dataclass(frozen=True)
class SeededKey:
    workspace: str
    plan: str
    key: str


class _ApiKeysService(Protocol):
    """batchops.services.api_keys as the local stack uses it."""

    def ensure_workspace(self, workspace_id: str, plan: str, name: str | None = None) -> Any: ...

    def create_key(self, workspace_id: str, secret: str | None = None) -> Any: ...


def parse_key_specs(raw: str | None) -> list[KeySpec]:
    """BATCHOPS_LOCAL_API_KEYS: comma-separated workspace:plan:key; unset means one `dev` (pro)
    workspace with a random key."""
    if raw is None or not raw.strip():
        return [KeySpec(DEFAULT_WORKSPACE, DEFAULT_PLAN, None)]
    specs: list[KeySpec] = []
    for item in raw.split(","):
        parts = item.strip().split(":", 2)
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ValueError(f"BATCHOPS_LOCAL_API_KEYS: {item.strip()!r} is not workspace:plan:key")
        workspace, plan, secret = (p.strip() for p in parts)
        specs.append(KeySpec(workspace, plan, secret))
    return specs


def seed_api_keys(function_environment: Mapping[str, str], specs: list[KeySpec]) -> list[SeededKey]:
    """Create each workspace and key; os.environ must already point at the local table."""
    if TABLE_VARIABLE not in function_environment:
        return []
    service = cast(_ApiKeysService, importlib.import_module("batchops.services.api_keys"))
    seeded: list[SeededKey] = []
    for spec in specs:
        service.ensure_workspace(spec.workspace, spec.plan)
        created = service.create_key(spec.workspace, secret=spec.secret)
        seeded.append(SeededKey(spec.workspace, spec.plan, str(created.key)))
    return seeded
