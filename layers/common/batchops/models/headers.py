"""HTTP header fields clients give batchops to send or forward, checked as RFC 9110 allows them.

A name is a token (RFC 9110 5.1); a value is a field-value (5.5): visible ASCII and obs-text
(the Latin-1 bytes 0x80-0xFF), with spaces and tabs only between other characters. So no CR, LF,
NUL or other control character (header injection), nothing past Latin-1 (it has no byte to be
sent as), and no space or tab at either end (h11, under httpx, refuses those). These are h11's own
rules, so every header accepted here is one the run worker can send; anything else is refused
when it is given, naming the header, instead of failing every run later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_VISIBLE = "\\x21-\\x7e\\x80-\\xff"
_FIELD_VALUE = re.compile(f"(?:[{_VISIBLE}]+(?:[ \\t]+[{_VISIBLE}]+)*)?")
_NOT_ALLOWED = re.compile(f"[^{_VISIBLE} \\t]")


def header_problem(name: str, value: str) -> str | None:
    """Why `name: value` is not a header HTTP can carry, or None when it is."""
    shown = repr(name[:40])
    if not _TOKEN.fullmatch(name):
        return f"header {shown}: a header name is a token of letters, digits and !#$%&'*+-.^_`|~ (RFC 9110)"
    if _FIELD_VALUE.fullmatch(value):
        return None
    found = _NOT_ALLOWED.search(value)
    if found is not None:
        return (
            f"header {shown}: {found.group()!r} at position {found.start()} cannot be sent; a value holds"
            " visible ASCII, Latin-1 letters, spaces and tabs, and no CR, LF or other control character"
        )
    return f"header {shown}: a value must not start or end with a space or tab"


def check_header_fields(headers: Mapping[str, str]) -> None:
    """Raise ValueError (a pydantic validation error, with the field) for the first header HTTP
    cannot carry."""
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise ValueError(problem)
