"""The sans-I/O hearing room: messages in, messages and commands out.

Like python-websockets' ``Protocol``, a ``Room`` owns no socket, no database, no clock and no
task. Its adapter feeds it events (``open``, ``receive``, ``connect``, ``reject``,
``disconnect``, ``tick``, ``on_committed``, ``on_media``) with the current time, and carries out
the outputs each call returns, in order (``outputs.py``).

Two rules shape everything here:

* Legal weight first (DESIGN.md, "Hearing lifecycle"): a hearing or participant state change is
  emitted as a command, recorded by the adapter through ``HearingService`` (database, audit,
  ledger), and only applied and announced when ``on_committed`` reports it recorded. A refused
  commit changes nothing and tells the sender why.
* Refused input changes nothing: every handler checks everything before it mutates, and raises
  ``RefusedError`` (turned into one ``error`` message) otherwise.

Derived views (roster, lobby positions, health, media grants) are not updated by each handler
but reconciled at the end of every call against what each connection was last sent, so no code
path can forget to tell someone, and nobody is told twice.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from yunting.hearing.errors import IllegalTransitionError
from yunting.hearing.model import (
    ACTION_PERMISSION,
    FINAL_HEARING_STATES,
    HEARING_ACTIONS,
    PARTICIPANT_TRANSITIONS,
    STAFF_ROLES,
    Grants,
    HearingAction,
    HearingState,
    ParticipantState,
    Permission,
    Role,
    plan_hearing_transition,
    plan_participant_transition,
    role_may,
)
from yunting.hearing.tokens import JoinClaims
from yunting.signaling import health
from yunting.signaling.errors import CloseCode, ErrorCode, RefusedError, RoomUsageError
from yunting.signaling.messages import (
    Admit,
    AskUnmute,
    Bye,
    CallIn,
    ClientMessage,
    Deny,
    Dismiss,
    Error,
    GrantsView,
    Health,
    HealthEntry,
    HealthLevel,
    HearingControl,
    HearingStateChanged,
    Heartbeat,
    Hello,
    IceCandidate,
    Leave,
    LobbyPosition,
    Lock,
    MediaKind,
    MediaStart,
    MediaStateUpdate,
    Mute,
    Muted,
    Outgoing,
    ParticipantStateChanged,
    Presence,
    RecordingStatus,
    Remove,
    Removed,
    Roster,
    RosterEntry,
    SdpAnswer,
    SdpOffer,
    Unlock,
    UnmuteRequested,
    Welcome,
    parse_client_message,
)
from yunting.signaling.outputs import (
    AttendanceEvent,
    AttendanceReason,
    ChangeHearingState,
    ChangeParticipantState,
    Close,
    Command,
    FollowRecording,
    MediaGrant,
    MediaRelease,
    MediaSignal,
    Output,
    RecordAttendance,
    Send,
    SetLocked,
    VerifyToken,
)
from yunting.signaling.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

# Hearing states in which the lobby is open and people may be admitted.
_ACTIVE_HEARING = frozenset(
    {HearingState.OPEN, HearingState.IN_SESSION, HearingState.PAUSED, HearingState.SUSPENDED}
)
# Participant states that appear on the roster (to controllers; others see in_hearing only).
_ON_ROSTER = frozenset(
    {ParticipantState.IN_LOBBY, ParticipantState.IN_HEARING, ParticipantState.DISCONNECTED}
)
# States whose holder keeps a place while its connection is gone (the reconnect grace period).
_HOLDS_PLACE = frozenset({ParticipantState.IN_LOBBY, ParticipantState.IN_HEARING})
# The reason of the system's pause when the recorder fails (the browser explains it).
RECORDING_FAILED_REASON = "recording_failed"
# (publish_audio, publish_video, subscribe_to, may_publish): a MediaGrant's fields.
_Media = tuple[bool, bool, frozenset[UUID], bool]

# InvalidTokenError.reason (HearingService.verify_join_token) -> how the connection is closed.
_TOKEN_REFUSALS: dict[str, tuple[CloseCode, AttendanceReason]] = {
    "expired": (CloseCode.UNAUTHENTICATED, AttendanceReason.TOKEN_EXPIRED),
    "revoked": (CloseCode.UNAUTHENTICATED, AttendanceReason.TOKEN_REVOKED),
    "malformed": (CloseCode.UNAUTHENTICATED, AttendanceReason.TOKEN_INVALID),
    "bad_signature": (CloseCode.UNAUTHENTICATED, AttendanceReason.TOKEN_INVALID),
    "removed": (CloseCode.FORBIDDEN, AttendanceReason.REMOVED),
    "hearing_over": (CloseCode.HEARING_OVER, AttendanceReason.HEARING_OVER),
}


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """Limits and grace periods of one room (built from ``Settings`` by the adapter)."""

    reconnect_grace: timedelta = timedelta(seconds=60)
    judge_drop_grace: timedelta = timedelta(seconds=30)
    hello_timeout: timedelta = timedelta(seconds=10)
    heartbeat_interval: timedelta = timedelta(seconds=5)
    heartbeat_timeout: timedelta = timedelta(seconds=20)
    max_message_bytes: int = 64 * 1024
    rate_per_s: float = 20.0
    rate_burst: int = 40
    # Messages dropped by the rate limit in a row before the connection is closed (4429).
    flood_close_after: int = 40
    # Malformed messages in a row before the connection is closed (4400).
    max_protocol_errors: int = 5

    def __post_init__(self) -> None:
        for name in (
            "reconnect_grace",
            "judge_drop_grace",
            "hello_timeout",
            "heartbeat_interval",
            "heartbeat_timeout",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError("heartbeat_timeout must be longer than heartbeat_interval")
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be >= 1024, got {self.max_message_bytes}")
        if self.rate_per_s <= 0 or self.rate_burst < 1:
            raise ValueError("rate_per_s must be > 0 and rate_burst >= 1")
        if self.flood_close_after < 1 or self.max_protocol_errors < 1:
            raise ValueError("flood_close_after and max_protocol_errors must be >= 1")


class ConnPhase(StrEnum):
    AWAITING_HELLO = "awaiting_hello"
    AUTHENTICATING = "authenticating"  # VerifyToken emitted, waiting for connect/reject
    JOINING = "joining"  # join recorded step by step, waiting for on_committed
    READY = "ready"  # welcomed


class _Op(StrEnum):
    """What a pending command does once committed."""

    JOIN = "join"
    ADMIT = "admit"
    CALL_IN = "call_in"
    DENY = "deny"
    DISMISS = "dismiss"
    REMOVE = "remove"
    LEAVE = "leave"
    GRACE_EXPIRED = "grace_expired"
    HEARING = "hearing"
    AUTO_PAUSE = "auto_pause"
    RECORDING_PAUSE = "recording_pause"  # the recorder failed: the hearing waits for the judge
    LOCK = "lock"


# Commands about the hearing as a whole: one at a time.
_HEARING_OPS = frozenset({_Op.HEARING, _Op.AUTO_PAUSE, _Op.RECORDING_PAUSE, _Op.LOCK})


@dataclass(slots=True)
class _Conn:
    conn_id: str
    phase: ConnPhase
    opened_at: datetime
    last_heard: datetime
    bucket: TokenBucket
    participant_id: UUID | None = None
    resume_token: str | None = None
    protocol_errors: int = 0
    dropped_in_a_row: int = 0
    roster_sent: tuple[RosterEntry, ...] | None = None
    lobby_sent: tuple[int, int] | None = None
    health_sent: tuple[tuple[UUID, HealthLevel], ...] | None = None


@dataclass(slots=True)
class _Member:
    participant_id: UUID
    role: Role
    grants: Grants
    display_name: str
    state: ParticipantState
    token_expires_at: datetime
    resume_token: str
    conn_id: str | None = None
    mic: bool = False
    camera: bool = False
    muted_audio: bool = False
    muted_video: bool = False
    stats: Heartbeat | None = None
    dropped_at: datetime | None = None
    drop_reason: AttendanceReason = AttendanceReason.NONE
    admitted_once: bool = False
    lobby_seq: int = 0
    auto_paused: bool = False  # the judge-drop pause for the current drop was asked for

    @property
    def may_publish(self) -> bool:
        return self.grants.may_publish and role_may(self.role, Permission.MEDIA_PUBLISH)

    @property
    def may_subscribe(self) -> bool:
        return self.grants.may_subscribe and role_may(self.role, Permission.MEDIA_SUBSCRIBE)

    @property
    def is_controller(self) -> bool:
        return self.grants.may_control and role_may(self.role, Permission.LOBBY_ADMIT)


@dataclass(frozen=True, slots=True)
class _Pending:
    command: Command
    op: _Op
    conn_id: str | None  # whom to tell if the commit fails
    ref: str | None  # the id of the client message that asked for it
    target: UUID | None = None
    remaining: tuple[ParticipantState, ...] = ()  # JOIN: the steps after this one
    join_event: AttendanceEvent = AttendanceEvent.ENTERED_LOBBY


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    participant_id: UUID
    role: Role
    state: ParticipantState
    online: bool
    may_publish: bool
    mic: bool
    camera: bool
    muted_audio: bool
    muted_video: bool


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    """Everything the room decides on, for tests and the staff page; equal means unchanged."""

    hearing_state: HearingState
    locked: bool
    presiding_judge_id: UUID | None
    members: tuple[MemberSnapshot, ...]
    lobby: tuple[UUID, ...]
    pending: tuple[str, ...]


def _new_resume_token() -> str:
    return secrets.token_urlsafe(24)


def _grants_within(grants: Grants, role: Role) -> bool:
    allowed = Grants.for_role(role)
    return (
        (allowed.may_publish or not grants.may_publish)
        and (allowed.may_subscribe or not grants.may_subscribe)
        and (allowed.may_control or not grants.may_control)
    )


def _path(start: ParticipantState, goal: ParticipantState) -> tuple[ParticipantState, ...]:
    """Shortest sequence of legal participant transitions from ``start`` to ``goal``."""
    if start is goal:
        return ()
    came_from: dict[ParticipantState, ParticipantState] = {}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        for nxt in sorted(PARTICIPANT_TRANSITIONS[state]):
            if nxt in came_from or nxt is start:
                continue
            came_from[nxt] = state
            if nxt is goal:
                steps = [goal]
                while came_from[steps[-1]] is not start:
                    steps.append(came_from[steps[-1]])
                return tuple(reversed(steps))
            queue.append(nxt)
    raise IllegalTransitionError(f"participant cannot get from {start} to {goal}")


class Room:
    """One hearing's signaling state machine. Pure: no I/O, time passed in.

    Every public method returns the outputs to carry out, in order. Connection ids are opaque
    strings chosen by the adapter, unique among the room's open connections.
    """

    def __init__(
        self,
        *,
        hearing_id: UUID,
        hearing_state: HearingState,
        locked: bool,
        presiding_judge_id: UUID | None = None,
        settings: RoomConfig | None = None,
        new_resume_token: Callable[[], str] = _new_resume_token,
        restored_at: datetime | None = None,
    ) -> None:
        self.hearing_id = hearing_id
        self._hearing_state = hearing_state
        self._locked = locked
        self._presiding = presiding_judge_id
        self.config = settings or RoomConfig()
        self._new_resume_token = new_resume_token
        # When the room was (re)built from the database: a node restarted or took the room over.
        # Nobody holds a resume token of this room yet, so for one grace period a participant
        # recorded in the hearing resumes its place on its join token alone.
        self._restored_at = restored_at
        self._conns: dict[str, _Conn] = {}
        self._members: dict[UUID, _Member] = {}
        self._pending: dict[str, _Pending] = {}
        self._media_sent: dict[UUID, _Media] = {}
        self._next_command = 0
        self._next_lobby_seq = 0
        self._roster_version = 0
        self._roster_key: tuple[RosterEntry, ...] = ()
        self._recording: RecordingStatus | None = None
        self._recording_pause_due = False

    # Read-only views ------------------------------------------------------------------------

    @property
    def hearing_state(self) -> HearingState:
        return self._hearing_state

    @property
    def locked(self) -> bool:
        return self._locked

    @property
    def presiding_judge_id(self) -> UUID | None:
        return self._presiding

    def pending_commands(self) -> tuple[Command, ...]:
        """Commands emitted and not yet reported by ``on_committed``, oldest first."""
        return tuple(p.command for p in self._pending.values())

    def connection_ids(self) -> frozenset[str]:
        return frozenset(self._conns)

    def snapshot(self) -> RoomSnapshot:
        members = tuple(
            MemberSnapshot(
                participant_id=m.participant_id,
                role=m.role,
                state=m.state,
                online=self._is_online(m),
                may_publish=m.may_publish,
                mic=m.mic,
                camera=m.camera,
                muted_audio=m.muted_audio,
                muted_video=m.muted_video,
            )
            for m in sorted(self._members.values(), key=lambda m: str(m.participant_id))
        )
        return RoomSnapshot(
            hearing_state=self._hearing_state,
            locked=self._locked,
            presiding_judge_id=self._presiding,
            members=members,
            lobby=tuple(m.participant_id for m in self._lobby()),
            pending=tuple(self._pending),
        )

    # Events from the adapter ----------------------------------------------------------------

    def open(self, conn_id: str, now: datetime) -> list[Output]:
        """A websocket was accepted; it must send ``hello`` within ``hello_timeout``."""
        _check_now(now)
        if conn_id in self._conns:
            raise RoomUsageError(f"connection {conn_id!r} is already open")
        if self._hearing_state in FINAL_HEARING_STATES:
            return [
                Send(conn_id, Bye(reason="hearing_over")),
                Close(conn_id, CloseCode.HEARING_OVER, "hearing_over"),
            ]
        self._conns[conn_id] = _Conn(
            conn_id=conn_id,
            phase=ConnPhase.AWAITING_HELLO,
            opened_at=now,
            last_heard=now,
            bucket=TokenBucket(rate=self.config.rate_per_s, burst=self.config.rate_burst, now=now),
        )
        return []

    def receive(self, conn_id: str, raw: bytes | str, now: datetime) -> list[Output]:
        """One websocket message (text or binary frame) from ``conn_id``.

        Unknown connection ids are ignored: a message may race with a close the room asked for.
        """
        _check_now(now)
        conn = self._conns.get(conn_id)
        if conn is None:
            return []
        conn.last_heard = max(conn.last_heard, now)
        out: list[Output] = []
        if not conn.bucket.take(now):
            conn.dropped_in_a_row += 1
            if conn.dropped_in_a_row == 1:  # say it once per flood, never amplify one
                out.append(self._error(conn_id, ErrorCode.RATE_LIMITED, self._rate_text(), None))
            if conn.dropped_in_a_row >= self.config.flood_close_after:
                out += self._close(
                    conn,
                    CloseCode.RATE_LIMITED,
                    "rate_limited",
                    now,
                    AttendanceReason.PROTOCOL_VIOLATION,
                )
            return out + self._reconcile()
        conn.dropped_in_a_row = 0
        try:
            message = parse_client_message(raw, max_bytes=self.config.max_message_bytes)
        except RefusedError as e:
            out.append(self._error(conn_id, e.code, e.message, e.ref))
            if e.code is ErrorCode.TOO_BIG:
                out += self._close(
                    conn,
                    CloseCode.MESSAGE_TOO_BIG,
                    "message_too_big",
                    now,
                    AttendanceReason.PROTOCOL_VIOLATION,
                )
            elif conn.phase is ConnPhase.AWAITING_HELLO:
                out += self._close(conn, CloseCode.UNAUTHENTICATED, "hello_required", now)
            else:
                conn.protocol_errors += 1
                if conn.protocol_errors >= self.config.max_protocol_errors:
                    out += self._close(
                        conn,
                        CloseCode.PROTOCOL_ERRORS,
                        "protocol_errors",
                        now,
                        AttendanceReason.PROTOCOL_VIOLATION,
                    )
            return out + self._reconcile()
        conn.protocol_errors = 0
        if conn.phase is ConnPhase.AWAITING_HELLO:
            if isinstance(message, Hello):
                conn.phase = ConnPhase.AUTHENTICATING
                conn.resume_token = message.resume_token
                return [VerifyToken(conn_id, message.token)]
            out.append(
                self._error(
                    conn_id,
                    ErrorCode.HELLO_REQUIRED,
                    f"expected hello as the first message, got {getattr(message, 'type', '?')}",
                    message.id,
                )
            )
            return out + self._close(conn, CloseCode.UNAUTHENTICATED, "hello_required", now)
        if conn.phase is not ConnPhase.READY:
            if isinstance(message, Heartbeat):
                return []
            return [
                self._error(
                    conn_id, ErrorCode.NOT_READY, "wait for welcome before sending", message.id
                )
            ]
        member = self._member_of(conn)
        try:
            out += self._handle(member, conn, message, now)
        except RefusedError as e:
            out.append(self._error(conn_id, e.code, e.message, message.id))
        return out + self._reconcile()

    def connect(
        self,
        conn_id: str,
        claims: JoinClaims,
        participant_state: ParticipantState,
        now: datetime,
        *,
        display_name: str = "",
    ) -> list[Output]:
        """The adapter verified the ``hello`` token of ``conn_id`` (signature, expiry,
        revocation) and loaded the participant's recorded state: place the participant.

        Judge and clerk go straight into the hearing; everyone else waits in the lobby, except
        a participant resuming its place in the hearing inside the reconnect grace period with
        the resume token of its last ``welcome``. A second connection of the same participant
        replaces the first (which gets ``bye`` and close 4409); there is never a second roster
        entry.
        """
        _check_now(now)
        conn = self._conns.get(conn_id)
        if conn is None or conn.phase is not ConnPhase.AUTHENTICATING:
            raise RoomUsageError(f"connect({conn_id!r}) without a hello waiting for verification")
        pid = claims.participant_id
        if claims.hearing_id != self.hearing_id:
            # Not one of ours: nothing to record in this hearing's attendance log.
            return self._close(conn, CloseCode.FORBIDDEN, "wrong_hearing", now)
        out: list[Output] = [self._attend(pid, AttendanceEvent.JOIN_ATTEMPT, now)]
        member = self._members.get(pid)
        pending = self._pending_for(pid)
        state = member.state if member is not None and pending is not None else participant_state
        refusal: tuple[CloseCode, AttendanceReason] | None = None
        if not _grants_within(claims.grants, claims.role):
            refusal = (CloseCode.FORBIDDEN, AttendanceReason.GRANTS_EXCEED_ROLE)
        elif member is not None and member.role is not claims.role:
            refusal = (CloseCode.FORBIDDEN, AttendanceReason.ROLE_MISMATCH)
        elif now >= claims.expires_at:
            refusal = (CloseCode.UNAUTHENTICATED, AttendanceReason.TOKEN_EXPIRED)
        elif self._hearing_state in FINAL_HEARING_STATES:
            refusal = (CloseCode.HEARING_OVER, AttendanceReason.HEARING_OVER)
        elif state is ParticipantState.REMOVED:
            refusal = (CloseCode.FORBIDDEN, AttendanceReason.REMOVED)
        elif state is ParticipantState.LEFT or (
            state is ParticipantState.INVITED and claims.role not in STAFF_ROLES
        ):
            # The link alone is not enough: a party proves identity (one-time code) first.
            refusal = (CloseCode.FORBIDDEN, AttendanceReason.MUST_VERIFY)
        elif claims.role not in STAFF_ROLES and self._hearing_state is HearingState.SCHEDULED:
            refusal = (CloseCode.TOO_EARLY, AttendanceReason.HEARING_NOT_OPEN)
        if refusal is not None:
            code, reason = refusal
            out.append(self._attend(pid, AttendanceEvent.JOIN_REFUSED, now, reason))
            return out + self._close(conn, code, reason.value, now) + self._reconcile()
        takeover = pending is not None and pending.op is _Op.JOIN
        if pending is not None and not takeover:
            # The participant's state is being recorded right now (e.g. its grace period just
            # ran out); placing it on a state about to change could admit it twice.
            out.append(self._attend(pid, AttendanceEvent.JOIN_REFUSED, now))
            return (
                out + self._close(conn, CloseCode.TRY_AGAIN_LATER, "busy", now) + self._reconcile()
            )

        is_new = member is None
        if member is None:
            member = _Member(
                participant_id=pid,
                role=claims.role,
                grants=claims.grants,
                display_name=display_name,
                state=state,
                token_expires_at=claims.expires_at,
                resume_token=self._new_resume_token(),
            )
            self._members[pid] = member
        else:
            if member.state is not state:
                logger.info(
                    "participant %s: %s -> %s (as recorded)",
                    pid,
                    member.state,
                    state,
                    extra={"hearing_id": str(self.hearing_id), "participant_id": str(pid)},
                )
                member.state = state
            member.grants = claims.grants
            member.token_expires_at = claims.expires_at
            member.display_name = display_name or member.display_name
        if state is ParticipantState.IN_HEARING:
            member.admitted_once = True
        replaced = False
        if member.conn_id is not None and member.conn_id != conn_id:
            old = self._conns.get(member.conn_id)
            member.conn_id = None
            if old is not None:
                replaced = old.phase is ConnPhase.READY
                if replaced:
                    out.append(
                        self._attend(
                            pid, AttendanceEvent.DISCONNECTED, now, AttendanceReason.REPLACED
                        )
                    )
                out += self._close(old, CloseCode.REPLACED, "replaced", now)
        in_grace = replaced or (
            member.dropped_at is not None and now - member.dropped_at < self.config.reconnect_grace
        )
        conn.participant_id = pid
        member.conn_id = conn_id
        if takeover:
            conn.phase = ConnPhase.JOINING
            return out + self._reconcile()

        resuming = state is ParticipantState.IN_HEARING and (
            (
                in_grace
                and conn.resume_token is not None
                and secrets.compare_digest(conn.resume_token.encode(), member.resume_token.encode())
            )
            or (is_new and self._restored_recently(now))
        )
        if claims.role in STAFF_ROLES or resuming:
            goal = ParticipantState.IN_HEARING
        else:
            goal = ParticipantState.IN_LOBBY
        steps = _path(state, goal)
        if not steps:
            out.append(self._attend(pid, AttendanceEvent.RESUMED, now))
            out += self._welcome(member, conn, now, resumed=True)
            return out + self._reconcile()
        if state in (ParticipantState.IN_HEARING, ParticipantState.DISCONNECTED):
            event = AttendanceEvent.REJOINED
        elif goal is ParticipantState.IN_HEARING:
            event = AttendanceEvent.ENTERED_HEARING
        else:
            event = AttendanceEvent.ENTERED_LOBBY
        conn.phase = ConnPhase.JOINING
        out.append(
            self._command_participant(
                op=_Op.JOIN,
                actor=pid,
                target=member,
                to=steps[0],
                action="participant.join",
                reason="",
                permission=None,
                conn_id=conn_id,
                ref=None,
                remaining=steps[1:],
                join_event=event,
            )
        )
        return out + self._reconcile()

    def reject(
        self, conn_id: str, reason: str, now: datetime, *, participant_id: UUID | None = None
    ) -> list[Output]:
        """The ``hello`` token of ``conn_id`` was refused; ``reason`` is
        ``InvalidTokenError.reason`` (expired, revoked, malformed, bad_signature, removed,
        hearing_over). ``participant_id``, when the adapter could read it, goes in the
        attendance log."""
        _check_now(now)
        conn = self._conns.get(conn_id)
        if conn is None:
            return []
        code, attendance = _TOKEN_REFUSALS.get(
            reason, (CloseCode.UNAUTHENTICATED, AttendanceReason.TOKEN_INVALID)
        )
        out: list[Output] = []
        if participant_id is not None:
            out.append(self._attend(participant_id, AttendanceEvent.JOIN_REFUSED, now, attendance))
        return out + self._close(conn, code, attendance.value, now)

    def disconnect(
        self,
        conn_id: str,
        now: datetime,
        reason: AttendanceReason = AttendanceReason.NETWORK_LOSS,
    ) -> list[Output]:
        """The socket of ``conn_id`` closed without the room asking: ``closed_by_user`` for a
        clean close (1000/1001), ``network_loss`` otherwise. The participant keeps its place
        for ``reconnect_grace``. Unknown ids (already closed by the room) are ignored."""
        _check_now(now)
        conn = self._conns.pop(conn_id, None)
        if conn is None:
            return []
        return self._drop(conn, now, reason) + self._reconcile()

    def tick(self, now: datetime) -> list[Output]:
        """Time passed. Call every second or so: hello and heartbeat timeouts, token expiry,
        reconnect grace expiry, and the automatic pause when the presiding judge stays away."""
        _check_now(now)
        out: list[Output] = []
        cfg = self.config
        for conn in list(self._conns.values()):
            if conn.phase is ConnPhase.AWAITING_HELLO and now - conn.opened_at >= cfg.hello_timeout:
                out += self._close(conn, CloseCode.UNAUTHENTICATED, "hello_timeout", now)
            elif (
                conn.phase in (ConnPhase.JOINING, ConnPhase.READY)
                and now - conn.last_heard >= cfg.heartbeat_timeout
            ):
                out += self._close(
                    conn,
                    CloseCode.HEARTBEAT_TIMEOUT,
                    "heartbeat_timeout",
                    now,
                    AttendanceReason.NETWORK_LOSS,
                )
        for member in list(self._members.values()):
            live = self._conns.get(member.conn_id) if member.conn_id is not None else None
            if live is not None and now >= member.token_expires_at:
                out += self._close(
                    live,
                    CloseCode.UNAUTHENTICATED,
                    "token_expired",
                    now,
                    AttendanceReason.TOKEN_EXPIRED,
                )
            if (
                member.conn_id is None
                and member.dropped_at is not None
                and member.state in _HOLDS_PLACE
                and now - member.dropped_at >= cfg.reconnect_grace
                and self._pending_for(member.participant_id) is None
            ):
                out.append(
                    self._command_participant(
                        op=_Op.GRACE_EXPIRED,
                        actor=None,
                        target=member,
                        to=ParticipantState.DISCONNECTED,
                        action="participant.disconnect",
                        reason=member.drop_reason.value,
                        permission=None,
                        conn_id=None,
                        ref=None,
                    )
                )
        out += self._check_judge_drop(now)
        out += self._check_recording_pause()
        return out + self._reconcile()

    def on_committed(
        self, command_id: str, now: datetime, *, ok: bool, error: str = ""
    ) -> list[Output]:
        """The adapter recorded (``ok``) or could not record (``error``) a command.

        Only now does the room apply the change and announce it. Unknown or repeated ids are
        ignored, so the adapter may report at least once.
        """
        _check_now(now)
        pending = self._pending.pop(command_id, None)
        if pending is None:
            return []
        out = self._apply(pending, now) if ok else self._commit_failed(pending, error, now)
        return out + self._reconcile()

    def on_media(self, participant_id: UUID, message: SdpOffer) -> list[Output]:
        """The media node has an offer for a participant (dropped if it is not connected)."""
        member = self._members.get(participant_id)
        conn = self._ready_conn(member) if member is not None else None
        if conn is None:
            return []
        return [Send(conn.conn_id, message)]

    def external_change(
        self,
        now: datetime,
        *,
        hearing_state: HearingState,
        locked: bool,
        action: str,
        reason: str,
        by: UUID | None,
    ) -> list[Output]:
        """The hearing changed outside the room (the staff page or the API) and is already
        recorded: adopt it and tell everyone, as if the room had made the change."""
        _check_now(now)
        if hearing_state is self._hearing_state and locked is self._locked:
            return []
        if hearing_state is not self._hearing_state:
            try:
                hearing_action = HearingAction(action)
            except ValueError:
                hearing_action = None
            if hearing_action is not None:
                command = ChangeHearingState("external", by, hearing_action, reason)
                self._locked = locked
                return self._apply_hearing(command, now, to=hearing_state) + self._reconcile()
        out: list[Output] = []
        if hearing_state is not self._hearing_state:
            out.append(FollowRecording(state=hearing_state, action=action, reason=reason, actor=by))
        self._hearing_state = hearing_state
        self._locked = locked
        return out + self._broadcast_hearing(action, reason, by) + self._reconcile()

    def revoke_access(self, participant_id: UUID, now: datetime) -> list[Output]:
        """The court revoked the participant's join links: end its connection now (it would
        otherwise stay in until it reconnects). Its recorded state is untouched."""
        _check_now(now)
        member = self._members.get(participant_id)
        conn = self._conns.get(member.conn_id) if member and member.conn_id else None
        if conn is None:
            return []
        out = self._close(
            conn, CloseCode.UNAUTHENTICATED, "token_revoked", now, AttendanceReason.TOKEN_REVOKED
        )
        return out + self._reconcile()

    def notify_error(self, participant_id: UUID, code: ErrorCode, text: str) -> list[Output]:
        """Tell a participant that something the adapter did for it failed (e.g. no media
        node); the room itself does not change."""
        member = self._members.get(participant_id)
        conn = self._ready_conn(member) if member is not None else None
        if conn is None:
            return []
        return [self._error(conn.conn_id, code, text, None)]

    def recording_status(self, status: RecordingStatus) -> list[Output]:
        """The recorder's state changed (or a segment was committed): the judge and clerk see
        it live. Nobody else is told anything about the recording."""
        self._recording = status
        return [Send(conn_id, status) for conn_id in self._controller_conns()]

    def recording_failed(self, detail: str, now: datetime) -> list[Output]:
        """The recorder could not go on (write error, disk full, a publisher's media stopped
        arriving): an unrecorded hearing must not go on, so it pauses (as the system, with the
        reason ``recording_failed``) until the judge resumes it. Judge and clerk get the
        detail."""
        _check_now(now)
        out: list[Output] = [
            self._error(conn_id, ErrorCode.RECORDING_FAILED, detail, None)
            for conn_id in self._controller_conns()
        ]
        if self._hearing_state is HearingState.IN_SESSION:
            self._recording_pause_due = True
        return out + self._check_recording_pause() + self._reconcile()

    def resync(self) -> list[Output]:
        """Send every welcomed connection the hearing state and its roster or lobby position
        again, and re-grant all media: after the adapter lost messages (Redis restarted)."""
        out: list[Output] = []
        message = HearingStateChanged(
            state=self._hearing_state, locked=self._locked, action=None, reason="resync", by=None
        )
        for conn in self._conns.values():
            if conn.phase is ConnPhase.READY:
                conn.roster_sent = conn.lobby_sent = conn.health_sent = None
                out.append(Send(conn.conn_id, message))
        if self._recording is not None:
            out += [Send(conn_id, self._recording) for conn_id in self._controller_conns()]
        self._media_sent.clear()
        return out + self._reconcile(force_media=True)

    # Message handlers (check everything, then mutate) ---------------------------------------

    def _handle(
        self, member: _Member, conn: _Conn, message: ClientMessage, now: datetime
    ) -> list[Output]:
        if isinstance(message, Heartbeat):
            member.stats = message
            return []
        if isinstance(message, MediaStateUpdate):
            if (message.mic or message.camera) and not member.may_publish:
                raise RefusedError(
                    ErrorCode.FORBIDDEN,
                    f"your role ({member.role}) or join token does not allow publishing",
                )
            member.mic, member.camera = message.mic, message.camera
            return []
        if isinstance(message, MediaStart | SdpAnswer | IceCandidate):
            if member.state is not ParticipantState.IN_HEARING:
                raise RefusedError(
                    ErrorCode.ILLEGAL_STATE,
                    f"media is negotiated in the hearing; you are {member.state}",
                )
            return [MediaSignal(member.participant_id, message)]
        if isinstance(message, Admit | CallIn):
            return [self._admit(member, message, conn)]
        if isinstance(message, Deny):
            return [self._deny(member, message, conn)]
        if isinstance(message, Dismiss):
            return [self._dismiss(member, message, conn)]
        if isinstance(message, Remove):
            return [self._remove(member, message, conn)]
        if isinstance(message, Mute | AskUnmute):
            return self._mute(member, message)
        if isinstance(message, Lock | Unlock):
            return [self._lock(member, message, conn)]
        if isinstance(message, HearingControl):
            return [self._hearing_action(member, message, conn)]
        if isinstance(message, Leave):
            self._require_free(member)
            plan_participant_transition(
                participant_id=member.participant_id,
                current=member.state,
                to=ParticipantState.LEFT,
            )
            return [
                self._command_participant(
                    op=_Op.LEAVE,
                    actor=member.participant_id,
                    target=member,
                    to=ParticipantState.LEFT,
                    action="participant.leave",
                    reason=message.reason,
                    permission=None,
                    conn_id=conn.conn_id,
                    ref=message.id,
                )
            ]
        if isinstance(message, Hello):
            raise RefusedError(ErrorCode.ILLEGAL_STATE, "already authenticated on this connection")
        raise RefusedError(ErrorCode.UNKNOWN_TYPE, "message type not handled")  # pragma: no cover

    def _require_control(self, member: _Member, permission: Permission) -> None:
        if not role_may(member.role, permission):
            raise RefusedError(
                ErrorCode.FORBIDDEN, f"your role ({member.role}) may not {permission}"
            )
        if not member.grants.may_control:
            raise RefusedError(ErrorCode.FORBIDDEN, "your join token does not grant room control")
        if member.state is not ParticipantState.IN_HEARING:
            raise RefusedError(
                ErrorCode.ILLEGAL_STATE, f"controls need you in the hearing; you are {member.state}"
            )

    def _target(self, sender: _Member, participant_id: UUID, verb: str) -> _Member:
        target = self._members.get(participant_id)
        if target is None or target.state not in _ON_ROSTER:
            raise RefusedError(ErrorCode.NOT_FOUND, f"no participant {participant_id} here")
        if target is sender:
            raise RefusedError(ErrorCode.FORBIDDEN, f"you cannot {verb} yourself")
        if target.participant_id == self._presiding and target.role is Role.JUDGE:
            raise RefusedError(ErrorCode.FORBIDDEN, f"you cannot {verb} the presiding judge")
        self._require_free(target)
        return target

    def _require_free(self, member: _Member) -> None:
        if self._pending_for(member.participant_id) is not None:
            raise RefusedError(
                ErrorCode.BUSY,
                f"a change of participant {member.participant_id} is still being recorded",
            )

    @staticmethod
    def _plan(target: _Member, to: ParticipantState) -> None:
        try:
            plan_participant_transition(
                participant_id=target.participant_id, current=target.state, to=to
            )
        except IllegalTransitionError as e:
            raise RefusedError(ErrorCode.ILLEGAL_STATE, str(e)) from e

    def _admit(self, sender: _Member, message: Admit | CallIn, conn: _Conn) -> Output:
        call_in = isinstance(message, CallIn)
        permission = Permission.PARTICIPANT_CALL_IN if call_in else Permission.LOBBY_ADMIT
        verb = "call in" if call_in else "admit"
        self._require_control(sender, permission)
        target = self._target(sender, message.participant_id, verb)
        if self._hearing_state not in _ACTIVE_HEARING:
            raise RefusedError(
                ErrorCode.ILLEGAL_STATE, f"cannot {verb} while the hearing is {self._hearing_state}"
            )
        self._plan(target, ParticipantState.IN_HEARING)
        if self._locked and not target.admitted_once:
            raise RefusedError(
                ErrorCode.LOCKED, "the hearing is locked: unlock it to admit anyone new"
            )
        return self._command_participant(
            op=_Op.CALL_IN if call_in else _Op.ADMIT,
            actor=sender.participant_id,
            target=target,
            to=ParticipantState.IN_HEARING,
            action="participant.call_in" if call_in else "lobby.admit",
            reason=message.reason,
            permission=permission,
            conn_id=conn.conn_id,
            ref=message.id,
        )

    def _deny(self, sender: _Member, message: Deny, conn: _Conn) -> Output:
        self._require_control(sender, Permission.LOBBY_DENY)
        target = self._target(sender, message.participant_id, "deny")
        if target.state is not ParticipantState.IN_LOBBY:
            raise RefusedError(
                ErrorCode.ILLEGAL_STATE, f"only the lobby can be denied; they are {target.state}"
            )
        return self._command_participant(
            op=_Op.DENY,
            actor=sender.participant_id,
            target=target,
            to=ParticipantState.REMOVED,
            action="lobby.deny",
            reason=message.reason,
            permission=Permission.LOBBY_DENY,
            conn_id=conn.conn_id,
            ref=message.id,
        )

    def _dismiss(self, sender: _Member, message: Dismiss, conn: _Conn) -> Output:
        self._require_control(sender, Permission.PARTICIPANT_DISMISS)
        target = self._target(sender, message.participant_id, "dismiss")
        if target.role in STAFF_ROLES:
            raise RefusedError(ErrorCode.ILLEGAL_STATE, "judge and clerk do not wait in the lobby")
        if target.state is not ParticipantState.IN_HEARING:
            raise RefusedError(
                ErrorCode.ILLEGAL_STATE,
                f"only the hearing can be dismissed; they are {target.state}",
            )
        return self._command_participant(
            op=_Op.DISMISS,
            actor=sender.participant_id,
            target=target,
            to=ParticipantState.IN_LOBBY,
            action="participant.dismiss",
            reason=message.reason,
            permission=Permission.PARTICIPANT_DISMISS,
            conn_id=conn.conn_id,
            ref=message.id,
        )

    def _remove(self, sender: _Member, message: Remove, conn: _Conn) -> Output:
        self._require_control(sender, Permission.PARTICIPANT_REMOVE)
        target = self._target(sender, message.participant_id, "remove")
        self._plan(target, ParticipantState.REMOVED)
        return self._command_participant(
            op=_Op.REMOVE,
            actor=sender.participant_id,
            target=target,
            to=ParticipantState.REMOVED,
            action="participant.remove",
            reason=message.reason,
            permission=Permission.PARTICIPANT_REMOVE,
            conn_id=conn.conn_id,
            ref=message.id,
        )

    def _mute(self, sender: _Member, message: Mute | AskUnmute) -> list[Output]:
        # Mute is enforced by the media node and is not a participant state: no commit needed.
        self._require_control(sender, Permission.PARTICIPANT_MUTE)
        target = self._target(sender, message.participant_id, "mute")
        if target.state is not ParticipantState.IN_HEARING:
            raise RefusedError(
                ErrorCode.ILLEGAL_STATE, f"only the hearing can be muted; they are {target.state}"
            )
        if not target.may_publish:
            raise RefusedError(ErrorCode.ILLEGAL_STATE, f"a {target.role} does not publish")
        kind: MediaKind = message.kind
        mute = isinstance(message, Mute)
        if kind == "audio":
            target.muted_audio = mute
        else:
            target.muted_video = mute
        conn = self._ready_conn(target)
        if conn is None:
            return []
        notice: Outgoing = (
            Muted(kind=kind, by=sender.participant_id)
            if mute
            else UnmuteRequested(kind=kind, by=sender.participant_id)
        )
        return [Send(conn.conn_id, notice)]

    def _lock(self, sender: _Member, message: Lock | Unlock, conn: _Conn) -> Output:
        self._require_control(sender, Permission.HEARING_LOCK)
        lock = isinstance(message, Lock)
        if self._locked is lock:
            raise RefusedError(
                ErrorCode.ILLEGAL_STATE,
                f"the hearing is already {'locked' if lock else 'unlocked'}",
            )
        self._require_hearing_free()
        command = SetLocked(self._command_id(), sender.participant_id, lock, message.reason)
        return self._remember(command, _Op.LOCK, conn.conn_id, message.id)

    def _hearing_action(self, sender: _Member, message: HearingControl, conn: _Conn) -> Output:
        action = HearingAction(message.action)
        self._require_control(sender, ACTION_PERMISSION[action])
        try:
            plan_hearing_transition(
                hearing_id=self.hearing_id, current=self._hearing_state, action=action
            )
        except IllegalTransitionError as e:
            raise RefusedError(ErrorCode.ILLEGAL_STATE, str(e)) from e
        self._require_hearing_free()
        command = ChangeHearingState(
            self._command_id(), sender.participant_id, action, message.reason
        )
        return self._remember(command, _Op.HEARING, conn.conn_id, message.id)

    def _require_hearing_free(self) -> None:
        if self._hearing_op_pending():
            raise RefusedError(ErrorCode.BUSY, "a change of the hearing is still being recorded")

    # Commands ---------------------------------------------------------------------------------

    def _command_id(self) -> str:
        self._next_command += 1
        return f"{self.hearing_id}:{self._next_command}"

    def _remember(self, command: Command, op: _Op, conn_id: str | None, ref: str | None) -> Command:
        self._pending[command.command_id] = _Pending(command, op, conn_id, ref)
        return command

    def _command_participant(
        self,
        *,
        op: _Op,
        actor: UUID | None,
        target: _Member,
        to: ParticipantState,
        action: str,
        reason: str,
        permission: Permission | None,
        conn_id: str | None,
        ref: str | None,
        remaining: tuple[ParticipantState, ...] = (),
        join_event: AttendanceEvent = AttendanceEvent.ENTERED_LOBBY,
    ) -> Command:
        # Never ask the record for a move the state machine refuses.
        plan_participant_transition(
            participant_id=target.participant_id, current=target.state, to=to
        )
        command = ChangeParticipantState(
            command_id=self._command_id(),
            actor=actor,
            participant_id=target.participant_id,
            to=to,
            action=action,
            reason=reason,
            permission=permission,
        )
        self._pending[command.command_id] = _Pending(
            command,
            op,
            conn_id,
            ref,
            target=target.participant_id,
            remaining=remaining,
            join_event=join_event,
        )
        return command

    def _pending_for(self, participant_id: UUID) -> _Pending | None:
        for pending in self._pending.values():
            if pending.target == participant_id:
                return pending
        return None

    def _check_judge_drop(self, now: datetime) -> list[Output]:
        judge = self._members.get(self._presiding) if self._presiding is not None else None
        if (
            judge is None
            or judge.auto_paused
            or self._ready_conn(judge) is not None
            or judge.dropped_at is None
            or now - judge.dropped_at < self.config.judge_drop_grace
            or self._hearing_state is not HearingState.IN_SESSION
            or self._hearing_op_pending()
        ):
            return []
        judge.auto_paused = True
        command = ChangeHearingState(
            self._command_id(), None, HearingAction.PAUSE, "presiding_judge_disconnected"
        )
        logger.warning(
            "presiding judge away for %ss: pausing",
            int((now - judge.dropped_at).total_seconds()),
            extra={"hearing_id": str(self.hearing_id)},
        )
        return [self._remember(command, _Op.AUTO_PAUSE, None, None)]

    def _hearing_op_pending(self) -> bool:
        return any(p.op in _HEARING_OPS for p in self._pending.values())

    def _check_recording_pause(self) -> list[Output]:
        if not self._recording_pause_due:
            return []
        if self._hearing_state is not HearingState.IN_SESSION:
            self._recording_pause_due = False  # already not in session: nothing goes unrecorded
            return []
        if self._hearing_op_pending():
            return []  # on a later tick, once that command is settled
        self._recording_pause_due = False
        command = ChangeHearingState(
            self._command_id(), None, HearingAction.PAUSE, RECORDING_FAILED_REASON
        )
        logger.warning(
            "the recording failed: pausing the hearing", extra={"hearing_id": str(self.hearing_id)}
        )
        return [self._remember(command, _Op.RECORDING_PAUSE, None, None)]

    def _commit_failed(self, pending: _Pending, error: str, now: datetime) -> list[Output]:
        command = pending.command
        logger.warning(
            "command %s (%s) not recorded: %s",
            command.command_id,
            pending.op,
            error,
            extra={"hearing_id": str(self.hearing_id)},
        )
        out: list[Output] = []
        conn = self._conns.get(pending.conn_id) if pending.conn_id is not None else None
        if pending.op is _Op.JOIN and pending.target in self._members:
            # A takeover may have moved the join to a newer connection of the participant.
            member = self._members[pending.target]
            current = self._conns.get(member.conn_id) if member.conn_id is not None else None
            conn = current if current is not None and current.phase is ConnPhase.JOINING else None
        if pending.op is _Op.AUTO_PAUSE and self._presiding in self._members:
            self._members[self._presiding].auto_paused = False  # try again on the next tick
        if pending.op is _Op.RECORDING_PAUSE:
            self._recording_pause_due = True  # try again on the next tick
        if pending.op is _Op.JOIN and pending.target is not None:
            out.append(
                self._attend(
                    pending.target,
                    AttendanceEvent.JOIN_REFUSED,
                    now,
                    AttendanceReason.COMMIT_FAILED,
                )
            )
            if conn is not None:
                out.append(
                    self._error(
                        conn.conn_id, ErrorCode.COMMIT_FAILED, f"could not join: {error}", None
                    )
                )
                out += self._close(conn, CloseCode.INTERNAL_ERROR, "join_not_recorded", now)
            return out
        if conn is not None:
            what = getattr(command, "action", "lock" if isinstance(command, SetLocked) else "")
            out.append(
                self._error(
                    conn.conn_id,
                    ErrorCode.COMMIT_FAILED,
                    f"{what} was not recorded, nothing changed: {error}",
                    pending.ref,
                )
            )
        return out

    def _apply(self, pending: _Pending, now: datetime) -> list[Output]:
        command = pending.command
        if isinstance(command, ChangeHearingState):
            return self._apply_hearing(command, now)
        if isinstance(command, SetLocked):
            self._locked = command.locked
            logger.info(
                "hearing %s: locked %s",
                self.hearing_id,
                command.locked,
                extra={"hearing_id": str(self.hearing_id)},
            )
            return self._broadcast_hearing(
                "lock" if command.locked else "unlock", command.reason, command.actor
            )
        member = self._members[command.participant_id]
        old = member.state
        member.state = command.to
        logger.info(
            "participant %s: %s -> %s (%s)",
            member.participant_id,
            old,
            command.to,
            command.action,
            extra={
                "hearing_id": str(self.hearing_id),
                "participant_id": str(member.participant_id),
            },
        )
        if command.to is ParticipantState.IN_LOBBY:
            self._next_lobby_seq += 1
            member.lobby_seq = self._next_lobby_seq
        pid = member.participant_id
        conn = self._conns.get(member.conn_id) if member.conn_id is not None else None
        op = pending.op
        out: list[Output] = []
        if op is _Op.JOIN:
            if conn is None or conn.phase is not ConnPhase.JOINING:
                return out  # gone meanwhile: its grace period runs from the drop
            if pending.remaining:
                out.append(
                    self._command_participant(
                        op=_Op.JOIN,
                        actor=pid,
                        target=member,
                        to=pending.remaining[0],
                        action="participant.join",
                        reason="",
                        permission=None,
                        conn_id=conn.conn_id,
                        ref=None,
                        remaining=pending.remaining[1:],
                        join_event=pending.join_event,
                    )
                )
                return out
            out.append(self._attend(pid, pending.join_event, now))
            return out + self._welcome(member, conn, now, resumed=False)
        if op in (_Op.ADMIT, _Op.CALL_IN, _Op.DISMISS):
            if op is _Op.DISMISS:
                event = AttendanceEvent.DISMISSED
            else:
                member.admitted_once = True
                event = AttendanceEvent.ADMITTED if op is _Op.ADMIT else AttendanceEvent.CALLED_IN
            out.append(self._attend(pid, event, now))
            ready = self._ready_conn(member)
            if ready is not None:
                out.append(
                    Send(
                        ready.conn_id,
                        ParticipantStateChanged(
                            participant_id=pid,
                            state=member.state,
                            reason=command.reason,
                            by=command.actor,
                        ),
                    )
                )
            return out
        if op in (_Op.DENY, _Op.REMOVE):
            denied = op is _Op.DENY
            out.append(
                self._attend(
                    pid,
                    AttendanceEvent.DENIED if denied else AttendanceEvent.DISCONNECTED,
                    now,
                    AttendanceReason.NONE if denied else AttendanceReason.REMOVED,
                )
            )
            out.append(self._release(pid))
            if conn is not None and command.actor is not None:
                if conn.phase is ConnPhase.READY:
                    out.append(
                        Send(
                            conn.conn_id,
                            Removed(denied=denied, reason=command.reason, by=command.actor),
                        )
                    )
                out += self._close(
                    conn, CloseCode.FORBIDDEN, "denied" if denied else "removed", now
                )
            member.dropped_at = None
            return out
        if op is _Op.LEAVE:
            out.append(self._release(pid))
            if conn is not None:
                out.append(
                    self._attend(
                        pid, AttendanceEvent.DISCONNECTED, now, AttendanceReason.CLOSED_BY_USER
                    )
                )
                out += self._close(conn, CloseCode.NORMAL, "left", now)
            member.dropped_at = None
            return out
        # _Op.GRACE_EXPIRED
        out.append(self._attend(pid, AttendanceEvent.MARKED_DISCONNECTED, now, member.drop_reason))
        return out

    def _apply_hearing(
        self, command: ChangeHearingState, now: datetime, *, to: HearingState | None = None
    ) -> list[Output]:
        old = self._hearing_state
        self._hearing_state = to if to is not None else HEARING_ACTIONS[command.action][1]
        logger.info(
            "hearing %s: %s -> %s (%s)",
            self.hearing_id,
            old,
            self._hearing_state,
            command.action,
            extra={"hearing_id": str(self.hearing_id)},
        )
        # The recording follows first: nobody hears "in session" before the recorder runs.
        out: list[Output] = [
            FollowRecording(
                state=self._hearing_state,
                action=command.action.value,
                reason=command.reason,
                actor=command.actor,
            )
        ]
        out += self._broadcast_hearing(command.action.value, command.reason, command.actor)
        if self._hearing_state in FINAL_HEARING_STATES:
            for conn in list(self._conns.values()):
                member = self._member_or_none(conn)
                if member is not None and conn.phase is ConnPhase.READY:
                    out.append(
                        self._attend(
                            member.participant_id,
                            AttendanceEvent.DISCONNECTED,
                            now,
                            AttendanceReason.HEARING_CLOSED,
                        )
                    )
                if member is not None:
                    member.dropped_at = None
                out += self._close(conn, CloseCode.NORMAL, "hearing_closed", now)
            for member in self._members.values():
                member.dropped_at = None
                if member.participant_id in self._media_sent:
                    out.append(self._release(member.participant_id))
        return out

    def _broadcast_hearing(self, action: str, reason: str, by: UUID | None) -> list[Output]:
        # Everyone connected learns the hearing's state, the lobby included (it says nothing
        # about who is in the hearing).
        message = HearingStateChanged(
            state=self._hearing_state, locked=self._locked, action=action, reason=reason, by=by
        )
        return [
            Send(conn.conn_id, message)
            for conn in self._conns.values()
            if conn.phase is ConnPhase.READY
        ]

    # Connections ------------------------------------------------------------------------------

    def _welcome(
        self, member: _Member, conn: _Conn, now: datetime, *, resumed: bool
    ) -> list[Output]:
        conn.phase = ConnPhase.READY
        member.conn_id = conn.conn_id
        member.dropped_at = None
        member.drop_reason = AttendanceReason.NONE
        member.auto_paused = False
        member.resume_token = self._new_resume_token()
        if member.state is ParticipantState.IN_HEARING and member.role in STAFF_ROLES:
            member.admitted_once = True
        if self._presiding is None and member.role is Role.JUDGE:
            self._presiding = member.participant_id
        roster: list[RosterEntry] | None = None
        lobby_position: int | None = None
        if member.state is ParticipantState.IN_HEARING:
            self._refresh_roster_version()
            view = self._roster_view(member)
            conn.roster_sent = view
            roster = list(view)
        else:
            lobby = self._lobby()
            position = lobby.index(member) + 1
            conn.lobby_sent = (position, len(lobby))
            lobby_position = position
        welcome = Welcome(
            participant_id=member.participant_id,
            role=member.role,
            grants=GrantsView(
                may_publish=member.may_publish,
                may_subscribe=member.may_subscribe,
                may_control=member.is_controller,
            ),
            state=member.state,
            resume_token=member.resume_token,
            resumed=resumed,
            hearing_state=self._hearing_state,
            locked=self._locked,
            presiding_judge_id=self._presiding,
            roster_version=self._roster_version if roster is not None else None,
            roster=roster,
            lobby_position=lobby_position,
            heartbeat_interval_s=self.config.heartbeat_interval.total_seconds(),
            max_message_bytes=self.config.max_message_bytes,
        )
        out: list[Output] = [Send(conn.conn_id, welcome)]
        if member.is_controller and self._recording is not None:
            out.append(Send(conn.conn_id, self._recording))
        return out

    def _close(
        self,
        conn: _Conn,
        code: int,
        reason: str,
        now: datetime,
        drop_reason: AttendanceReason | None = None,
    ) -> list[Output]:
        """Say bye and close; a member's place is then kept for the grace period."""
        self._conns.pop(conn.conn_id, None)
        out: list[Output] = [
            Send(conn.conn_id, Bye(reason=reason)),
            Close(conn.conn_id, code, reason),
        ]
        member = self._member_or_none(conn)
        if member is not None and member.conn_id == conn.conn_id:
            out += self._drop(conn, now, drop_reason or AttendanceReason.NONE)
        return out

    def _drop(self, conn: _Conn, now: datetime, reason: AttendanceReason) -> list[Output]:
        member = self._member_or_none(conn)
        if member is None or member.conn_id != conn.conn_id:
            return []
        member.conn_id = None
        out: list[Output] = []
        if reason is not AttendanceReason.NONE:
            out.append(
                self._attend(member.participant_id, AttendanceEvent.DISCONNECTED, now, reason)
            )
        if member.state in _HOLDS_PLACE or self._pending_for(member.participant_id) is not None:
            member.dropped_at = now
            member.drop_reason = (
                reason if reason is not AttendanceReason.NONE else member.drop_reason
            )
            if member.drop_reason is AttendanceReason.NONE:
                member.drop_reason = AttendanceReason.NETWORK_LOSS
        return out

    def _member_of(self, conn: _Conn) -> _Member:
        member = self._member_or_none(conn)
        if member is None:  # a READY connection always has its member
            raise RoomUsageError(f"connection {conn.conn_id!r} has no participant")
        return member

    def _member_or_none(self, conn: _Conn) -> _Member | None:
        if conn.participant_id is None:
            return None
        return self._members.get(conn.participant_id)

    def _restored_recently(self, now: datetime) -> bool:
        return (
            self._restored_at is not None and now - self._restored_at < self.config.reconnect_grace
        )

    def _ready_conn(self, member: _Member) -> _Conn | None:
        if member.conn_id is None:
            return None
        conn = self._conns.get(member.conn_id)
        if conn is None or conn.phase is not ConnPhase.READY:
            return None
        return conn

    def _is_online(self, member: _Member) -> bool:
        return self._ready_conn(member) is not None

    # Derived views, reconciled after every call ----------------------------------------------

    def _controller_conns(self) -> list[str]:
        return [
            conn.conn_id
            for member in self._members.values()
            if member.is_controller
            and member.state is ParticipantState.IN_HEARING
            and (conn := self._ready_conn(member)) is not None
        ]

    def _lobby(self) -> list[_Member]:
        return sorted(
            (m for m in self._members.values() if m.state is ParticipantState.IN_LOBBY),
            key=lambda m: m.lobby_seq,
        )

    def _entry(self, member: _Member) -> RosterEntry:
        if self._is_online(member):
            presence = Presence.ONLINE
        elif member.dropped_at is not None and member.state in _HOLDS_PLACE:
            presence = Presence.RECONNECTING
        else:
            presence = Presence.OFFLINE
        # Built from the room's own checked state on every event: no need to validate again.
        return RosterEntry.model_construct(
            participant_id=member.participant_id,
            role=member.role,
            display_name=member.display_name,
            state=member.state,
            presence=presence,
            presiding=member.participant_id == self._presiding and member.role is Role.JUDGE,
            mic=member.mic,
            camera=member.camera,
            muted_audio=member.muted_audio,
            muted_video=member.muted_video,
        )

    def _full_roster(self) -> tuple[RosterEntry, ...]:
        return tuple(
            self._entry(m)
            for m in sorted(self._members.values(), key=_roster_order)
            if m.state in _ON_ROSTER
        )

    def _roster_view(
        self, viewer: _Member, full: tuple[RosterEntry, ...] | None = None
    ) -> tuple[RosterEntry, ...]:
        if full is None:
            full = self._full_roster()
        if viewer.is_controller:
            return full
        # Parties see who is in the hearing, never who waits in the lobby (witness screening).
        return tuple(e for e in full if e.state is ParticipantState.IN_HEARING)

    def _refresh_roster_version(self) -> tuple[RosterEntry, ...]:
        full = self._full_roster()
        if full != self._roster_key:
            self._roster_key = full
            self._roster_version += 1
        return full

    def _health_view(self) -> list[HealthEntry]:
        entries = []
        for m in sorted(self._members.values(), key=lambda m: str(m.participant_id)):
            if m.stats is None or not self._is_online(m):
                continue
            entries.append(
                HealthEntry(
                    participant_id=m.participant_id,
                    level=health.classify(m.stats.packet_loss_pct),
                    packet_loss_pct=m.stats.packet_loss_pct,
                    rtt_ms=m.stats.rtt_ms,
                    jitter_ms=m.stats.jitter_ms,
                    bitrate_kbps=m.stats.bitrate_kbps,
                )
            )
        return entries

    def _active(self) -> list[_Member]:
        return [
            m
            for m in self._members.values()
            if m.state is ParticipantState.IN_HEARING and self._is_online(m)
        ]

    def _desired_media(self, member: _Member, active: list[_Member]) -> _Media | None:
        """What the media node should enforce for ``member``; None: no media peer at all (the
        lobby, a dropped connection): its peer is torn down and the browser starts again with
        ``media_start`` when it is back in the hearing."""
        if member not in active:
            return None
        subscribe = (
            frozenset(m.participant_id for m in active if m is not member and m.may_publish)
            if member.may_subscribe
            else frozenset()
        )
        return (
            member.may_publish and not member.muted_audio,
            member.may_publish and not member.muted_video,
            subscribe,
            member.may_publish,
        )

    def _reconcile(self, *, force_media: bool = False) -> list[Output]:
        # Runs after every event: each view is built once per call and each distinct message
        # once (recipients with the same view share it, so the adapter can encode it once).
        out: list[Output] = []
        full = self._refresh_roster_version()
        lobby = self._lobby()
        positions = {m.participant_id: i for i, m in enumerate(lobby, start=1)}
        rosters: dict[tuple[RosterEntry, ...], Roster] = {}
        health_entries: list[HealthEntry] | None = None
        health_message: Health | None = None
        for conn in self._conns.values():
            member = self._member_or_none(conn)
            if conn.phase is not ConnPhase.READY or member is None:
                continue
            if member.state is ParticipantState.IN_HEARING:
                conn.lobby_sent = None
                view = self._roster_view(member, full)
                if view != conn.roster_sent:
                    conn.roster_sent = view
                    message = rosters.get(view)
                    if message is None:
                        message = Roster(version=self._roster_version, participants=list(view))
                        rosters[view] = message
                    out.append(Send(conn.conn_id, message))
                if member.is_controller:
                    if health_entries is None:
                        health_entries = self._health_view()
                    key = tuple((e.participant_id, e.level) for e in health_entries)
                    if key != conn.health_sent and (key or conn.health_sent):
                        conn.health_sent = key
                        if health_message is None:
                            health_message = Health(participants=health_entries)
                        out.append(Send(conn.conn_id, health_message))
            elif member.state is ParticipantState.IN_LOBBY:
                conn.roster_sent = None
                conn.health_sent = None
                where = (positions[member.participant_id], len(lobby))
                if where != conn.lobby_sent:
                    conn.lobby_sent = where
                    out.append(Send(conn.conn_id, LobbyPosition(position=where[0], of=where[1])))
        active = self._active()
        for member in self._members.values():
            pid = member.participant_id
            desired = self._desired_media(member, active)
            sent = self._media_sent.get(pid)
            if desired is None:
                if sent is not None:
                    out.append(self._release(pid))
            elif force_media or desired != sent:
                self._media_sent[pid] = desired
                out.append(MediaGrant(pid, *desired))
        return out

    # Small helpers ----------------------------------------------------------------------------

    def _release(self, participant_id: UUID) -> MediaRelease:
        self._media_sent.pop(participant_id, None)
        return MediaRelease(participant_id)

    def _attend(
        self,
        participant_id: UUID,
        event: AttendanceEvent,
        now: datetime,
        reason: AttendanceReason = AttendanceReason.NONE,
    ) -> RecordAttendance:
        return RecordAttendance(participant_id, event, reason, now)

    @staticmethod
    def _error(conn_id: str, code: ErrorCode, text: str, ref: str | None) -> Send:
        return Send(conn_id, Error(code=code, message=text, ref=ref))

    def _rate_text(self) -> str:
        return (
            f"more than {self.config.rate_per_s:g} messages/s (burst {self.config.rate_burst});"
            " messages are dropped until the rate falls"
        )


_ROLE_ORDER = {role: i for i, role in enumerate(Role)}


def _roster_order(member: _Member) -> tuple[int, str, str]:
    return (_ROLE_ORDER[member.role], member.display_name, str(member.participant_id))


def _check_now(now: datetime) -> None:
    if now.tzinfo is None:
        raise RoomUsageError("the room needs timezone-aware UTC datetimes")
