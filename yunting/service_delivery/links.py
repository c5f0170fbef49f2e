"""The recipient's link (``/s/<token>``): unguessable, bound to one attempt, and rebuilt by any
worker from the attempt id alone (nothing secret is stored: the token is the attempt id and an
HMAC of it under the server's key)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from yunting.hearing.tokens import b64url, read_signed_value, sign_value, unb64url

# 128 bits of MAC: guessing a valid link is as hard as guessing a random 128-bit key.
_MAC_BYTES = 16
TOKEN_LENGTH = 22 + 1 + 22


def _mac(key: bytes, attempt_id: UUID) -> bytes:
    return hmac.new(key, b"service-link:" + attempt_id.bytes, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: bytes, attempt_id: UUID) -> str:
    return f"{b64url(attempt_id.bytes)}.{b64url(_mac(key, attempt_id))}"


def read_token(key: bytes, token: str) -> UUID | None:
    """The attempt a token was made for, or ``None`` for anything we did not make."""
    if len(token) != TOKEN_LENGTH or not token.isascii() or token[22] != ".":
        return None
    try:
        raw_id = unb64url(token[:22])
        mac = unb64url(token[23:])
        attempt_id = UUID(bytes=raw_id)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _mac(key, attempt_id)):
        return None
    return attempt_id


# The recipient's pass -------------------------------------------------------------------------
# After the identity check on the page, a short-lived signed value (an HttpOnly cookie scoped to
# the link's path) keeps the document open to the recipient. It names the attempt (the link) and
# the recipient, so it opens that link only, and how the recipient proved who they are, so every
# access recorded with it says so. Nothing is stored server-side: the signature is the proof.


class IdentityMethod(StrEnum):
    """How the recipient proved who they are on the page (recorded with every access)."""

    OTP_EMAIL = "otp_email"  # a one-time code sent to their email address
    OTP_SMS = "otp_sms"  # a one-time code sent to their mobile number
    ID_DIGITS = "id_digits"  # the last four characters of their ID number


@dataclass(frozen=True, slots=True)
class RecipientPass:
    attempt_id: UUID
    recipient_id: UUID
    method: IdentityMethod
    expires_at: datetime


# Signed for this context alone: a value made for another purpose never reads as a pass.
_PASS_CONTEXT = b"service-pass:"


def issue_pass(key: bytes, recipient_pass: RecipientPass) -> str:
    """The cookie value for ``recipient_pass``: base64url(JSON) "." base64url(HMAC-SHA256)."""
    return sign_value(
        key,
        {
            "a": str(recipient_pass.attempt_id),
            "r": str(recipient_pass.recipient_id),
            "m": recipient_pass.method.value,
            "exp": int(recipient_pass.expires_at.timestamp()),
        },
        context=_PASS_CONTEXT,
    )


def read_pass(key: bytes, value: str, *, now: datetime) -> RecipientPass | None:
    """The pass in ``value`` if its signature is ours and it has not expired, else ``None``."""
    data = read_signed_value(key, value, context=_PASS_CONTEXT)
    if data is None:
        return None
    try:
        found = RecipientPass(
            attempt_id=UUID(str(data["a"])),
            recipient_id=UUID(str(data["r"])),
            method=IdentityMethod(str(data["m"])),
            expires_at=datetime.fromtimestamp(int(str(data["exp"])), UTC),
        )
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return None
    return found if now < found.expires_at else None
