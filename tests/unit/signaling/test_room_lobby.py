"""Joining: judge and clerk go straight in, everyone else waits in the lobby to be admitted."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

import pytest

from tests.unit.signaling.harness import (
    OTHER_HEARING_ID,
    Harness,
    closes,
    error_codes,
    frames,
    of,
)
from yunting.hearing.model import Grants, HearingState, ParticipantState, Role
from yunting.hearing.tokens import JoinClaims
from yunting.signaling.errors import RoomUsageError
from yunting.signaling.outputs import (
    AttendanceEvent,
    AttendanceReason,
    ChangeParticipantState,
    MediaGrant,
    Output,
    RecordAttendance,
)


def attendance(out: Iterable[Output]) -> list[tuple[AttendanceEvent, AttendanceReason]]:
    return [(a.event, a.reason) for a in of(out, RecordAttendance)]


def test_judge_enters_the_hearing_only_once_both_steps_are_recorded() -> None:
    h = Harness()
    conn = h.new_conn()
    claims = h.claims(Role.JUDGE)
    h.hello(conn)
    out = h.connect(conn, claims, ParticipantState.INVITED)
    step1 = h.only_command(out, ChangeParticipantState)
    assert step1.to is ParticipantState.IN_LOBBY
    assert (step1.actor, step1.permission) == (claims.participant_id, None)
    assert frames(out, conn) == []  # nothing said before the record has it
    out = h.commit(step1)
    step2 = h.only_command(out, ChangeParticipantState)
    assert step2.to is ParticipantState.IN_HEARING
    assert frames(out, conn) == []
    out = h.commit(step2)
    (welcome,) = frames(out, conn, "welcome")
    assert welcome["state"] == "in_hearing"
    assert welcome["presiding_judge_id"] == str(claims.participant_id)
    assert [e["participant_id"] for e in welcome["roster"]] == [str(claims.participant_id)]
    assert welcome["grants"] == {"may_publish": True, "may_subscribe": True, "may_control": True}
    assert (AttendanceEvent.ENTERED_HEARING, AttendanceReason.NONE) in attendance(out)


def test_clerk_goes_straight_in_and_a_party_waits_in_the_lobby() -> None:
    h = Harness()
    clerk, _ = h.join(Role.CLERK)
    party, out = h.join(Role.DEFENDANT)
    (welcome,) = frames(out, party.conn, "welcome")
    assert welcome["state"] == "in_lobby"
    assert welcome["lobby_position"] == 1
    assert welcome["roster"] is None  # the lobby sees nothing of the hearing
    (roster,) = frames(out, clerk.conn, "roster")
    assert {(e["participant_id"], e["state"]) for e in roster["participants"]} == {
        (str(clerk.pid), "in_hearing"),
        (str(party.pid), "in_lobby"),
    }
    assert attendance(out) == [
        (AttendanceEvent.JOIN_ATTEMPT, AttendanceReason.NONE),
        (AttendanceEvent.ENTERED_LOBBY, AttendanceReason.NONE),
    ]
    # No media for the lobby.
    assert [g for g in of(out, MediaGrant) if g.participant_id == party.pid] == []


def test_admit_is_announced_only_after_it_is_recorded() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    out = h.send(judge, "admit", participant_id=party.pid, id="m1")
    command = h.only_command(out, ChangeParticipantState)
    assert (command.to, command.actor, command.action) == (
        ParticipantState.IN_HEARING,
        judge.pid,
        "lobby.admit",
    )
    assert frames(out, party.conn) == []
    assert frames(out, judge.conn) == []
    assert h.room.snapshot().lobby == (party.pid,)

    out = h.commit(command)
    assert frames(out, party.conn, "participant_state")[0]["state"] == "in_hearing"
    (roster,) = frames(out, party.conn, "roster")
    assert {e["participant_id"] for e in roster["participants"]} == {str(judge.pid), str(party.pid)}
    assert attendance(out) == [(AttendanceEvent.ADMITTED, AttendanceReason.NONE)]
    grants = {g.participant_id: g for g in of(out, MediaGrant)}
    assert grants[party.pid].subscribe_to == {judge.pid}
    assert grants[judge.pid].subscribe_to == {party.pid}


def test_lobby_positions_follow_arrival_and_update_when_someone_is_admitted() -> None:
    h = Harness()
    clerk, _ = h.join(Role.CLERK)
    first, _ = h.join(Role.PLAINTIFF)
    second, _ = h.join(Role.DEFENDANT)
    third, out = h.join(Role.WITNESS)
    assert frames(out, third.conn, "welcome")[0]["lobby_position"] == 3
    assert frames(out, first.conn, "lobby_position") == [
        {"v": 1, "type": "lobby_position", "position": 1, "of": 3}
    ]
    h.send(clerk, "admit", participant_id=first.pid)
    out = h.commit_all()
    for person, where in ((second, (1, 2)), (third, (2, 2))):
        positions = frames(out, person.conn, "lobby_position")
        assert [(f["position"], f["of"]) for f in positions] == [where]


def test_parties_in_the_hearing_do_not_see_the_lobby() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    h.send(judge, "admit", participant_id=party.pid)
    h.commit_all()
    witness, out = h.join(Role.WITNESS)
    assert frames(out, party.conn, "roster") == []  # nothing it may see changed
    roster = frames(out, judge.conn, "roster")[-1]
    assert str(witness.pid) in {e["participant_id"] for e in roster["participants"]}


def test_deny_removes_from_the_lobby_and_closes() -> None:
    h = Harness()
    clerk, _ = h.join(Role.CLERK)
    party, _ = h.join(Role.COUNSEL)
    h.send(clerk, "deny", participant_id=party.pid, reason="not on the list")
    out = h.commit_all()
    (removed,) = frames(out, party.conn, "removed")
    assert (removed["denied"], removed["reason"]) == (True, "not on the list")
    assert closes(out, party.conn)[0].code == 4403
    assert attendance(out) == [(AttendanceEvent.DENIED, AttendanceReason.NONE)]
    assert h.room.snapshot().lobby == ()
    # Removed people cannot come back with the same link.
    conn = h.new_conn()
    h.hello(conn)
    out = h.connect(conn, h.claims(Role.COUNSEL, party.pid), ParticipantState.REMOVED)
    assert closes(out, conn)[0].code == 4403


def test_a_locked_hearing_refuses_new_admissions_but_lets_the_dismissed_back() -> None:
    h = Harness(locked=True)
    judge, _ = h.join(Role.JUDGE)
    newcomer, _ = h.join(Role.WITNESS)
    for verb in ("admit", "call_in"):
        out = h.send(judge, verb, participant_id=newcomer.pid)
        assert error_codes(out, judge.conn) == ["locked"]
        assert h.room.pending_commands() == ()
    # Someone admitted before the lock, then dismissed, may be called back in.
    h.send(judge, "unlock")
    h.commit_all()
    h.send(judge, "admit", participant_id=newcomer.pid)
    h.commit_all()
    h.send(judge, "dismiss", participant_id=newcomer.pid)
    h.send(judge, "lock")
    h.commit_all()
    out = h.send(judge, "call_in", participant_id=newcomer.pid)
    assert h.only_command(out, ChangeParticipantState).action == "participant.call_in"


def test_parties_cannot_join_before_the_lobby_opens_but_the_judge_can() -> None:
    h = Harness(hearing_state=HearingState.SCHEDULED)
    party, out = h.join(Role.PLAINTIFF)
    assert closes(out, party.conn)[0].code == 4425
    assert (AttendanceEvent.JOIN_REFUSED, AttendanceReason.HEARING_NOT_OPEN) in attendance(out)
    judge, out = h.join(Role.JUDGE)
    assert frames(out, judge.conn, "welcome")[0]["hearing_state"] == "scheduled"


def test_a_closed_hearing_accepts_no_connection() -> None:
    h = Harness(hearing_state=HearingState.CLOSED)
    out = h.open("c1")
    assert closes(out, "c1")[0].code == 4410


@pytest.mark.parametrize(
    ("make", "code", "reason"),
    [
        (lambda h: h.claims(Role.PLAINTIFF, hearing_id=OTHER_HEARING_ID), 4403, "wrong_hearing"),
        (
            lambda h: h.claims(Role.OBSERVER, grants=Grants(True, True, False)),
            4403,
            "grants_exceed_role",
        ),
        (
            lambda h: h.claims(Role.WITNESS, grants=Grants(True, True, True)),
            4403,
            "grants_exceed_role",
        ),
        (lambda h: h.claims(Role.PLAINTIFF, ttl=timedelta(0)), 4401, "token_expired"),
    ],
)
def test_tokens_the_core_rechecks(
    make: Callable[[Harness], JoinClaims], code: int, reason: str
) -> None:
    h = Harness()
    conn = h.new_conn()
    h.hello(conn)
    before = h.room.snapshot()
    out = h.connect(conn, make(h))
    (close,) = closes(out, conn)
    assert (close.code, close.reason) == (code, reason)
    assert h.room.snapshot() == before
    assert h.room.connection_ids() == frozenset()


def test_someone_who_left_must_verify_again() -> None:
    h = Harness()
    conn = h.new_conn()
    h.hello(conn)
    out = h.connect(conn, h.claims(Role.WITNESS), ParticipantState.LEFT)
    assert (closes(out, conn)[0].code, closes(out, conn)[0].reason) == (4403, "must_verify")


@pytest.mark.parametrize(
    ("reason", "code", "attended"),
    [
        ("expired", 4401, AttendanceReason.TOKEN_EXPIRED),
        ("revoked", 4401, AttendanceReason.TOKEN_REVOKED),
        ("bad_signature", 4401, AttendanceReason.TOKEN_INVALID),
        ("removed", 4403, AttendanceReason.REMOVED),
        ("hearing_over", 4410, AttendanceReason.HEARING_OVER),
    ],
)
def test_tokens_the_adapter_refused(reason: str, code: int, attended: AttendanceReason) -> None:
    h = Harness()
    h.hello("c1")
    pid = h.claims(Role.PLAINTIFF).participant_id
    out = h.room.reject("c1", reason, h.now, participant_id=pid)
    assert closes(out, "c1")[0].code == code
    assert attendance(out) == [(AttendanceEvent.JOIN_REFUSED, attended)]


def test_hello_must_come_first_and_in_time() -> None:
    h = Harness()
    h.open("c1")
    out = h.send("c1", "leave", id="x")
    assert error_codes(out, "c1") == ["hello_required"]
    assert frames(out, "c1", "error")[0]["ref"] == "x"
    assert closes(out, "c1")[0].code == 4401

    h.open("c2")
    h.advance(9)
    assert h.tick() == []
    h.advance(1)
    assert closes(h.tick(), "c2")[0].reason == "hello_timeout"


def test_messages_while_authenticating_are_not_ready_but_heartbeats_pass() -> None:
    h = Harness()
    h.hello("c1")
    out = h.send("c1", "leave", id="early")
    assert error_codes(out, "c1") == ["not_ready"]
    assert h.send("c1", "heartbeat", rtt_ms=1, packet_loss_pct=0, jitter_ms=0, bitrate_kbps=0) == []


def test_adapter_misuse_raises() -> None:
    h = Harness()
    with pytest.raises(RoomUsageError):
        h.room.connect("nope", h.claims(Role.JUDGE), ParticipantState.VERIFIED, h.now)
    h.open("c1")
    with pytest.raises(RoomUsageError):
        h.room.open("c1", h.now)
    with pytest.raises(RoomUsageError):
        h.room.tick(h.now.replace(tzinfo=None))
