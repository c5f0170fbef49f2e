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


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648 §5), as in JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# A signed value is kept short: it travels as a cookie. A longer value is not one we made.
SIGNED_VALUE_MAX_LENGTH = 512


def sign_value(key: bytes, data: dict[str, object], *, context: bytes = b"") -> str:
    """``data`` as base64url(canonical JSON) "." base64url(HMAC-SHA256 over ``context`` and the
    payload): a short-lived pass the server keeps nothing for (the signature is the proof)."""
    body = json.dumps(data, separators=(",", ":"), sort_keys=True)
    payload = b64url(body.encode())
    return f"{payload}.{_value_mac(key, payload, context)}"


def read_signed_value(key: bytes, value: str, *, context: bytes = b"") -> dict[str, object] | None:
    """The JSON object in ``value`` if it is short ASCII (whatever a browser sends) signed by
    ``key`` for ``context``, else ``None``."""
    payload, dot, mac = value.partition(".")
    if not dot or len(value) > SIGNED_VALUE_MAX_LENGTH or not value.isascii():
        return None
    if not hmac.compare_digest(mac, _value_mac(key, payload, context)):
        return None
    try:
        data = json.loads(unb64url(payload))
    except (ValueError, binascii.Error):
        return None
    return data if isinstance(data, dict) else None


def _value_mac(key: bytes, payload: str, context: bytes) -> str:
    return b64url(hmac.new(key, context + payload.encode("ascii"), hashlib.sha256).digest())


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
    body = b64url(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{TOKEN_PREFIX}.{body}".encode()
    signature = b64url(hmac.new(key, signing_input, hashlib.sha256).digest())
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
        given = unb64url(parts[2])
    except (binascii.Error, ValueError) as e:
        raise InvalidTokenError("join token signature is malformed", reason="malformed") from e
    # Constant-time comparison: no timing oracle on the signature.
    if not hmac.compare_digest(expected, given):
        raise InvalidTokenError("join token signature does not match", reason="bad_signature")
    try:
        payload = json.loads(unb64url(parts[1]))
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
