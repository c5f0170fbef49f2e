"""Signaling messages, version 1: JSON objects ``{"v": 1, "type": "...", "id": "...", ...}``.

Client messages are parsed by ``parse_client_message`` with explicit checks in a fixed order
(size, UTF-8 and JSON, object, version, type, fields), so every kind of bad input gets its own
error code. Server messages are built by the room and serialised by ``encode``. The same models
generate ``docs/signaling.schema.json`` (see ``schema.py``).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yunting.hearing.model import HearingState, ParticipantState, Role
from yunting.signaling.errors import ErrorCode, RefusedError

PROTOCOL_VERSION: Final = 1

# A lenient UUID: JSON has no UUID type, so the strict models accept the canonical string.
Uuid = Annotated[UUID, Field(strict=False)]
Reason = Annotated[str, Field(max_length=500)]
MediaKind = Literal["audio", "video"]
ControlAction = Literal["open_lobby", "start", "pause", "suspend", "resume", "close"]


def _require_envelope(schema: dict[str, Any]) -> None:
    # "v" has a default for building messages in Python, but the wire always carries it.
    required = schema.setdefault("required", [])
    for name in ("type", "v"):
        if name not in required:
            required.insert(0, name)


class _Message(BaseModel):
    # strict: "true" is not a boolean and "5" is not a number; extra fields are typos, refused.
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra=_require_envelope,
    )

    v: Literal[1] = PROTOCOL_VERSION


class ClientMessage(_Message):
    """Base of messages a browser sends. ``id`` is echoed as ``ref`` in errors about it."""

    id: Annotated[str, Field(max_length=64)] | None = None


# Client -> server -------------------------------------------------------------------------------


class Hello(ClientMessage):
    """First message on every connection: the join token, and the resume token if reconnecting."""

    type: Literal["hello"]
    token: Annotated[str, Field(min_length=1, max_length=1024)]
    resume_token: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class Heartbeat(ClientMessage):
    """Sent every ``heartbeat_interval_s`` with the browser's WebRTC statistics."""

    type: Literal["heartbeat"]
    rtt_ms: Annotated[float, Field(ge=0, le=600_000, allow_inf_nan=False)]
    packet_loss_pct: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
    jitter_ms: Annotated[float, Field(ge=0, le=600_000, allow_inf_nan=False)]
    bitrate_kbps: Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]


class MediaStateUpdate(ClientMessage):
    """The participant's own microphone and camera switches."""

    type: Literal["media_state"]
    mic: bool
    camera: bool


class Admit(ClientMessage):
    type: Literal["admit"]
    participant_id: Uuid
    reason: Reason = ""


class Deny(ClientMessage):
    type: Literal["deny"]
    participant_id: Uuid
    reason: Reason = ""


class CallIn(ClientMessage):
    type: Literal["call_in"]
    participant_id: Uuid
    reason: Reason = ""


class Dismiss(ClientMessage):
    type: Literal["dismiss"]
    participant_id: Uuid
    reason: Reason = ""


class Mute(ClientMessage):
    type: Literal["mute"]
    participant_id: Uuid
    kind: MediaKind


class AskUnmute(ClientMessage):
    type: Literal["ask_unmute"]
    participant_id: Uuid
    kind: MediaKind


class Remove(ClientMessage):
    type: Literal["remove"]
    participant_id: Uuid
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Lock(ClientMessage):
    type: Literal["lock"]
    reason: Reason = ""


class Unlock(ClientMessage):
    type: Literal["unlock"]
    reason: Reason = ""


class HearingControl(ClientMessage):
    type: Literal["hearing_action"]
    action: ControlAction
    reason: Reason = ""


class MediaStart(ClientMessage):
    """Build (or rebuild) the sender's one peer connection: the media node answers with an
    ``sdp_offer``. Sent on entering the hearing, and again after any media teardown."""

    type: Literal["media_start"]


class SdpAnswer(ClientMessage):
    """The browser's answer to the media node's latest ``sdp_offer``."""

    type: Literal["sdp_answer"]
    sdp: Annotated[str, Field(min_length=1, max_length=60_000)]


class IceCandidate(ClientMessage):
    """A trickled ICE candidate; an empty ``candidate`` means end of candidates."""

    type: Literal["ice_candidate"]
    candidate: Annotated[str, Field(max_length=2048)]
    sdp_mid: Annotated[str | None, Field(alias="sdpMid", max_length=64)] = None
    sdp_mline_index: Annotated[int | None, Field(alias="sdpMLineIndex", ge=0, le=1023)] = None


class Leave(ClientMessage):
    type: Literal["leave"]
    reason: Reason = ""


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (
    Hello,
    Heartbeat,
    MediaStateUpdate,
    Admit,
    Deny,
    CallIn,
    Dismiss,
    Mute,
    AskUnmute,
    Remove,
    Lock,
    Unlock,
    HearingControl,
    MediaStart,
    SdpAnswer,
    IceCandidate,
    Leave,
)

_CLIENT_BY_TYPE: dict[str, type[ClientMessage]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in CLIENT_MESSAGES
}
CLIENT_TYPES: frozenset[str] = frozenset(_CLIENT_BY_TYPE)


# Server -> client -------------------------------------------------------------------------------


class Presence(StrEnum):
    ONLINE = "online"
    RECONNECTING = "reconnecting"  # dropped, inside the reconnect grace period
    OFFLINE = "offline"


class HealthLevel(StrEnum):
    """Network health from packet loss (HMCTS video hearing thresholds)."""

    GOOD = "good"  # < 10 %
    POOR = "poor"  # 10 % .. < 15 %
    BAD = "bad"  # >= 15 %


class _Part(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class GrantsView(_Part):
    may_publish: bool
    may_subscribe: bool
    may_control: bool


class RosterEntry(_Part):
    participant_id: UUID
    role: Role
    display_name: str
    state: ParticipantState
    presence: Presence
    presiding: bool
    mic: bool
    camera: bool
    muted_audio: bool  # muted by the court (server-enforced), not by the participant
    muted_video: bool


class HealthEntry(_Part):
    participant_id: UUID
    level: HealthLevel
    packet_loss_pct: float
    rtt_ms: float
    jitter_ms: float
    bitrate_kbps: float


class ServerMessage(_Message):
    """Base of messages the server sends."""


class Welcome(ServerMessage):
    """Answer to a successful ``hello``: who you are and what the room looks like to you.

    ``roster`` is set for members in the hearing; ``lobby_position`` for members in the lobby.
    """

    type: Literal["welcome"] = "welcome"
    participant_id: UUID
    role: Role
    grants: GrantsView
    state: ParticipantState
    resume_token: str
    resumed: bool
    hearing_state: HearingState
    locked: bool
    presiding_judge_id: UUID | None
    roster_version: int | None
    roster: list[RosterEntry] | None
    lobby_position: int | None
    heartbeat_interval_s: float
    max_message_bytes: int


class Roster(ServerMessage):
    """Full roster snapshot as this recipient may see it; ``version`` grows with every change."""

    type: Literal["roster"] = "roster"
    version: int
    participants: list[RosterEntry]


class LobbyPosition(ServerMessage):
    type: Literal["lobby_position"] = "lobby_position"
    position: int  # 1-based
    of: int


class HearingStateChanged(ServerMessage):
    type: Literal["hearing_state"] = "hearing_state"
    state: HearingState
    locked: bool
    action: str | None  # open_lobby, start, ..., lock, unlock; None in a resync
    reason: str
    by: UUID | None  # None: the system (e.g. automatic pause when the judge dropped)


class RecordingStatus(ServerMessage):
    """The hearing's recording, for the judge and the clerk: sent when it changes, on welcome
    and in a resync. ``off``: this server records nothing (no media node); ``idle``: not
    recording now (the hearing is not in session); ``failed``: the recorder stopped on an
    error (``reason``) and the hearing pauses until the judge resumes."""

    type: Literal["recording"] = "recording"
    state: Literal["off", "idle", "recording", "failed"]
    reason: str
    since: datetime | None  # when this state began
    segments: int  # segments committed to the record for this hearing so far
    last_segment_at: datetime | None  # the end of the newest committed segment


class ParticipantStateChanged(ServerMessage):
    """Your own state changed (admitted, dismissed, called in)."""

    type: Literal["participant_state"] = "participant_state"
    participant_id: UUID
    state: ParticipantState
    reason: str
    by: UUID | None


class Muted(ServerMessage):
    type: Literal["muted"] = "muted"
    kind: MediaKind
    by: UUID


class UnmuteRequested(ServerMessage):
    """The court lifted its mute and asks you to switch your microphone/camera back on."""

    type: Literal["unmute_requested"] = "unmute_requested"
    kind: MediaKind
    by: UUID


class Removed(ServerMessage):
    type: Literal["removed"] = "removed"
    denied: bool  # true: refused admission from the lobby
    reason: str
    by: UUID


class Error(ServerMessage):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: str | None  # the ``id`` of the offending message, if it had one


class Health(ServerMessage):
    """Network health of everyone connected; sent to the judge and clerk only."""

    type: Literal["health"] = "health"
    participants: list[HealthEntry]


class Bye(ServerMessage):
    """Last message before the server closes the connection."""

    type: Literal["bye"] = "bye"
    reason: str


class MediaTrack(BaseModel):
    """One track the media node sends in an offer: whose it is, and of which kind."""

    model_config = ConfigDict(frozen=True)

    mid: str
    participant_id: UUID
    kind: Literal["audio", "video"]


class PublishSlots(BaseModel):
    """The offer's m-lines (by mid) for the participant's own microphone and camera: the
    browser attaches its tracks to these. Absent (null) for observers and others who may not
    publish: their offer has nothing to send on."""

    model_config = ConfigDict(frozen=True)

    audio: str | None = None
    video: str | None = None


class SdpOffer(ServerMessage):
    """The media node's offer for the participant's peer connection: the first one after
    ``media_start`` and each renegotiation after (someone joined, left, was dismissed or called
    in). The browser answers with ``sdp_answer``; the media node always makes the offers, so
    there is never glare. ``tracks`` names the sender of every receiving m-line that carries
    media (an m-line not listed is inactive)."""

    type: Literal["sdp_offer"] = "sdp_offer"
    sdp: str
    tracks: list[MediaTrack]
    publish: PublishSlots


SERVER_MESSAGES: tuple[type[BaseModel], ...] = (
    Welcome,
    Roster,
    LobbyPosition,
    HearingStateChanged,
    ParticipantStateChanged,
    RecordingStatus,
    Muted,
    UnmuteRequested,
    Removed,
    Error,
    SdpOffer,
    Health,
    Bye,
)

# What the room sends: every server model (the media node's offers included).
Outgoing = ServerMessage


def encode(message: Outgoing) -> str:
    """The JSON text of ``message`` as it goes on the wire."""
    return message.model_dump_json(by_alias=True)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_client_message(raw: bytes | str, *, max_bytes: int) -> ClientMessage:
    """Parse and validate one client message.

    Raises ``RefusedError`` with: too_big, bad_json, bad_message, unsupported_version,
    unknown_type or invalid_message. Never anything else, whatever ``raw`` holds.
    """
    # len(str) <= its UTF-8 length, so the cheap check first rejects huge strings unencoded.
    if len(raw) > max_bytes or (isinstance(raw, str) and len(raw.encode()) > max_bytes):
        raise RefusedError(ErrorCode.TOO_BIG, f"message is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        obj = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeError, ValueError, RecursionError) as e:
        # ValueError covers JSONDecodeError and ints longer than Python's digit limit;
        # RecursionError deeply nested arrays.
        raise RefusedError(ErrorCode.BAD_JSON, "message is not valid UTF-8 JSON") from e
    if not isinstance(obj, dict):
        raise RefusedError(
            ErrorCode.BAD_MESSAGE, f"expected a JSON object, got {type(obj).__name__}"
        )
    ref = obj.get("id")
    if not isinstance(ref, str) or len(ref) > 64:
        ref = None
    version = obj.get("v")
    # bool is an int in Python; true is not version 1.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise RefusedError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"expected v={PROTOCOL_VERSION}, got {json.dumps(version)[:20]}",
            ref=ref,
        )
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise RefusedError(ErrorCode.BAD_MESSAGE, "expected a string field 'type'", ref=ref)
    model = _CLIENT_BY_TYPE.get(kind)
    if model is None:
        raise RefusedError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}", ref=ref)
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise RefusedError(ErrorCode.INVALID_MESSAGE, _describe(kind, e), ref=ref) from e


def _describe(kind: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    return f"invalid {kind} message: " + "; ".join(parts)
