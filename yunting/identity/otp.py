"""One-time codes: the pure rules (no I/O, no clock of its own).

A code is six digits from the OS's CSPRNG, stored only as an HMAC bound to its purpose and
subject (so a database reader cannot use it, and a code issued for one participant is worthless
for another). A code dies when used, when it expires, or after ``MAX_ATTEMPTS`` wrong tries;
issuing is rate-limited per subject. The verdicts are distinct (wrong, expired, used, locked) so
the person is told what to do; none of them reveals anything about the code itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(seconds=60)
MAX_CODES_PER_HOUR = 5


class OtpPurpose(StrEnum):
    JOIN_HEARING = "join_hearing"
    SERVICE_ACCESS = "service_access"
    OPEN_RECORD = "open_record"


class Verdict(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"
    LOCKED = "locked"  # too many wrong tries on this code: ask for a new one


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """What is stored about one issued code."""

    code_hash: str
    expires_at: datetime
    attempts: int
    consumed_at: datetime | None


def generate_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(key: bytes, *, purpose: OtpPurpose, subject: str, code: str) -> str:
    message = f"{purpose}\x00{subject}\x00{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def normalise(code: str) -> str:
    """People type codes with spaces or full-width digits (e.g. from a Chinese IME)."""
    translated = code.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    return "".join(ch for ch in translated if not ch.isspace() and ch != "-")


def judge(
    record: CodeRecord,
    *,
    key: bytes,
    purpose: OtpPurpose,
    subject: str,
    code: str,
    now: datetime,
) -> Verdict:
    """Decide a verification attempt. The caller stores ``attempts + 1`` on WRONG."""
    if record.consumed_at is not None:
        return Verdict.USED
    if record.attempts >= MAX_ATTEMPTS:
        return Verdict.LOCKED
    if now >= record.expires_at:
        return Verdict.EXPIRED
    candidate = normalise(code)
    if len(candidate) != CODE_DIGITS or not candidate.isdigit():
        return Verdict.WRONG
    expected = hash_code(key, purpose=purpose, subject=subject, code=candidate)
    if hmac.compare_digest(expected, record.code_hash):
        return Verdict.OK
    return Verdict.WRONG


def issue_refusal(
    *, recent_issue_times: list[datetime], now: datetime
) -> tuple[str, datetime] | None:
    """Whether a new code may be sent now; if not, why and when it may.

    ``recent_issue_times``: when codes were issued for this subject in the last hour.
    """
    hour_ago = now - timedelta(hours=1)
    recent = sorted(t for t in recent_issue_times if t > hour_ago)
    if recent and now - recent[-1] < RESEND_AFTER:
        return "too_soon", recent[-1] + RESEND_AFTER
    if len(recent) >= MAX_CODES_PER_HOUR:
        return "too_many", recent[-MAX_CODES_PER_HOUR] + timedelta(hours=1)
    return None
