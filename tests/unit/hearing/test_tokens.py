"""Join tokens: signed, expiring, bound to hearing + participant + role."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from yunting.hearing.errors import InvalidTokenError
from yunting.hearing.model import Grants, Role
from yunting.hearing.tokens import (
    MAX_TOKEN_LENGTH,
    JoinClaims,
    decode_join_token,
    derive_key,
    encode_join_token,
    new_jti,
)

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
KEY = derive_key("a-test-secret-of-enough-length-0123456789", "join-token")


def claims(**overrides: object) -> JoinClaims:
    base: dict[str, object] = {
        "jti": new_jti(),
        "hearing_id": uuid.uuid4(),
        "participant_id": uuid.uuid4(),
        "role": Role.WITNESS,
        "grants": Grants.for_role(Role.WITNESS),
        "issued_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    }
    base.update(overrides)
    return JoinClaims(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_every_claim() -> None:
    original = claims()
    decoded = decode_join_token(encode_join_token(original, key=KEY), key=KEY, now=NOW)
    assert decoded == original


def _reencode_payload(token: str, change: dict[str, object]) -> str:
    prefix, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(change)
    new_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode("ascii")
    return f"{prefix}.{new_body}.{sig}"


@pytest.mark.parametrize(
    "change",
    [
        {"role": "judge"},
        {"g": {"pub": True, "sub": True, "ctl": True}},
        {"hid": str(uuid.uuid4())},
        {"exp": 4_000_000_000},
    ],
)
def test_tampered_payload_is_refused(change: dict[str, object]) -> None:
    token = _reencode_payload(encode_join_token(claims(), key=KEY), change)
    with pytest.raises(InvalidTokenError) as info:
        decode_join_token(token, key=KEY, now=NOW)
    assert info.value.reason == "bad_signature"


def test_flipped_signature_byte_is_refused() -> None:
    token = encode_join_token(claims(), key=KEY)
    last = token[-2]
    flipped = token[:-2] + ("A" if last != "A" else "B") + token[-1]
    with pytest.raises(InvalidTokenError) as info:
        decode_join_token(flipped, key=KEY, now=NOW)
    assert info.value.reason == "bad_signature"


def test_other_key_or_purpose_is_refused() -> None:
    token = encode_join_token(claims(), key=KEY)
    for key in (
        derive_key("another-secret-of-enough-length-0123456789", "join-token"),
        derive_key("a-test-secret-of-enough-length-0123456789", "session"),
    ):
        with pytest.raises(InvalidTokenError):
            decode_join_token(token, key=key, now=NOW)


def test_expiry_is_exclusive() -> None:
    c = claims(expires_at=NOW + timedelta(seconds=10))
    token = encode_join_token(c, key=KEY)
    decode_join_token(token, key=KEY, now=NOW + timedelta(seconds=9))
    with pytest.raises(InvalidTokenError) as info:
        decode_join_token(token, key=KEY, now=NOW + timedelta(seconds=10))
    assert info.value.reason == "expired"


@pytest.mark.parametrize(
    "token",
    ["", "yt1", "yt1.a", "yt2.abc.def", "yt1.a.b.c", "yt1.@@@.###", "x" * (MAX_TOKEN_LENGTH + 1)],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError) as info:
        decode_join_token(token, key=KEY, now=NOW)
    assert info.value.reason in {"malformed", "bad_signature"}
