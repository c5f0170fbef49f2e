"""Events the adapter brings from outside the room: changes made on the staff page, revoked
links, a room rebuilt after its node went away, and the unverified party."""

from __future__ import annotations

import uuid

from tests.unit.signaling.harness import HEARING_ID, T0, Harness, closes, frames, of
from yunting.hearing.model import HearingState, ParticipantState, Role
from yunting.signaling.errors import ErrorCode
from yunting.signaling.outputs import (
    AttendanceEvent,
    AttendanceReason,
    ChangeParticipantState,
    MediaRelease,
    Output,
    RecordAttendance,
)
from yunting.signaling.room import Room


def test_a_change_from_the_staff_page_is_adopted_and_announced() -> None:
    h = Harness(hearing_state=HearingState.OPEN)
    judge, _ = h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    out = h._take(
        h.room.external_change(
            h.now,
            hearing_state=HearingState.IN_SESSION,
            locked=False,
            action="start",
            reason="from the page",
            by=None,
        )
    )
    assert h.room.hearing_state is HearingState.IN_SESSION
    for person in (judge, party):  # the lobby learns the hearing's state too
        (changed,) = frames(out, person.conn, "hearing_state")
        assert (changed["state"], changed["reason"], changed["by"]) == (
            "in_session",
            "from the page",
            None,
        )
    # Nothing changed: nothing said.
    again = h.room.external_change(
        h.now,
        hearing_state=HearingState.IN_SESSION,
        locked=False,
        action="start",
        reason="",
        by=None,
    )
    assert again == []


def test_a_close_from_the_staff_page_ends_every_connection() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    out = h._take(
        h.room.external_change(
            h.now,
            hearing_state=HearingState.CLOSED,
            locked=False,
            action="close",
            reason="",
            by=None,
        )
    )
    assert [c.code for c in closes(out, judge.conn)] == [1000]
    assert of(out, MediaRelease) == [MediaRelease(judge.pid)]


def test_revoked_links_end_the_live_connection_and_say_why() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    out = h._take(h.room.revoke_access(party.pid, h.now))
    assert [(c.code, c.reason) for c in closes(out, party.conn)] == [(4401, "token_revoked")]
    assert [(a.event, a.reason) for a in of(out, RecordAttendance)] == [
        (AttendanceEvent.DISCONNECTED, AttendanceReason.TOKEN_REVOKED)
    ]
    assert h.room.revoke_access(uuid.uuid4(), h.now) == []  # unknown: nothing happens
    assert h.room.revoke_access(party.pid, h.now) == []  # already gone


def test_a_party_who_skipped_the_identity_check_is_refused() -> None:
    h = Harness(hearing_state=HearingState.OPEN)
    conn = h.new_conn()
    h.hello(conn)
    claims = h.claims(Role.DEFENDANT)
    out = h.connect(conn, claims, ParticipantState.INVITED)
    assert [(c.code, c.reason) for c in closes(out, conn)] == [(4403, "must_verify")]
    assert of(out, ChangeParticipantState) == []
    # Judge and clerk are authenticated by their session and need no code.
    judge_conn = h.new_conn()
    h.hello(judge_conn)
    out = h.connect(judge_conn, h.claims(Role.JUDGE), ParticipantState.INVITED)
    assert closes(out, judge_conn) == []
    assert of(out, ChangeParticipantState)[0].to is ParticipantState.IN_LOBBY


def test_a_rebuilt_room_lets_the_hearing_resume_within_one_grace_period() -> None:
    def rebuilt(seconds_later: float) -> tuple[Harness, str, list[Output]]:
        h = Harness(hearing_state=HearingState.IN_SESSION)
        h.room = Room(
            hearing_id=HEARING_ID,
            hearing_state=HearingState.IN_SESSION,
            locked=False,
            settings=h.config,
            restored_at=T0,
        )
        h.advance(seconds_later)
        conn = h.new_conn()
        h.hello(conn)
        out = h.connect(conn, h.claims(Role.PLAINTIFF), ParticipantState.IN_HEARING)
        return h, conn, out

    h, conn, out = rebuilt(10)
    (welcome,) = frames(out, conn, "welcome")
    assert (welcome["state"], welcome["resumed"]) == ("in_hearing", True)
    assert h.room.pending_commands() == ()
    # Past the grace period, the lobby again: the court decides who comes back.
    h, conn, out = rebuilt(61)
    assert frames(out, conn, "welcome") == []
    (step,) = of(out, ChangeParticipantState)
    assert step.to is ParticipantState.IN_LOBBY


def test_the_adapter_can_tell_a_participant_what_failed() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    out = h.room.notify_error(judge.pid, ErrorCode.MEDIA_UNAVAILABLE, "no media node")
    assert [f["code"] for f in frames(out, judge.conn, "error")] == ["media_unavailable"]
    assert h.room.notify_error(uuid.uuid4(), ErrorCode.MEDIA_UNAVAILABLE, "x") == []
