"""Canonical JSON (RFC 8785) for leaves: examples from the RFC, and strict parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunting.infra.ledger.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalJsonError,
    _encode,
    canonical_json,
    parse_canonical,
)


def test_rfc8785_member_sorting_example() -> None:
    # RFC 8785 §3.2.3: names are sorted as UTF-16 code units, so the emoji (a surrogate pair,
    # 0xD83D...) comes before U+FB33 although its code point is larger.
    value = json.loads(
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", '
        '"\\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", '
        '"\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", '
        '"\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    keys = list(json.loads(canonical_json(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc8785_string_and_literal_example() -> None:
    # RFC 8785 §3.2.2 sample input, without its "numbers" member (we accept no floats).
    value = json.loads(
        r'{"string": "\u20ac$\u000F\u000aA' + "'" + r'\u0042\u0022\u005c\\\"\/", '
        r'"literals": [null, true, false]}'
    )
    expected = '{"literals":[null,true,false],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonical_json(value) == expected.encode("utf-8")


def test_chinese_text_is_kept_as_utf8() -> None:
    assert canonical_json({"法院": "杭州互联网法院"}) == '{"法院":"杭州互联网法院"}'.encode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"amount": 1.5}, "floats are not allowed"),
        ({"big": 2**53}, "outside"),
        ({1: "x"}, "string keys"),
        ({"when": object()}, "expected a JSON value"),
        ({"bad": "\ud800"}, "lone surrogates"),
    ],
)
def test_values_without_a_canonical_form_are_refused(value: object, message: str) -> None:
    with pytest.raises(CanonicalJsonError, match=message):
        canonical_json(value)


def test_parse_canonical_round_trips() -> None:
    data = canonical_json({"b": [1, "二", None], "a": {"y": True, "x": -3}})
    assert parse_canonical(data) == {"a": {"x": -3, "y": True}, "b": [1, "二", None]}


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1}',  # whitespace
        b'{"b":1,"a":2}',  # member order
        b'{"a":1,"a":1}',  # duplicate member
        b'{"a":"\\u0041"}',  # needless escape
        b'{"a":1.0}',  # float
        b'{"a":1',  # broken
        b'{"a":"\xff"}',  # not UTF-8
    ],
)
def test_parse_canonical_rejects_anything_else(text: bytes) -> None:
    with pytest.raises(CanonicalJsonError):
        parse_canonical(text)


def test_every_single_byte_change_is_rejected_or_changes_the_value() -> None:
    original = canonical_json({"leaf_index": 42, "audit_path": ["q6yroA==", "XcnaeQ=="]})
    value = parse_canonical(original)
    for position in range(len(original)):
        for delta in (1, 0x20):
            changed = bytearray(original)
            changed[position] ^= delta
            try:
                parsed = parse_canonical(bytes(changed))
            except CanonicalJsonError:
                continue
            assert parsed != value, f"byte {position} changed without notice"


def _long_way(value: object) -> bytes:
    out: list[str] = []
    _encode(value, "$", out)
    return "".join(out).encode("utf-8")


_SCALARS = st.one_of(
    st.text(),  # every character, incl. controls, quotes, CJK and astral ones
    st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
    st.booleans(),
    st.none(),
)


@given(
    st.dictionaries(
        st.one_of(st.text(st.characters(max_codepoint=127)), st.text()), _SCALARS, max_size=8
    )
)
def test_a_flat_object_is_written_as_the_general_encoder_writes_it(
    value: dict[str, object],
) -> None:
    # Non-ASCII names take the general path; ASCII ones the fast one. Both must agree with it.
    try:
        expected = _long_way(value)
    except CanonicalJsonError:
        with pytest.raises(CanonicalJsonError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"big": 2**53}, "outside"),
        ({"small": -(2**53)}, "outside"),
        ({"amount": 0.5}, "floats are not allowed"),
        ({"bad": "a\udc00b"}, "lone surrogates"),
    ],
)
def test_a_flat_object_without_a_canonical_form_is_refused(value: object, message: str) -> None:
    with pytest.raises(CanonicalJsonError, match=message):
        canonical_json(value)


def test_control_characters_and_quotes_in_a_flat_object() -> None:
    value = {"b": 'say "hi"\\\n\t\x01\x7f', "a": 1, "c": None, "d": False, "e": "法院"}
    assert (
        canonical_json(value)
        == (
            '{"a":1,"b":"say \\"hi\\"\\\\\\n\\t\\u0001\x7f","c":null,"d":false,"e":"法院"}'
        ).encode()
    )
