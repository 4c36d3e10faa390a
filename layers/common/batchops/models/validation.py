"""Plain-English descriptions of pydantic validation errors, shared by per-item and
per-request reporting so both speak the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def field_path(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def describe(error: Mapping[str, Any], *, field: str | None = None) -> str:
    """One error as `<field> <problem>`, e.g. `correlationId is required`."""
    name = field if field is not None else field_path(error.get("loc", ()))
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"{name} is required"
    if kind == "extra_forbidden":
        return f"{name} is not allowed (put extra data in metadata)"
    if kind == "enum":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ").replace("'", "")
        return f"{name} must be one of {expected}"
    if kind == "string_type":
        return f"{name} must be a string"
    if kind == "string_too_short":
        return f"{name} must be at least {ctx.get('min_length', 1)} characters"
    if kind == "string_too_long":
        return f"{name} must be at most {ctx.get('max_length')} characters"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"{name} must be an object"
    if kind == "list_type":
        return f"{name} must be an array"
    if kind == "too_short":
        return f"{name} must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"{name} must have at most {ctx.get('max_length')} items"
    if kind == "value_error":
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        return f"{name} {message}"
    if kind == "string_pattern_mismatch":
        return f"{name} must match {ctx.get('pattern')}"
    if kind.startswith(("datetime_", "timezone_")):
        return f"{name} must be an ISO 8601 date-time"
    if kind.startswith(("int_", "greater_than", "less_than")):
        message = str(error.get("msg", "is invalid"))
        return f"{name} {message[0].lower()}{message[1:]}"
    message = str(error.get("msg", "is invalid"))
    return f"{name} {message[0].lower()}{message[1:]}"


def describe_all(errors: Iterable[Mapping[str, Any]]) -> str:
    return "; ".join(describe(e) for e in errors)


# What validators check, as JSON Schema patterns for the OpenAPI document (the validators stay the
# one source of truth; a generated client or fuzzer learns from these what the server takes).
# Text a client names things with: no control characters.
TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
# Five fields (minute hour day month weekday), as `_check_cron` splits them.
CRON_PATTERN = "^ *[^\\s\\u0000-\\u001f\\u007f]+( +[^\\s\\u0000-\\u001f\\u007f]+){4} *$"
# http or https (any case), no whitespace or control characters; which hosts are refused (private,
# loopback, link-local) depends on DNS, which no pattern can say: the description does.
HTTP_URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s\\u0000-\\u001f\\u007f/?#@]+([/?#][^\\s\\u0000-\\u001f\\u007f]*)?$"
