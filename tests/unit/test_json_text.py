"""The one parsing path for request bodies (batchops/encoding.py): JSON text that cannot be a valid
request anywhere is 400 MALFORMED_JSON before any model sees it.

Refused: lone UTF-16 surrogates (an unpaired `\\ud800`-`\\udfff` escape, or a raw surrogate code
point), integers past Python's 4,300-digit limit, the NaN/Infinity literals Python's parser takes
although they are not JSON, numbers too large for a double (1e400 would become Infinity), and
nesting past the recursion limit. A surrogate pair sent as two escapes is one character and is kept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchops.encoding import parse_json, refuse_lone_surrogates
from batchops.errors import BadRequestError


def refused(text: str) -> BadRequestError:
    with pytest.raises(BadRequestError) as caught:
        refuse_lone_surrogates(text)
    assert caught.value.code == "MALFORMED_JSON"
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        r'{"a": "\ud800"}',
        r'{"a": "x\udfff"}',
        r'{"\udc00": 1}',
        r'["\ud83d"]',  # half an emoji
        r'["\ude00\ud83d"]',  # the halves in the wrong order
        r'["\ud83d\ud83d\ude00"]',  # a high, then a pair
        r'["\ud83d\ude00\ude00"]',  # a pair, then a low
        r'["\ud83d \ude00"]',  # not adjacent
        r'["\ud83d\\\ude00"]',  # a literal backslash between the halves
        r'["\\\ud800"]',  # an escaped backslash, then a real escape
        r'["\\\\\\\udBfF"]',  # three escaped backslashes, then a real escape (any case)
        '["\ud800"]',  # a raw surrogate code point, not an escape
        '{"k": "\udfff"}',
    ],
)
def test_lone_surrogates_are_malformed_json(text: str) -> None:
    error = refused(text)
    assert "lone UTF-16 surrogate" in error.message


@pytest.mark.parametrize(
    "text",
    [
        r'{"a": "\ud83d\ude00"}',  # a pair: one emoji
        r'{"a": "\uD83D\uDE00"}',
        r'["\\ud800"]',  # an escaped backslash followed by the letters ud800: no escape at all
        r'["\\\\ud800", "\\udc00"]',
        r'["\\\ud83d\ude00"]',  # an escaped backslash, then a pair
        '{"a": "plain \u00e9 \u6771 \U0001f600"}',
        r'{"a": "\u00e9\u6771"}',
        "",
    ],
)
def test_pairs_and_text_that_only_looks_like_an_escape_pass(text: str) -> None:
    refuse_lone_surrogates(text)


# Strings of the characters that matter here: surrogates (lone or paired when adjacent),
# backslashes and the letters of an escape, and any other character.
_tricky = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\\", "u", "d", "8", "c", "\ud83d", "\ude00", "\ud800", "\udfff", "a", '"']),
        st.characters(),
    ),
    max_size=12,
)


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@settings(max_examples=300, derandomize=True)
@given(st.lists(_tricky, max_size=4), st.booleans())
def test_the_scan_agrees_with_what_the_parser_makes_of_the_text(strings: list[str], ascii_only: bool) -> None:
    # The reference: parse the text and see whether a lone surrogate is left in what came out
    # (the parser joins an escaped pair into one character).
    text = json.dumps(strings, ensure_ascii=ascii_only)
    lone = _has_lone_surrogate(json.loads(text))
    if lone:
        refused(text)
    else:
        refuse_lone_surrogates(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"n": ' + "1" * 4301 + "}", "4,300 digits"),
        ('{"n": -' + "9" * 5000 + "}", "4,300 digits"),
        ('{"n": NaN}', "NaN"),
        ('{"n": Infinity}', "Infinity"),
        ('{"n": [-Infinity]}', "-Infinity"),
        ('{"n": 1e400}', "too large"),
        ('{"n": -1.5e309}', "too large"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("{not json", "Malformed JSON body"),
        ('{"a": 1} x', "Malformed JSON body"),
    ],
)
def test_what_no_route_can_take_is_refused_where_the_body_is_parsed(text: str, says: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_json(text)
    assert caught.value.code == "MALFORMED_JSON"
    assert says in caught.value.message


def test_numbers_a_double_or_an_int_can_hold_are_kept() -> None:
    text = '{"big": ' + "9" * 4300 + ', "tiny": 1e-400, "max": 1.7976931348623157e308, "pair": "\\ud83d\\ude00"}'
    parsed = parse_json(text)
    assert parsed["big"] == int("9" * 4300)
    assert parsed["tiny"] == 0.0 and parsed["max"] == 1.7976931348623157e308
    assert parsed["pair"] == "\U0001f600"
