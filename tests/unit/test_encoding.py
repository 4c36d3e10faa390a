"""Bounded inflation of gzip request bodies (seed 004): a real gzip bomb, concatenated members,
corrupt streams, encodings and the 10 MB limit."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from batchops.encoding import MAX_BODY_BYTES, decoded_body, inflate_gzip
from batchops.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """1 GiB of zeros in about 1 MB of gzip, built in steps (never 1 GiB in memory)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join([squeeze.compress(zeros) for _ in range(1024)] + [squeeze.flush()])


def test_a_gzip_bomb_is_refused_without_inflating_it(bomb):
    assert len(bomb) < 1_100_000
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLargeError) as refused:
            inflate_gzip(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.message == "Payload exceeds maximum allowed size (10MB)."
    assert peak < MAX_BODY_BYTES + 4 * 1024 * 1024  # the limit and one step, not a gigabyte


def test_up_to_the_limit_inflates_and_one_byte_more_does_not():
    exact = b"a" * MAX_BODY_BYTES
    assert inflate_gzip(gzip.compress(exact)) == exact
    with pytest.raises(PayloadTooLargeError):
        inflate_gzip(gzip.compress(exact + b"a"))


def test_concatenated_members_are_one_body():
    assert inflate_gzip(gzip.compress(b'[{"a":1},') + gzip.compress(b'{"b":2}]')) == b'[{"a":1},{"b":2}]'
    many = b"".join(gzip.compress(bytes([65 + n]) * 1000) for n in range(20))
    assert inflate_gzip(many) == b"".join(bytes([65 + n]) * 1000 for n in range(20))


def test_the_limit_counts_all_members_together():
    half = gzip.compress(b"x" * (MAX_BODY_BYTES // 2 + 1))
    with pytest.raises(PayloadTooLargeError):
        inflate_gzip(half + half)


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        (gzip.compress(b'{"a": 1}', mtime=0)[:-6], "truncated"),
        (
            gzip.compress(b'{"a": 1}', mtime=0)[:-8] + b"\x00\x00\x00\x00" + gzip.compress(b'{"a": 1}', mtime=0)[-4:],
            "bad CRC",
        ),
        (gzip.compress(b'{"a": 1}', mtime=0) + b"trailing garbage", "trailing garbage"),
        (b"not gzip at all", "not gzip"),
        (b"", "empty"),
        (gzip.compress(b"x" * 100_000, mtime=0)[:40], "cut in the deflate data"),
    ],
)
def test_corrupt_streams_are_400(stream, why):
    with pytest.raises(BadRequestError) as refused:
        inflate_gzip(stream)
    assert refused.value.code == "INVALID_GZIP", why


def test_encodings():
    body = b'[{"event":"e"}]'
    assert decoded_body(body, None) == body
    assert decoded_body(body, "identity") == body
    assert decoded_body(gzip.compress(body), "gzip") == body
    assert decoded_body(gzip.compress(body), " X-GZIP ") == body
    for other in ("br", "deflate", "compress", "gzip, br"):
        with pytest.raises(UnsupportedMediaTypeError) as refused:
            decoded_body(body, other)
        assert refused.value.code == "UNSUPPORTED_ENCODING"


def test_uncompressed_bodies_over_10_mb_are_413():
    assert len(decoded_body(b"x" * MAX_BODY_BYTES, None)) == MAX_BODY_BYTES
    with pytest.raises(PayloadTooLargeError):
        decoded_body(b"x" * (MAX_BODY_BYTES + 1), None)
