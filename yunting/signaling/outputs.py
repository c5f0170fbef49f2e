"""What the room hands back to its adapter: frames to send, closes, and commands.

Commands need the database or the media node; the core never performs them. The adapter runs each
``Command`` through ``HearingService`` and reports the result with ``Room.on_committed``; until
then the room has not changed and has told nobody (DESIGN.md, "Hearing lifecycle": state changes
with legal weight are recorded before they are announced).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from yunting.hearing.model import HearingAction, HearingState, ParticipantState, Permission
from yunting.signaling.messages import IceCandidate, MediaStart, Outgoing, SdpAnswer


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` (``messages.encode`` it) on connection ``conn_id``."""

    conn_id: str
    message: Outgoing


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn_id``. The room has already forgotten it: do not call disconnect."""

    conn_id: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyToken:
    """Check the join token of ``hello`` (signature, expiry, revocation), then call
    ``Room.connect`` with the claims or ``Room.reject`` with the refusal reason."""

    conn_id: str
    token: str


# Commands: run through HearingService, then report with Room.on_committed(command_id, ...). ---


@dataclass(frozen=True, slots=True)
class ChangeHearingState:
    """``HearingService.change_hearing_state``; ``actor`` None means the system."""

    command_id: str
    actor: UUID | None
    action: HearingAction
    reason: str


@dataclass(frozen=True, slots=True)
class ChangeParticipantState:
    """``HearingService.change_participant_state``.

    ``permission`` None: the participant acts on itself (actor == participant) or the system
    does (actor None: the reconnect grace period ran out).
    """

    command_id: str
    actor: UUID | None
    participant_id: UUID
    to: ParticipantState
    action: str
    reason: str
    permission: Permission | None


@dataclass(frozen=True, slots=True)
class SetLocked:
    """``HearingService.set_locked``."""

    command_id: str
    actor: UUID
    locked: bool
    reason: str


Command = ChangeHearingState | ChangeParticipantState | SetLocked


# Attendance log: facts, recorded as they happen (no commit round trip). -----------------------


class AttendanceEvent(StrEnum):
    JOIN_ATTEMPT = "join_attempt"
    JOIN_REFUSED = "join_refused"  # token refused, removed, hearing not open / over
    ENTERED_LOBBY = "entered_lobby"
    ENTERED_HEARING = "entered_hearing"  # judge and clerk, who skip the lobby
    ADMITTED = "admitted"
    DENIED = "denied"
    CALLED_IN = "called_in"
    DISMISSED = "dismissed"
    DISCONNECTED = "disconnected"  # the connection ended; reason says how
    RESUMED = "resumed"  # back inside the grace period, same place
    REJOINED = "rejoined"  # back after the grace period (or without the resume token)
    MARKED_DISCONNECTED = "marked_disconnected"  # grace period over, state -> disconnected
    DEVICE_CHECK = "device_check"  # the browser's camera/microphone/speaker check; reason = result
    CONDUCT_DECLARED = "conduct_declared"  # the "I will not record" declaration; reason = version


class AttendanceReason(StrEnum):
    NONE = ""
    NETWORK_LOSS = "network_loss"  # socket dropped or heartbeats stopped
    CLOSED_BY_USER = "closed_by_user"  # leave, or the page closed the socket cleanly
    REMOVED = "removed"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a reason, not a secret
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - a reason, not a secret
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - a reason, not a secret
    REPLACED = "replaced"  # the same participant connected again elsewhere
    PROTOCOL_VIOLATION = "protocol_violation"  # closed for flooding or malformed input
    HEARING_CLOSED = "hearing_closed"
    HEARING_NOT_OPEN = "hearing_not_open"
    HEARING_OVER = "hearing_over"
    WRONG_HEARING = "wrong_hearing"
    GRANTS_EXCEED_ROLE = "grants_exceed_role"
    ROLE_MISMATCH = "role_mismatch"  # token role differs from the participant's role here
    MUST_VERIFY = "must_verify"  # left earlier; identity must be verified again
    COMMIT_FAILED = "commit_failed"
    # Device check results (``DEVICE_CHECK``): all fine, or the first problem found.
    DEVICES_OK = "devices_ok"
    CAMERA_DENIED = "camera_denied"
    MICROPHONE_DENIED = "microphone_denied"
    CAMERA_MISSING = "camera_missing"
    MICROPHONE_MISSING = "microphone_missing"
    DEVICE_ERROR = "device_error"
    SPEAKER_FAILED = "speaker_failed"


@dataclass(frozen=True, slots=True)
class RecordAttendance:
    participant_id: UUID
    event: AttendanceEvent
    reason: AttendanceReason
    at: datetime


# Media node interface (implemented by media/, next issue). -------------------------------------


MediaSignalMessage = MediaStart | SdpAnswer | IceCandidate


@dataclass(frozen=True, slots=True)
class MediaSignal:
    """Forward ``media_start``, an SDP answer or an ICE candidate from the participant to its
    media peer."""

    participant_id: UUID
    message: MediaSignalMessage


@dataclass(frozen=True, slots=True)
class MediaGrant:
    """The complete media rights of one participant; replaces the previous grant.

    The media node forwards a publisher's audio/video only while the flag is set, and sends a
    subscriber only the tracks of ``subscribe_to``. Emitted whenever any of it changes.
    """

    participant_id: UUID
    publish_audio: bool
    publish_video: bool
    subscribe_to: frozenset[UUID]
    # The role and token allow publishing at all (observers: never). The media node offers
    # publish m-lines only then; the two flags above say what is forwarded right now (mute).
    may_publish: bool = False


@dataclass(frozen=True, slots=True)
class MediaRelease:
    """Tear down the participant's media peer (removed, left, hearing closed)."""

    participant_id: UUID


MediaCommand = MediaSignal | MediaGrant | MediaRelease


@dataclass(frozen=True, slots=True)
class FollowRecording:
    """The hearing's state changed (recorded): the recording follows it, before anyone is told.
    In session: record; paused, suspended or open: stop; closed: stop and seal the record.
    ``actor`` None means the system."""

    state: HearingState
    action: str
    reason: str
    actor: UUID | None


Output = Send | Close | VerifyToken | Command | RecordAttendance | MediaCommand | FollowRecording
