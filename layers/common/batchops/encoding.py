"""Request bodies sent with a Content-Encoding (seed 004): gzip inflated in bounded steps.

Inflation stops as soon as the output passes the limit, so a gzip bomb (1 GB of zeros packed
into 1 MB) costs at most the limit plus one 1 MiB step of memory and is answered 413. Concatenated
gzip members are one body (RFC 1952); a truncated stream, a bad CRC or bytes after the last
member are 400 INVALID_GZIP; an encoding other than gzip, x-gzip or identity is 415.
"""

from __future__ import annotations

import zlib

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
