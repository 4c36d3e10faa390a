"""Reading the JSON files commands take (a path, or - for stdin)."""

from __future__ import annotations

import json
from typing import IO, Any, Optional

import click

from batchops_client.cli.output import InputError

# A path that must exist and be readable, or - for stdin: click says why otherwise (exit 2).
JSON_FILE = click.File("r", encoding="utf-8")


def read_json(source: IO[str], what: str = "a JSON document") -> Any:
    try:
        return json.load(source)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{_name(source)}: not {what}: {error}") from error


def read_object(source: IO[str]) -> dict[str, Any]:
    value = read_json(source, "a JSON object")
    if not isinstance(value, dict):
        raise InputError(f"{_name(source)}: expected a JSON object, got {type(value).__name__}")
    return value


def parse_json_option(value: Optional[str], option: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise InputError(f"{option}: not JSON: {error}") from error


def _name(source: IO[str]) -> str:
    name = getattr(source, "name", "-")
    return "stdin" if name in ("-", "<stdin>") else str(name)
