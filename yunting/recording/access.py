"""Who besides court staff may open a hearing's record, and the pass that keeps it open to them.

The court decides per hearing (``Hearing.recording_shared``); then the parties and their counsel,
not witnesses, interpreters or the public, may see it once the hearing is closed and after each
proves who they are with a one-time code. The pass is a short-lived, signed value bound to the
participant and the hearing; the share itself is checked on every request, so withdrawing it
takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from yunting.hearing.model import (
    RECORD_VIEWER_ROLES,
    Hearing,
    HearingState,
    Participant,
    ParticipantState,
)
from yunting.hearing.tokens import read_signed_value, sign_value


class Refusal(StrEnum):
    """Why a participant may not open the record (shown to them in words)."""

    NOT_SHARED = "not_shared"
    NOT_CLOSED = "not_closed"
    ROLE = "role"
    REMOVED = "removed"


def refusal(hearing: Hearing, participant: Participant) -> Refusal | None:
    """``None`` when ``participant`` may open ``hearing``'s record, else why not."""
    if participant.role not in RECORD_VIEWER_ROLES:
        return Refusal.ROLE
    if participant.state is ParticipantState.REMOVED:
        return Refusal.REMOVED
    if not hearing.recording_shared:
        return Refusal.NOT_SHARED
    # The record is complete (and sealed) only after the hearing closed.
    if hearing.state is not HearingState.CLOSED:
        return Refusal.NOT_CLOSED
    return None


@dataclass(frozen=True, slots=True)
class RecordPass:
    participant_id: UUID
    hearing_id: UUID
    expires_at: datetime


def issue_pass(key: bytes, record_pass: RecordPass) -> str:
    return sign_value(
        key,
        {
            "p": str(record_pass.participant_id),
            "h": str(record_pass.hearing_id),
            "exp": int(record_pass.expires_at.timestamp()),
        },
    )


def read_pass(key: bytes, value: str, *, now: datetime) -> RecordPass | None:
    """The pass in ``value`` if its signature is ours and it has not expired, else ``None``."""
    data = read_signed_value(key, value)
    if data is None:
        return None
    try:
        found = RecordPass(
            participant_id=UUID(str(data["p"])),
            hearing_id=UUID(str(data["h"])),
            expires_at=datetime.fromtimestamp(int(str(data["exp"])), UTC),
        )
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return None
    return found if now < found.expires_at else None
