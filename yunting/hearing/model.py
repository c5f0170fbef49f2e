"""Hearing domain: cases, hearings, participants, their states and who may do what.

Pure data and rules, no I/O. Every state change goes through ``plan_hearing_transition`` or
``plan_participant_transition``, which validate the move and describe it; the service layer
persists the result and writes the audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

from yunting.hearing.errors import IllegalTransitionError


class CaseStatus(StrEnum):
    OPEN = "open"  # 立案, proceedings under way
    DECIDED = "decided"  # 已判决 / 已裁定
    CLOSED = "closed"  # 已结案 (archived)


class PartySide(StrEnum):
    PLAINTIFF = "plaintiff"  # 原告
    DEFENDANT = "defendant"  # 被告
    THIRD_PARTY = "third_party"  # 第三人


class StaffRole(StrEnum):
    JUDGE = "judge"
    CLERK = "clerk"
    ADMIN = "admin"


class Role(StrEnum):
    """The role a participant has in one hearing."""

    JUDGE = "judge"
    CLERK = "clerk"
    PLAINTIFF = "plaintiff"
    DEFENDANT = "defendant"
    THIRD_PARTY = "third_party"
    COUNSEL = "counsel"
    WITNESS = "witness"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"


S = TypeVar("S", bound=StrEnum)

STAFF_ROLES: frozenset[Role] = frozenset({Role.JUDGE, Role.CLERK})
# Who may open a hearing's record from their own link where the court shares it: the parties
# and their counsel, not witnesses, interpreters or the public.
RECORD_VIEWER_ROLES: frozenset[Role] = frozenset(
    {Role.PLAINTIFF, Role.DEFENDANT, Role.THIRD_PARTY, Role.COUNSEL}
)


class HearingState(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"  # lobby open, people may join and wait
    IN_SESSION = "in_session"
    PAUSED = "paused"  # 休庭 (a recess the judge decided)
    SUSPENDED = "suspended"  # 中止 (technical problem)
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ParticipantState(StrEnum):
    INVITED = "invited"
    VERIFIED = "verified"  # identity checked
    IN_LOBBY = "in_lobby"
    IN_HEARING = "in_hearing"
    DISCONNECTED = "disconnected"
    LEFT = "left"
    REMOVED = "removed"


class HearingAction(StrEnum):
    OPEN_LOBBY = "open_lobby"
    START = "start"
    PAUSE = "pause"
    SUSPEND = "suspend"
    RESUME = "resume"
    CLOSE = "close"
    CANCEL = "cancel"


# action -> (states it may be taken from, state it leads to)
HEARING_ACTIONS: Mapping[HearingAction, tuple[frozenset[HearingState], HearingState]] = {
    HearingAction.OPEN_LOBBY: (frozenset({HearingState.SCHEDULED}), HearingState.OPEN),
    HearingAction.START: (frozenset({HearingState.OPEN}), HearingState.IN_SESSION),
    HearingAction.PAUSE: (frozenset({HearingState.IN_SESSION}), HearingState.PAUSED),
    HearingAction.SUSPEND: (
        frozenset({HearingState.IN_SESSION, HearingState.PAUSED}),
        HearingState.SUSPENDED,
    ),
    HearingAction.RESUME: (
        frozenset({HearingState.PAUSED, HearingState.SUSPENDED}),
        HearingState.IN_SESSION,
    ),
    HearingAction.CLOSE: (
        frozenset({HearingState.IN_SESSION, HearingState.PAUSED, HearingState.SUSPENDED}),
        HearingState.CLOSED,
    ),
    HearingAction.CANCEL: (
        frozenset({HearingState.SCHEDULED, HearingState.OPEN}),
        HearingState.CANCELLED,
    ),
}

# The state graph, derived from the actions so the two can never disagree.
HEARING_TRANSITIONS: Mapping[HearingState, frozenset[HearingState]] = {
    state: frozenset(to for sources, to in HEARING_ACTIONS.values() if state in sources)
    for state in HearingState
}

PARTICIPANT_TRANSITIONS: Mapping[ParticipantState, frozenset[ParticipantState]] = {
    ParticipantState.INVITED: frozenset(
        {ParticipantState.VERIFIED, ParticipantState.REMOVED, ParticipantState.IN_LOBBY}
    ),
    ParticipantState.VERIFIED: frozenset(
        {ParticipantState.IN_LOBBY, ParticipantState.LEFT, ParticipantState.REMOVED}
    ),
    ParticipantState.IN_LOBBY: frozenset(
        {
            ParticipantState.IN_HEARING,  # admitted
            ParticipantState.DISCONNECTED,
            ParticipantState.LEFT,
            ParticipantState.REMOVED,  # denied or removed
        }
    ),
    ParticipantState.IN_HEARING: frozenset(
        {
            ParticipantState.IN_LOBBY,  # dismissed back to the lobby
            ParticipantState.DISCONNECTED,
            ParticipantState.LEFT,
            ParticipantState.REMOVED,
        }
    ),
    ParticipantState.DISCONNECTED: frozenset(
        {
            ParticipantState.IN_HEARING,  # resumed inside the grace period
            ParticipantState.IN_LOBBY,
            ParticipantState.LEFT,
            ParticipantState.REMOVED,
        }
    ),
    # Someone who left may come back, but must prove identity again.
    ParticipantState.LEFT: frozenset({ParticipantState.VERIFIED, ParticipantState.REMOVED}),
    ParticipantState.REMOVED: frozenset(),
}

FINAL_HEARING_STATES: frozenset[HearingState] = frozenset(
    {HearingState.CLOSED, HearingState.CANCELLED}
)


class Permission(StrEnum):
    """Things a role may do. Checked on every API route and (later) every signaling command."""

    CASE_CREATE = "case.create"
    CASE_VIEW = "case.view"
    HEARING_SCHEDULE = "hearing.schedule"
    HEARING_VIEW = "hearing.view"
    HEARING_OPEN_LOBBY = "hearing.open_lobby"
    HEARING_START = "hearing.start"
    HEARING_PAUSE = "hearing.pause"
    HEARING_SUSPEND = "hearing.suspend"
    HEARING_RESUME = "hearing.resume"
    HEARING_CLOSE = "hearing.close"
    HEARING_CANCEL = "hearing.cancel"
    HEARING_LOCK = "hearing.lock"
    PARTICIPANT_ADD = "participant.add"
    PARTICIPANT_ISSUE_LINK = "participant.issue_link"
    PARTICIPANT_REVOKE_LINK = "participant.revoke_link"
    NOTICE_SEND = "notice.send"
    LOBBY_ADMIT = "lobby.admit"
    LOBBY_DENY = "lobby.deny"
    PARTICIPANT_CALL_IN = "participant.call_in"
    PARTICIPANT_DISMISS = "participant.dismiss"
    PARTICIPANT_MUTE = "participant.mute"
    PARTICIPANT_REMOVE = "participant.remove"
    RECORDING_CONTROL = "recording.control"
    MINUTES_EDIT = "minutes.edit"
    MINUTES_SIGN = "minutes.sign"
    MEDIA_PUBLISH = "media.publish"
    MEDIA_SUBSCRIBE = "media.subscribe"
    SERVICE_ORDER = "service.order"
    USER_MANAGE = "user.manage"


P = Permission

_PARTY_PERMISSIONS = frozenset({P.HEARING_VIEW, P.MEDIA_PUBLISH, P.MEDIA_SUBSCRIBE})

# Who may do what in a hearing. The judge presides; the clerk runs the room for the judge
# (admits, keeps minutes, may open the lobby) but the judge alone starts, pauses, closes, removes.
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.JUDGE: frozenset(
        {
            P.CASE_VIEW,
            P.HEARING_VIEW,
            P.HEARING_OPEN_LOBBY,
            P.HEARING_START,
            P.HEARING_PAUSE,
            P.HEARING_SUSPEND,
            P.HEARING_RESUME,
            P.HEARING_CLOSE,
            P.HEARING_CANCEL,
            P.HEARING_LOCK,
            P.LOBBY_ADMIT,
            P.LOBBY_DENY,
            P.PARTICIPANT_CALL_IN,
            P.PARTICIPANT_DISMISS,
            P.PARTICIPANT_MUTE,
            P.PARTICIPANT_REMOVE,
            P.RECORDING_CONTROL,
            P.MINUTES_SIGN,
            P.MEDIA_PUBLISH,
            P.MEDIA_SUBSCRIBE,
        }
    ),
    Role.CLERK: frozenset(
        {
            P.CASE_VIEW,
            P.HEARING_VIEW,
            P.HEARING_OPEN_LOBBY,
            # A clerk may suspend for a technical problem (the court cannot wait for the judge
            # to notice a dead recorder), but not pause, resume or close the trial.
            P.HEARING_SUSPEND,
            P.LOBBY_ADMIT,
            P.LOBBY_DENY,
            P.PARTICIPANT_MUTE,
            P.PARTICIPANT_CALL_IN,
            P.MINUTES_EDIT,
            P.MEDIA_PUBLISH,
            P.MEDIA_SUBSCRIBE,
        }
    ),
    Role.PLAINTIFF: _PARTY_PERMISSIONS,
    Role.DEFENDANT: _PARTY_PERMISSIONS,
    Role.THIRD_PARTY: _PARTY_PERMISSIONS,
    Role.COUNSEL: _PARTY_PERMISSIONS,
    Role.WITNESS: _PARTY_PERMISSIONS,
    Role.INTERPRETER: _PARTY_PERMISSIONS,
    # Public hearings (公开审理): observers watch, never publish.
    Role.OBSERVER: frozenset({P.HEARING_VIEW, P.MEDIA_SUBSCRIBE}),
}

# Staff accounts act outside any one hearing (creating cases, scheduling, serving documents).
STAFF_PERMISSIONS: Mapping[StaffRole, frozenset[Permission]] = {
    StaffRole.JUDGE: ROLE_PERMISSIONS[Role.JUDGE]
    | frozenset({P.HEARING_SCHEDULE, P.PARTICIPANT_ADD, P.PARTICIPANT_ISSUE_LINK}),
    StaffRole.CLERK: ROLE_PERMISSIONS[Role.CLERK]
    | frozenset(
        {
            P.CASE_CREATE,
            P.HEARING_SCHEDULE,
            P.HEARING_CANCEL,
            P.PARTICIPANT_ADD,
            P.PARTICIPANT_ISSUE_LINK,
            P.PARTICIPANT_REVOKE_LINK,
            P.NOTICE_SEND,
            P.SERVICE_ORDER,
        }
    ),
    StaffRole.ADMIN: frozenset({P.USER_MANAGE, P.CASE_VIEW, P.HEARING_VIEW}),
}

ACTION_PERMISSION: Mapping[HearingAction, Permission] = {
    HearingAction.OPEN_LOBBY: P.HEARING_OPEN_LOBBY,
    HearingAction.START: P.HEARING_START,
    HearingAction.PAUSE: P.HEARING_PAUSE,
    HearingAction.SUSPEND: P.HEARING_SUSPEND,
    HearingAction.RESUME: P.HEARING_RESUME,
    HearingAction.CLOSE: P.HEARING_CLOSE,
    HearingAction.CANCEL: P.HEARING_CANCEL,
}


def role_may(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def staff_may(role: StaffRole, permission: Permission) -> bool:
    return permission in STAFF_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Grants:
    """What a join token lets its holder do with media and the room (cf. LiveKit video grants)."""

    may_publish: bool
    may_subscribe: bool
    may_control: bool

    @classmethod
    def for_role(cls, role: Role) -> Grants:
        perms = ROLE_PERMISSIONS[role]
        return cls(
            may_publish=P.MEDIA_PUBLISH in perms,
            may_subscribe=P.MEDIA_SUBSCRIBE in perms,
            may_control=P.LOBBY_ADMIT in perms,
        )


@dataclass(frozen=True, slots=True)
class Transition(Generic[S]):
    """A validated state change, ready to persist with its audit event."""

    entity: str
    entity_id: UUID
    from_state: S
    to_state: S
    reason: str


def plan_hearing_transition(
    *, hearing_id: UUID, current: HearingState, action: HearingAction, reason: str = ""
) -> Transition[HearingState]:
    """Validate ``action`` from ``current`` and return the transition it makes.

    Raises ``IllegalTransitionError`` naming the states the action needs.
    """
    sources, target = HEARING_ACTIONS[action]
    if current not in sources:
        allowed = ", ".join(sorted(sources))
        raise IllegalTransitionError(
            f"cannot {action} a hearing that is {current}: expected one of {allowed}"
        )
    return Transition("hearing", hearing_id, current, target, reason)


def plan_participant_transition(
    *,
    participant_id: UUID,
    current: ParticipantState,
    to: ParticipantState,
    reason: str = "",
) -> Transition[ParticipantState]:
    """Validate a participant state change against ``PARTICIPANT_TRANSITIONS``."""
    if to not in PARTICIPANT_TRANSITIONS[current]:
        allowed = ", ".join(sorted(PARTICIPANT_TRANSITIONS[current])) or "nothing (final)"
        raise IllegalTransitionError(
            f"participant cannot go from {current} to {to}: expected one of {allowed}"
        )
    return Transition("participant", participant_id, current, to, reason)


@dataclass(frozen=True, slots=True)
class Court:
    id: UUID
    name: str
    code: str


@dataclass(frozen=True, slots=True)
class Person:
    id: UUID
    court_id: UUID
    name: str
    phone: str | None
    email: str | None
    id_number_last4: str | None


@dataclass(frozen=True, slots=True)
class Case:
    id: UUID
    court_id: UUID
    number: str
    title: str
    cause: str
    status: CaseStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Party:
    id: UUID
    case_id: UUID
    person_id: UUID
    side: PartySide
    counsel_person_id: UUID | None


@dataclass(frozen=True, slots=True)
class Hearing:
    id: UUID
    case_id: UUID
    court_id: UUID
    scheduled_start: datetime
    expected_minutes: int
    is_public: bool
    recording_required: bool
    state: HearingState
    title: str
    locked: bool
    # The court lets the parties (not witnesses or observers) open the hearing's record.
    recording_shared: bool = False


@dataclass(frozen=True, slots=True)
class Participant:
    id: UUID
    hearing_id: UUID
    person_id: UUID
    role: Role
    state: ParticipantState
    display_name: str
    party_id: UUID | None


class ActorKind(StrEnum):
    STAFF = "staff"
    PARTICIPANT = "participant"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: a signed-in staff user, a participant holding a join token, or the system."""

    kind: ActorKind
    id: UUID | None
    court_id: UUID | None
    staff_role: StaffRole | None = None
    hearing_id: UUID | None = None
    role: Role | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(kind=ActorKind.SYSTEM, id=None, court_id=None)

    def may(self, permission: Permission, *, court_id: UUID, hearing_id: UUID | None) -> bool:
        """Whether this actor may exercise ``permission`` on something of ``court_id``."""
        if self.kind is ActorKind.SYSTEM:
            return True
        if self.kind is ActorKind.STAFF:
            return (
                self.staff_role is not None
                and self.court_id == court_id
                and staff_may(self.staff_role, permission)
            )
        return (
            self.role is not None
            and hearing_id is not None
            and self.hearing_id == hearing_id
            and role_may(self.role, permission)
        )
