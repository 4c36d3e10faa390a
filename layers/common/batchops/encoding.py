"""Request bodies: a Content-Encoding undone in bounded steps, and the JSON text every body must be.

Inflation stops as soon as the output passes the limit, so a gzip bomb (1 GB of zeros packed
into 1 MB) costs at most the limit plus one 1 MiB step of memory and is answered 413. Concatenated
gzip members are one body (RFC 1952); a truncated stream, a bad CRC or bytes after the last
member are 400 INVALID_GZIP; an encoding other than gzip, x-gzip or identity is 415.

JSON text (the one parsing path, issue 13): what cannot be a valid request on any route is 400
MALFORMED_JSON before a model sees it. `refuse_lone_surrogates` runs on every body (the resolver's
check_body); `parse_json` is the only parser of request bodies (Powertools' deserializer, and the
routes that parse their own). Refused, with I-JSON (RFC 7493) as the rule:
- a lone UTF-16 surrogate (`\ud800`-`\udfff` without its pair): not Unicode, so it has no UTF-8
  form and neither DynamoDB nor SQS can hold it, nor can pydantic answer it;
- an integer past Python's 4,300-digit limit (json.loads raises a plain ValueError that Powertools
  does not map: it was a 500);
- NaN, Infinity and -Infinity, which Python's parser takes although they are not JSON, and a number
  past a double (1e400 would become Infinity): either would be written back out as `NaN`/`Infinity`,
  which no JSON parser reads;
- nesting past Python's recursion limit.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

from batchops.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

MIB = 1024 * 1024
MAX_BODY_BYTES = 10 * MIB  # 10 MB, binary, uncompressed
STEP_BYTES = 256 * 1024  # compressed input fed per step
OUT_STEP_BYTES = MIB  # output produced per step
GZIP_MAGIC = b"\x1f\x8b"
GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
# What a JSON request body starts with (after optional whitespace and a UTF-8 BOM): every body
# batchops takes is an object or an array.
_JSON_START = frozenset(b"{[")


def too_large(limit: int = MAX_BODY_BYTES) -> PayloadTooLargeError:
    size = f"{limit // MIB}MB" if limit % MIB == 0 else f"{limit:,} bytes"
    return PayloadTooLargeError(f"Payload exceeds maximum allowed size ({size}).")


def decoded_body(raw: bytes, content_encoding: str | None, limit: int = MAX_BODY_BYTES) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > limit:
            raise too_large(limit)
        return raw
    if encoding in GZIP_ENCODINGS:
        if raw[:2] != GZIP_MAGIC and looks_like_json(raw):
            # API Gateway (REST) inflates a gzip body itself before the integration and keeps the
            # header: what arrives is already the JSON text.
            return decoded_body(raw, None, limit)
        return inflate_gzip(raw, limit)
    raise UnsupportedMediaTypeError(
        f"Content-Encoding {encoding[:40]!r} is not supported; send gzip or no encoding",
        code="UNSUPPORTED_ENCODING",
    )


def looks_like_json(raw: bytes) -> bool:
    text = raw.lstrip(b" \t\r\n")
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]
    return bool(text) and text[0] in _JSON_START


def _invalid(reason: str) -> BadRequestError:
    return BadRequestError(f"Invalid gzip body: {reason}", code="INVALID_GZIP")


def inflate_gzip(data: bytes, limit: int = MAX_BODY_BYTES) -> bytes:
    out = bytearray()
    rest = memoryview(data)
    if not rest:
        raise _invalid("empty stream")
    while rest:
        if bytes(rest[:2]) != GZIP_MAGIC:
            raise _invalid("not a gzip stream, or bytes after the last member")
        member = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer (CRC-32, length)
        pending = b""
        offset = 0
        while not member.eof:
            if not pending:
                if offset >= len(rest):
                    raise _invalid("truncated stream")
                pending = bytes(rest[offset : offset + STEP_BYTES])
                offset += len(pending)
            try:
                # At most 1 MiB per step, and never past the limit + 1 byte (enough to see it passed).
                out += member.decompress(pending, min(OUT_STEP_BYTES, limit + 1 - len(out)))
            except zlib.error as error:
                raise _invalid(str(error)) from None
            if len(out) > limit:
                raise too_large(limit)
            pending = member.unconsumed_tail
        # The member ended inside the input consumed so far; what follows starts the next one.
        consumed = offset - len(member.unused_data)
        rest = rest[consumed:]
    return bytes(out)


# ---------------------------------------------------------------- JSON text

MALFORMED_JSON = "MALFORMED_JSON"
_HEX = "[0-9a-fA-F]"
# Any \ud800-\udfff escape (a cheap first look: a literal prefix, so the regex engine skips ahead).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A high-surrogate escape directly followed by a low one: one character (an emoji, say).
_PAIR = re.compile(rf"\\u[dD][89abAB]{_HEX}{{2}}\\u[dD][c-fC-F]{_HEX}{{2}}")
# Where the first lone one is, for the message only.
_LONE = re.compile(
    rf"\\u[dD](?:[89abAB]{_HEX}{{2}}(?!\\u[dD][c-fC-F]{_HEX}{{2}})"
    rf"|(?<!\\u[dD][89abAB]{_HEX}{{2}}\\u[dD])[c-fC-F]{_HEX}{{2}})"
)
_RAW_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE_MESSAGE = (
    "Malformed JSON body: a lone UTF-16 surrogate (\\ud800-\\udfff without its pair) at character {at};"
    " JSON text must be Unicode (RFC 7493)"
)


def _malformed(detail: str = "") -> BadRequestError:
    return BadRequestError("Malformed JSON body" + (f": {detail}" if detail else ""), code=MALFORMED_JSON)


def refuse_lone_surrogates(text: str) -> None:
    """Raise 400 MALFORMED_JSON if `text` would parse to a string holding a lone surrogate: an
    unpaired escape, or a surrogate code point in the text itself (a body that reached us as a
    Python string, not as UTF-8 bytes).

    Cost on 4-6 MB bodies, measured here (docs/decisions.md, "One parsing path"): about 1-2 ms
    for UTF-8 text or text without surrogate escapes, about 10 ms when every emoji is escaped (what
    json.dumps writes by default), about 45 ms for 6 MB of nothing but escaped emoji pairs; json.loads
    of a typical 6 MB body takes 50-90 ms."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            found = _RAW_SURROGATE.search(text)
            raise _malformed_at(found.start() if found else 0) from None
    if _SURROGATE_ESCAPE.search(text) is None:
        return
    if "\\\\" in text:
        # An escaped backslash followed by `ud800` is text, not an escape. Replacing each escaped
        # backslash with two other characters leaves every real escape with exactly one backslash
        # (a run of 2n+1 backslashes keeps its last), keeps positions, and keeps an escape on
        # either side of a literal backslash from looking adjacent.
        text = text.replace("\\\\", "--")
        if _SURROGATE_ESCAPE.search(text) is None:
            return
    # Remove the pairs, then any surrogate escape left is a lone one. (One pass of C code: a
    # lookahead/lookbehind regex over every escape took twice as long on escape-heavy bodies.)
    if _SURROGATE_ESCAPE.search(_PAIR.sub("", text)) is not None:
        found = _LONE.search(text)
        raise _malformed_at(found.start() if found else 0)


def _malformed_at(position: int) -> BadRequestError:
    return BadRequestError(_LONE_MESSAGE.format(at=position), code=MALFORMED_JSON)


class _NotJson(ValueError):
    """Raised from inside json.loads by the hooks below (told apart from the parser's own errors)."""


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJson(f"the number {text[:40]} is too large for a double (at most about 1.8e308)")
    return value


def parse_json(text: str | bytes) -> Any:
    """The request body as Python values; 400 MALFORMED_JSON for anything that is not JSON a route
    could take (see the module's docstring). It does not look for lone surrogates: the resolver's
    check_body has, for every body it passes on (`refuse_lone_surrogates`).

    The float hook costs about 10% of json.loads on a typical 6 MB body (93 -> 104 ms here) and
    40% on one made only of floats; the constant hook costs nothing until a constant appears."""
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_finite)
    except _NotJson as error:
        raise _malformed(str(error)) from None
    except json.JSONDecodeError:
        raise _malformed() from None
    except RecursionError:
        raise _malformed("nested too deeply") from None
    except ValueError:
        # json.loads' only other ValueError: an integer past sys.get_int_max_str_digits().
        raise _malformed("an integer has more than 4,300 digits") from None
