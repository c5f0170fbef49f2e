"""The hearing and participant state machines and the role permission matrix."""

from __future__ import annotations

import uuid

import pytest

from yunting.hearing.errors import IllegalTransitionError
from yunting.hearing.model import (
    HEARING_ACTIONS,
    HEARING_TRANSITIONS,
    PARTICIPANT_TRANSITIONS,
    ROLE_PERMISSIONS,
    STAFF_PERMISSIONS,
    Actor,
    ActorKind,
    Grants,
    HearingAction,
    HearingState,
    ParticipantState,
    Permission,
    Role,
    StaffRole,
    plan_hearing_transition,
    plan_participant_transition,
)

H = HearingState
A = HearingAction

# The lifecycle as DESIGN.md draws it, written out independently of the model's tables.
EXPECTED_HEARING_MOVES = {
    (H.SCHEDULED, A.OPEN_LOBBY): H.OPEN,
    (H.SCHEDULED, A.CANCEL): H.CANCELLED,
    (H.OPEN, A.START): H.IN_SESSION,
    (H.OPEN, A.CANCEL): H.CANCELLED,
    (H.IN_SESSION, A.PAUSE): H.PAUSED,
    (H.IN_SESSION, A.SUSPEND): H.SUSPENDED,
    (H.IN_SESSION, A.CLOSE): H.CLOSED,
    (H.PAUSED, A.RESUME): H.IN_SESSION,
    (H.PAUSED, A.SUSPEND): H.SUSPENDED,
    (H.PAUSED, A.CLOSE): H.CLOSED,
    (H.SUSPENDED, A.RESUME): H.IN_SESSION,
    (H.SUSPENDED, A.CLOSE): H.CLOSED,
}


@pytest.mark.parametrize("state", list(HearingState))
@pytest.mark.parametrize("action", list(HearingAction))
def test_every_hearing_action_from_every_state(state: H, action: A) -> None:
    hearing_id = uuid.uuid4()
    expected = EXPECTED_HEARING_MOVES.get((state, action))
    if expected is None:
        with pytest.raises(IllegalTransitionError, match=f"cannot {action}"):
            plan_hearing_transition(hearing_id=hearing_id, current=state, action=action)
    else:
        t = plan_hearing_transition(
            hearing_id=hearing_id, current=state, action=action, reason="why"
        )
        assert (t.from_state, t.to_state, t.entity_id, t.reason) == (
            state,
            expected,
            hearing_id,
            "why",
        )


def test_final_hearing_states_have_no_way_out() -> None:
    assert HEARING_TRANSITIONS[H.CLOSED] == frozenset()
    assert HEARING_TRANSITIONS[H.CANCELLED] == frozenset()
    # Every non-final state can reach closed or cancelled.
    for state in (H.SCHEDULED, H.OPEN, H.IN_SESSION, H.PAUSED, H.SUSPENDED):
        assert HEARING_TRANSITIONS[state] & {H.CLOSED, H.CANCELLED} or any(
            HEARING_TRANSITIONS[nxt] & {H.CLOSED} for nxt in HEARING_TRANSITIONS[state]
        )


def test_illegal_hearing_transition_message_names_the_expected_states() -> None:
    with pytest.raises(IllegalTransitionError) as info:
        plan_hearing_transition(hearing_id=uuid.uuid4(), current=H.SCHEDULED, action=A.START)
    assert "scheduled" in str(info.value)
    assert "expected one of open" in str(info.value)


P = ParticipantState
ALLOWED_PARTICIPANT_MOVES = {
    (P.INVITED, P.VERIFIED),
    (P.INVITED, P.IN_LOBBY),
    (P.INVITED, P.REMOVED),
    (P.VERIFIED, P.IN_LOBBY),
    (P.VERIFIED, P.LEFT),
    (P.VERIFIED, P.REMOVED),
    (P.IN_LOBBY, P.IN_HEARING),
    (P.IN_LOBBY, P.DISCONNECTED),
    (P.IN_LOBBY, P.LEFT),
    (P.IN_LOBBY, P.REMOVED),
    (P.IN_HEARING, P.IN_LOBBY),
    (P.IN_HEARING, P.DISCONNECTED),
    (P.IN_HEARING, P.LEFT),
    (P.IN_HEARING, P.REMOVED),
    (P.DISCONNECTED, P.IN_HEARING),
    (P.DISCONNECTED, P.IN_LOBBY),
    (P.DISCONNECTED, P.LEFT),
    (P.DISCONNECTED, P.REMOVED),
    (P.LEFT, P.VERIFIED),
    (P.LEFT, P.REMOVED),
}


@pytest.mark.parametrize("current", list(ParticipantState))
@pytest.mark.parametrize("target", list(ParticipantState))
def test_every_participant_move(current: P, target: P) -> None:
    pid = uuid.uuid4()
    if (current, target) in ALLOWED_PARTICIPANT_MOVES:
        t = plan_participant_transition(participant_id=pid, current=current, to=target)
        assert (t.from_state, t.to_state) == (current, target)
    else:
        with pytest.raises(IllegalTransitionError):
            plan_participant_transition(participant_id=pid, current=current, to=target)


def test_removed_is_final() -> None:
    assert PARTICIPANT_TRANSITIONS[P.REMOVED] == frozenset()


def test_hearing_graph_is_derived_from_actions() -> None:
    for action, (sources, target) in HEARING_ACTIONS.items():
        for source in sources:
            assert target in HEARING_TRANSITIONS[source], action


# The permission matrix, written out as a court would describe it. "J" judge, "C" clerk,
# "p" parties/counsel/witness/interpreter, "o" observer.
PERM = Permission
MATRIX: dict[Permission, str] = {
    PERM.CASE_VIEW: "JC",
    PERM.HEARING_VIEW: "JCpo",
    PERM.HEARING_OPEN_LOBBY: "JC",
    PERM.HEARING_START: "J",
    PERM.HEARING_PAUSE: "J",
    PERM.HEARING_SUSPEND: "JC",
    PERM.HEARING_RESUME: "J",
    PERM.HEARING_CLOSE: "J",
    PERM.HEARING_CANCEL: "J",
    PERM.HEARING_LOCK: "J",
    PERM.LOBBY_ADMIT: "JC",
    PERM.LOBBY_DENY: "JC",
    PERM.PARTICIPANT_CALL_IN: "JC",
    PERM.PARTICIPANT_DISMISS: "J",
    PERM.PARTICIPANT_MUTE: "JC",
    PERM.PARTICIPANT_REMOVE: "J",
    PERM.RECORDING_CONTROL: "J",
    PERM.MINUTES_EDIT: "C",
    PERM.MINUTES_SIGN: "J",
    PERM.MEDIA_PUBLISH: "JCp",
    PERM.MEDIA_SUBSCRIBE: "JCpo",
}
LETTER = {
    Role.JUDGE: "J",
    Role.CLERK: "C",
    Role.PLAINTIFF: "p",
    Role.DEFENDANT: "p",
    Role.THIRD_PARTY: "p",
    Role.COUNSEL: "p",
    Role.WITNESS: "p",
    Role.INTERPRETER: "p",
    Role.OBSERVER: "o",
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_hearing_role_permission_matrix(role: Role, permission: Permission) -> None:
    expected = LETTER[role] in MATRIX.get(permission, "")
    assert (permission in ROLE_PERMISSIONS[role]) is expected


STAFF_ONLY = {
    PERM.CASE_CREATE: {StaffRole.CLERK},
    PERM.HEARING_SCHEDULE: {StaffRole.CLERK, StaffRole.JUDGE},
    PERM.PARTICIPANT_ADD: {StaffRole.CLERK, StaffRole.JUDGE},
    PERM.PARTICIPANT_ISSUE_LINK: {StaffRole.CLERK, StaffRole.JUDGE},
    PERM.PARTICIPANT_REVOKE_LINK: {StaffRole.CLERK},
    PERM.NOTICE_SEND: {StaffRole.CLERK},
    PERM.SERVICE_ORDER: {StaffRole.CLERK},
    PERM.USER_MANAGE: {StaffRole.ADMIN},
    PERM.HEARING_CANCEL: {StaffRole.CLERK, StaffRole.JUDGE},
}


@pytest.mark.parametrize("role", list(StaffRole))
@pytest.mark.parametrize("permission", list(STAFF_ONLY))
def test_staff_permission_matrix(role: StaffRole, permission: Permission) -> None:
    assert (permission in STAFF_PERMISSIONS[role]) is (role in STAFF_ONLY[permission])


def test_admin_cannot_run_hearings() -> None:
    for permission in (PERM.HEARING_START, PERM.LOBBY_ADMIT, PERM.MEDIA_PUBLISH):
        assert permission not in STAFF_PERMISSIONS[StaffRole.ADMIN]


@pytest.mark.parametrize(
    ("role", "grants"),
    [
        (Role.JUDGE, Grants(may_publish=True, may_subscribe=True, may_control=True)),
        (Role.CLERK, Grants(may_publish=True, may_subscribe=True, may_control=True)),
        (Role.WITNESS, Grants(may_publish=True, may_subscribe=True, may_control=False)),
        (Role.OBSERVER, Grants(may_publish=False, may_subscribe=True, may_control=False)),
    ],
)
def test_grants_follow_the_role(role: Role, grants: Grants) -> None:
    assert Grants.for_role(role) == grants


def test_actor_scoping() -> None:
    court, other_court = uuid.uuid4(), uuid.uuid4()
    hearing, other_hearing = uuid.uuid4(), uuid.uuid4()
    clerk = Actor(kind=ActorKind.STAFF, id=uuid.uuid4(), court_id=court, staff_role=StaffRole.CLERK)
    assert clerk.may(PERM.CASE_CREATE, court_id=court, hearing_id=None)
    assert not clerk.may(PERM.CASE_CREATE, court_id=other_court, hearing_id=None)
    assert not clerk.may(PERM.HEARING_START, court_id=court, hearing_id=hearing)

    party = Actor(
        kind=ActorKind.PARTICIPANT,
        id=uuid.uuid4(),
        court_id=court,
        hearing_id=hearing,
        role=Role.PLAINTIFF,
    )
    assert party.may(PERM.HEARING_VIEW, court_id=court, hearing_id=hearing)
    assert not party.may(PERM.HEARING_VIEW, court_id=court, hearing_id=other_hearing)
    assert not party.may(PERM.HEARING_VIEW, court_id=court, hearing_id=None)
    assert not party.may(PERM.CASE_VIEW, court_id=court, hearing_id=hearing)
