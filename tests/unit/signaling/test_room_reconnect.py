"""Drops, reconnects inside and after the grace period, replaced connections, judge drops."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from tests.unit.signaling.harness import Harness, Person, closes, frames, of
from yunting.hearing.model import HearingAction, HearingState, ParticipantState, Role
from yunting.signaling.outputs import (
    AttendanceEvent,
    AttendanceReason,
    ChangeHearingState,
    ChangeParticipantState,
    MediaGrant,
    MediaRelease,
    Output,
    RecordAttendance,
)
from yunting.signaling.room import RoomConfig


def in_hearing(h: Harness, judge: Person, role: Role) -> Person:
    person, _ = h.join(role)
    h.send(judge, "admit", participant_id=person.pid)
    h.commit_all()
    return person


def rejoin(h: Harness, person: Person, *, resume_token: str | None) -> tuple[Person, list[Output]]:
    return h.join(person.role, person.pid, resume_token=resume_token, commit=False)


def attendance(out: Iterable[Output]) -> list[tuple[AttendanceEvent, AttendanceReason]]:
    return [(a.event, a.reason) for a in of(out, RecordAttendance)]


def roster_ids(frame: dict[str, Any]) -> list[str]:
    entries = frame["roster"] if frame["type"] == "welcome" else frame["participants"]
    return [e["participant_id"] for e in entries]


def test_resume_inside_the_grace_period_keeps_the_place_without_a_duplicate() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party = in_hearing(h, judge, Role.PLAINTIFF)
    out = h.disconnect(party)
    assert attendance(out) == [(AttendanceEvent.DISCONNECTED, AttendanceReason.NETWORK_LOSS)]
    roster = frames(out, judge.conn, "roster")[-1]
    entry = next(e for e in roster["participants"] if e["participant_id"] == str(party.pid))
    assert (entry["presence"], entry["state"]) == ("reconnecting", "in_hearing")
    # Its media peer goes: the browser starts a new one after resuming.
    assert of(out, MediaRelease) == [MediaRelease(party.pid)]

    h.advance(59)
    assert of(h.tick(), ChangeParticipantState) == []
    back, out = rejoin(h, party, resume_token=party.resume_token)
    assert h.room.pending_commands() == ()  # no re-admission, nothing to record
    (welcome,) = frames(out, back.conn, "welcome")
    assert (welcome["resumed"], welcome["state"]) == (True, "in_hearing")
    assert welcome["resume_token"] != party.resume_token  # rotated
    assert roster_ids(welcome).count(str(party.pid)) == 1
    assert roster_ids(frames(out, judge.conn, "roster")[-1]).count(str(party.pid)) == 1
    assert attendance(out) == [
        (AttendanceEvent.JOIN_ATTEMPT, AttendanceReason.NONE),
        (AttendanceEvent.RESUMED, AttendanceReason.NONE),
    ]
    assert of(out, MediaGrant)[-1].subscribe_to == {judge.pid}


def test_without_the_resume_token_back_to_the_lobby() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party = in_hearing(h, judge, Role.DEFENDANT)
    h.disconnect(party)
    for token in (None, "resume-999"):
        _, out = rejoin(h, party, resume_token=token)
        command = h.only_command(out, ChangeParticipantState)
        assert (command.to, command.actor) == (ParticipantState.IN_LOBBY, party.pid)
        h.commit(command, ok=False, error="try later")  # leaves it where it was
        assert h.room.snapshot().lobby == ()


def test_after_the_grace_period_marked_disconnected_and_readmitted() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party = in_hearing(h, judge, Role.WITNESS)
    h.disconnect(party)
    h.advance(60)
    out = h.tick()
    command = h.only_command(out, ChangeParticipantState)
    assert (command.to, command.actor, command.reason) == (
        ParticipantState.DISCONNECTED,
        None,
        "network_loss",
    )
    assert h.tick() == []  # asked once
    out = h.commit(command)
    assert attendance(out) == [(AttendanceEvent.MARKED_DISCONNECTED, AttendanceReason.NETWORK_LOSS)]
    entry = frames(out, judge.conn, "roster")[-1]["participants"][-1]
    assert (entry["state"], entry["presence"]) == ("disconnected", "offline")

    # The lock keeps out newcomers, not people with network trouble.
    h.send(judge, "lock")
    h.commit_all()
    back, out = rejoin(h, party, resume_token=party.resume_token)
    assert h.only_command(out, ChangeParticipantState).to is ParticipantState.IN_LOBBY
    out = h.commit_all()
    assert (AttendanceEvent.REJOINED, AttendanceReason.NONE) in attendance(out)
    assert frames(out, back.conn, "welcome")[0]["state"] == "in_lobby"
    h.send(judge, "admit", participant_id=party.pid)
    out = h.commit_all()
    assert frames(out, back.conn, "participant_state")[0]["state"] == "in_hearing"
    assert roster_ids(frames(out, judge.conn, "roster")[-1]).count(str(party.pid)) == 1


def test_a_second_connection_replaces_the_first() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party = in_hearing(h, judge, Role.COUNSEL)
    second, out = rejoin(h, party, resume_token=party.resume_token)
    assert frames(out, party.conn, "bye")[0]["reason"] == "replaced"
    assert closes(out, party.conn)[0].code == 4409
    assert frames(out, second.conn, "welcome")[0]["state"] == "in_hearing"
    assert (AttendanceEvent.DISCONNECTED, AttendanceReason.REPLACED) in attendance(out)
    assert h.room.connection_ids() == {judge.conn, second.conn}
    assert [m.participant_id for m in h.room.snapshot().members].count(party.pid) == 1
    # Messages on the old connection are ignored; it is gone.
    assert h.send(party, "leave") == []


def test_the_judge_drop_pauses_the_hearing_after_its_grace_period() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party = in_hearing(h, judge, Role.PLAINTIFF)
    h.disconnect(judge)
    h.advance(29)
    assert of(h.tick(), ChangeHearingState) == []
    h.advance(1)
    out = h.tick()
    command = h.only_command(out, ChangeHearingState)
    assert (command.action, command.actor, command.reason) == (
        HearingAction.PAUSE,
        None,
        "presiding_judge_disconnected",
    )
    assert frames(out, party.conn, "hearing_state") == []  # not before it is recorded
    h.advance(1)
    assert of(h.tick(), ChangeHearingState) == []
    out = h.commit(command)
    (state,) = frames(out, party.conn, "hearing_state")
    assert (state["state"], state["by"]) == ("paused", None)
    assert state["reason"] == "presiding_judge_disconnected"
    # The judge comes back inside its own reconnect grace period: straight in, still presiding.
    back, out = h.join(Role.JUDGE, judge.pid)
    welcome = frames(out, back.conn, "welcome")[0]
    assert (welcome["resumed"], welcome["presiding_judge_id"]) == (True, str(judge.pid))


def test_a_failed_auto_pause_is_asked_again() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    h.disconnect(judge)
    h.advance(30)
    first = h.only_command(h.tick(), ChangeHearingState)
    h.commit(first, ok=False, error="db down")
    h.advance(1)
    again = h.only_command(h.tick(), ChangeHearingState)
    assert again.command_id != first.command_id


def test_no_auto_pause_outside_a_session_or_for_another_judge() -> None:
    h = Harness(hearing_state=HearingState.OPEN)
    judge, _ = h.join(Role.JUDGE)
    h.disconnect(judge)
    h.advance(45)
    assert of(h.tick(), ChangeHearingState) == []

    h = Harness(hearing_state=HearingState.IN_SESSION)
    h.join(Role.JUDGE)  # presides
    panel_judge, _ = h.join(Role.JUDGE)
    h.disconnect(panel_judge)
    h.advance(45)
    assert of(h.tick(), ChangeHearingState) == []


def test_heartbeat_timeout_closes_and_counts_as_network_loss() -> None:
    h = Harness(config=RoomConfig())
    clerk, _ = h.join(Role.CLERK)
    h.advance(15)
    h.send(clerk, "heartbeat", rtt_ms=10, packet_loss_pct=0, jitter_ms=1, bitrate_kbps=100)
    h.advance(19)
    assert h.tick() == []
    h.advance(1)
    out = h.tick()
    assert closes(out, clerk.conn)[0].code == 4408
    assert attendance(out) == [(AttendanceEvent.DISCONNECTED, AttendanceReason.NETWORK_LOSS)]


def test_a_clean_close_is_recorded_as_closed_by_user() -> None:
    h = Harness()
    party, _ = h.join(Role.PLAINTIFF)
    out = h.disconnect(party, reason=AttendanceReason.CLOSED_BY_USER)
    assert attendance(out) == [(AttendanceEvent.DISCONNECTED, AttendanceReason.CLOSED_BY_USER)]
    h.advance(60)
    command = h.only_command(h.tick(), ChangeParticipantState)
    assert command.reason == "closed_by_user"


def test_token_expiry_while_connected_closes_with_token_expired() -> None:
    h = Harness()
    conn = h.new_conn()
    h.hello(conn)
    h.connect(conn, h.claims(Role.PLAINTIFF, ttl=timedelta(minutes=1)))
    h.commit_all()
    h.advance(4)
    h.send(conn, "heartbeat", rtt_ms=1, packet_loss_pct=0, jitter_ms=0, bitrate_kbps=0)
    h.advance(56)
    out = h.tick()
    assert (closes(out, conn)[0].code, closes(out, conn)[0].reason) == (4401, "token_expired")
    assert attendance(out) == [(AttendanceEvent.DISCONNECTED, AttendanceReason.TOKEN_EXPIRED)]


def test_a_failed_join_is_an_error_and_a_retryable_close() -> None:
    h = Harness()
    conn = h.new_conn()
    h.hello(conn)
    out = h.connect(conn, h.claims(Role.WITNESS))
    out = h.commit(h.only_command(out, ChangeParticipantState), ok=False, error="db down")
    assert [f["code"] for f in frames(out, conn, "error")] == ["commit_failed"]
    assert closes(out, conn)[0].code == 1011
    assert (AttendanceEvent.JOIN_REFUSED, AttendanceReason.COMMIT_FAILED) in attendance(out)


def test_a_drop_while_joining_keeps_the_recorded_lobby_place_for_the_grace_period() -> None:
    h = Harness()
    conn = h.new_conn()
    h.hello(conn)
    claims = h.claims(Role.WITNESS)
    command = h.only_command(h.connect(conn, claims), ChangeParticipantState)
    h.disconnect(conn)
    out = h.commit(command)
    assert frames(out, conn) == []
    assert h.room.snapshot().lobby == (claims.participant_id,)
    h.advance(60)
    assert h.only_command(h.tick(), ChangeParticipantState).to is ParticipantState.DISCONNECTED


def test_reconnecting_while_the_record_is_being_written_is_told_to_retry() -> None:
    h = Harness()
    party, _ = h.join(Role.PLAINTIFF)
    h.disconnect(party)
    h.advance(60)
    h.tick()  # grace over: "disconnected" is being recorded
    back, out = h.join(Role.PLAINTIFF, party.pid, commit=False)
    assert closes(out, back.conn)[0].code == 1013


def test_a_new_connection_takes_over_a_join_in_progress() -> None:
    h = Harness()
    conn = h.new_conn()
    h.hello(conn)
    claims = h.claims(Role.JUDGE)
    first_step = h.only_command(h.connect(conn, claims), ChangeParticipantState)
    conn2 = h.new_conn()
    h.hello(conn2)
    out = h.connect(conn2, claims, ParticipantState.VERIFIED)
    assert closes(out, conn)[0].code == 4409
    assert of(out, ChangeParticipantState) == []
    out = h.commit(first_step)
    out += h.commit_all()
    assert frames(out, conn2, "welcome")[0]["state"] == "in_hearing"


def test_resync_repeats_state_and_views() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    out = h.room.resync()
    assert [f["type"] for f in frames(out, judge.conn)] == ["hearing_state", "roster"]
    assert [f["type"] for f in frames(out, party.conn)] == ["hearing_state", "lobby_position"]
    # Every grant again; the lobby holds none.
    assert [g.participant_id for g in of(out, MediaGrant)] == [judge.pid]
