"""Join tokens: signed, expiring, bound to hearing + participant + role, carrying grants.

Format: ``yt1.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>``. Pure functions, no I/O;
revocation is checked by the service against the ``join_tokens`` table (the ``jti``).
The secret is derived from the settings' secret key with a purpose label, so a session cookie
signature can never be replayed as a join token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from yunting.hearing.errors import InvalidTokenError
from yunting.hearing.model import Grants, Role

TOKEN_PREFIX = "yt1"  # noqa: S105 - a format tag, not a secret
# Tokens travel in URLs and SMS; anything longer than this is not one of ours.
MAX_TOKEN_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class JoinClaims:
    jti: str
    hearing_id: UUID
    participant_id: UUID
    role: Role
    grants: Grants
    issued_at: datetime
    expires_at: datetime


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"yunting:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_jti() -> str:
    return secrets.token_urlsafe(18)


def encode_join_token(claims: JoinClaims, *, key: bytes) -> str:
    """Serialise and sign ``claims``."""
    payload = {
        "jti": claims.jti,
        "hid": str(claims.hearing_id),
        "pid": str(claims.participant_id),
        "role": claims.role.value,
        "g": {
            "pub": claims.grants.may_publish,
            "sub": claims.grants.may_subscribe,
            "ctl": claims.grants.may_control,
        },
        "iat": int(claims.issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{TOKEN_PREFIX}.{body}".encode()
    signature = _b64(hmac.new(key, signing_input, hashlib.sha256).digest())
    return f"{TOKEN_PREFIX}.{body}.{signature}"


def decode_join_token(token: str, *, key: bytes, now: datetime) -> JoinClaims:
    """Check the signature and expiry of ``token`` and return its claims.

    Raises ``InvalidTokenError`` with ``reason`` one of: malformed, bad_signature, expired.
    Revocation is the caller's check (it needs the database).
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError("join token is too long", reason="malformed")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise InvalidTokenError("not a Yunting join token", reason="malformed")
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(key, signing_input, hashlib.sha256).digest()
    try:
        given = _unb64(parts[2])
    except (binascii.Error, ValueError) as e:
        raise InvalidTokenError("join token signature is malformed", reason="malformed") from e
    # Constant-time comparison: no timing oracle on the signature.
    if not hmac.compare_digest(expected, given):
        raise InvalidTokenError("join token signature does not match", reason="bad_signature")
    try:
        payload = json.loads(_unb64(parts[1]))
        grants = payload["g"]
        claims = JoinClaims(
            jti=str(payload["jti"]),
            hearing_id=UUID(payload["hid"]),
            participant_id=UUID(payload["pid"]),
            role=Role(payload["role"]),
            grants=Grants(
                may_publish=bool(grants["pub"]),
                may_subscribe=bool(grants["sub"]),
                may_control=bool(grants["ctl"]),
            ),
            issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (ValueError, KeyError, TypeError) as e:
        # Signed by us but unreadable: only possible across an incompatible upgrade.
        raise InvalidTokenError("join token payload is malformed", reason="malformed") from e
    if now >= claims.expires_at:
        raise InvalidTokenError(
            "join token has expired", reason="expired", participant_id=claims.participant_id
        )
    return claims
