"""Canonical JSON for ledger leaves: the RFC 8785 (JCS) serialization of a float-free subset.

The bytes of a leaf are hashed, so they must be reproducible by any verifier in any language.
RFC 8785 fixes everything except numbers in a way Python's ``json`` can match; numbers are where
implementations disagree (float formatting), so we accept only integers within the I-JSON safe
range (RFC 7493 §2.2) and refuse floats: amounts and durations go in as integers or strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1  # RFC 7493 §2.2: integers exactly representable everywhere


class CanonicalJsonError(ValueError):
    """A value that has no canonical JSON form here."""


def _utf16_key(key: str) -> bytes:
    # RFC 8785 §3.2.3: members are sorted by their names as UTF-16 code units.
    return key.encode("utf-16-be")


def _encode_string(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CanonicalJsonError("strings must be valid Unicode (no lone surrogates)") from e
    # ensure_ascii=False escapes exactly what RFC 8785 §3.2.2.2 escapes: '"', '\\', and the
    # control characters, using \b \t \n \f \r or lowercase \u00xx.
    return json.dumps(value, ensure_ascii=False)


def _encode(value: Any, path: str, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJsonError(f"{path}: integer outside ±(2**53 - 1), use a string")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, Mapping):
        out.append("{")
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError(f"{path}: expected string keys, got {type(key).__name__}")
            items.append((key, item))
        items.sort(key=lambda pair: _utf16_key(pair[0]))
        for position, (key, item) in enumerate(items):
            if position:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _encode(item, f"{path}.{key}", out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for position, item in enumerate(value):
            if position:
                out.append(",")
            _encode(item, f"{path}[{position}]", out)
        out.append("]")
    elif isinstance(value, float):
        raise CanonicalJsonError(f"{path}: floats are not allowed, use an integer or a string")
    else:
        raise CanonicalJsonError(
            f"{path}: expected a JSON value, got {type(value).__name__}; convert it to a string"
        )


def canonical_json(value: Any) -> bytes:
    """UTF-8 bytes of the canonical JSON form of ``value`` (RFC 8785, integers only)."""
    if type(value) is dict and _flat(value):
        # Most of what the platform hashes is one flat object; json's C encoder writes it
        # exactly as ``_encode`` would (a unit test compares the two).
        try:
            return _FLAT_ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError as e:
            raise CanonicalJsonError("strings must be valid Unicode (no lone surrogates)") from e
    out: list[str] = []
    _encode(value, "$", out)
    return "".join(out).encode("utf-8")


# ensure_ascii=False escapes what RFC 8785 escapes (see ``_encode_string``); sort_keys orders by
# code point, which is the UTF-16 order RFC 8785 asks for as long as every key is ASCII.
_FLAT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _flat(value: dict[Any, Any]) -> bool:
    """Whether ``value`` is an object of ASCII names and plain strings, integers in range,
    booleans and nulls, which the fast path writes (exact types: a ``StrEnum`` goes the long
    way, as ``_encode`` defines it)."""
    for key, item in value.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            continue
        return False
    return True


def parse_canonical(data: bytes) -> Any:
    """Parse JSON and insist it is in canonical form, so that no byte can change unnoticed.

    Any single changed byte either breaks the JSON, changes a value, or leaves a non-canonical
    encoding; this rejects all three.
    """
    try:
        value = json.loads(data.decode("utf-8"), parse_float=_refuse_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CanonicalJsonError(f"not valid UTF-8 JSON: {e}") from e
    if canonical_json(value) != data:
        raise CanonicalJsonError("JSON is not in canonical form (RFC 8785)")
    return value


def _refuse_float(text: str) -> Any:
    raise CanonicalJsonError(f"floats are not allowed, got {text}")
