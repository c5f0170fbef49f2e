"""Court controls: each checked against the sender's role and the hearing's state, and each
change with legal weight announced only after it is recorded."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import pytest

from tests.unit.signaling.harness import Harness, Person, closes, error_codes, frames, of
from yunting.hearing.model import (
    ACTION_PERMISSION,
    HEARING_ACTIONS,
    HearingAction,
    HearingState,
    ParticipantState,
    Permission,
    Role,
    role_may,
)
from yunting.signaling.messages import MediaStart, PublishSlots, SdpAnswer, SdpOffer
from yunting.signaling.outputs import (
    AttendanceEvent,
    AttendanceReason,
    ChangeHearingState,
    ChangeParticipantState,
    MediaGrant,
    MediaRelease,
    MediaSignal,
    Output,
    RecordAttendance,
    Send,
    SetLocked,
)

CONTROL_ACTIONS = [a for a in HearingAction if a is not HearingAction.CANCEL]


def room_with(role: Role, state: HearingState) -> tuple[Harness, Person, Person]:
    """A hearing in ``state`` with a judge and a ``role`` member in the hearing."""
    h = Harness(hearing_state=state if state is not HearingState.SCHEDULED else HearingState.OPEN)
    judge, _ = h.join(Role.JUDGE)
    if role is Role.JUDGE:
        actor = judge
    else:
        actor, _ = h.join(role)
        if role is not Role.CLERK:
            h.send(judge, "admit", participant_id=actor.pid)
            h.commit_all()
    if state is HearingState.SCHEDULED:  # only reachable for staff; simulate a fresh room
        h.room._hearing_state = HearingState.SCHEDULED
    return h, judge, actor


@pytest.mark.parametrize("role", [Role.JUDGE, Role.CLERK, Role.PLAINTIFF, Role.OBSERVER])
@pytest.mark.parametrize("action", CONTROL_ACTIONS)
def test_each_lifecycle_control_by_each_role(role: Role, action: HearingAction) -> None:
    source = sorted(HEARING_ACTIONS[action][0])[0]
    h, _, actor = room_with(role, source)
    before = h.room.snapshot()
    out = h.send(actor, "hearing_action", action=action.value, reason="r", id="a1")
    allowed = role_may(role, ACTION_PERMISSION[action])
    if allowed:
        command = h.only_command(out, ChangeHearingState)
        assert (command.action, command.actor, command.reason) == (action, actor.pid, "r")
    else:
        (error,) = frames(out, actor.conn, "error")
        assert (error["code"], error["ref"]) == ("forbidden", "a1")
        assert f"your role ({role}) may not {ACTION_PERMISSION[action]}" in error["message"]
        assert h.room.pending_commands() == ()
    assert h.room.snapshot().hearing_state is before.hearing_state  # not before the commit


def test_clerk_may_suspend_but_not_pause() -> None:
    h, _, clerk = room_with(Role.CLERK, HearingState.IN_SESSION)
    assert error_codes(h.send(clerk, "hearing_action", action="pause"), clerk.conn) == ["forbidden"]
    out = h.send(clerk, "hearing_action", action="suspend", reason="recorder failed")
    assert h.only_command(out, ChangeHearingState).action is HearingAction.SUSPEND


def test_start_is_broadcast_only_after_commit_and_reaches_the_lobby() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    waiting, _ = h.join(Role.WITNESS)
    out = h.send(judge, "hearing_action", action="start", id="s")
    command = h.only_command(out, ChangeHearingState)
    assert [o for o in out if isinstance(o, Send)] == []
    assert h.room.snapshot().hearing_state is HearingState.OPEN
    out = h.commit(command)
    assert h.room.hearing_state is HearingState.IN_SESSION
    for who in (judge, waiting):
        (state,) = frames(out, who.conn, "hearing_state")
        assert (state["state"], state["action"]) == ("in_session", "start")
        assert state["by"] == str(judge.pid)


def test_a_failed_commit_changes_nothing_and_tells_only_the_sender() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    before = h.room.snapshot()
    out = h.send(judge, "hearing_action", action="start", id="s1")
    command = h.only_command(out, ChangeHearingState)
    out = h.commit(command, ok=False, error="state changed meanwhile")
    assert h.room.hearing_state is HearingState.OPEN
    (error,) = frames(out, judge.conn, "error")
    assert (error["code"], error["ref"]) == ("commit_failed", "s1")
    assert "state changed meanwhile" in error["message"]
    assert frames(out, party.conn) == []
    assert h.room.snapshot() == before
    # A failed admission leaves the party in the lobby.
    out = h.send(judge, "admit", participant_id=party.pid, id="a")
    out = h.commit(h.only_command(out, ChangeParticipantState), ok=False, error="db down")
    assert error_codes(out, judge.conn) == ["commit_failed"]
    assert frames(out, party.conn) == []
    assert h.room.snapshot().lobby == (party.pid,)


def test_illegal_transition_says_what_it_needs() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    (error,) = frames(h.send(judge, "hearing_action", action="pause"), judge.conn, "error")
    assert error["code"] == "illegal_state"
    assert "expected one of in_session" in error["message"]


def test_one_hearing_change_at_a_time() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    h.send(judge, "hearing_action", action="pause")
    assert error_codes(h.send(judge, "lock"), judge.conn) == ["busy"]


def test_lock_is_the_judges_and_recorded() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    clerk, _ = h.join(Role.CLERK)
    assert error_codes(h.send(clerk, "lock"), clerk.conn) == ["forbidden"]
    out = h.send(judge, "lock", reason="all present")
    command = h.only_command(out, SetLocked)
    assert not h.room.snapshot().locked
    out = h.commit(command)
    assert h.room.locked
    (state,) = frames(out, clerk.conn, "hearing_state")
    assert (state["locked"], state["action"]) == (True, "lock")
    assert error_codes(h.send(judge, "lock"), judge.conn) == ["illegal_state"]


def admitted(h: Harness, judge: Person, role: Role) -> Person:
    person, _ = h.join(role)
    h.send(judge, "admit", participant_id=person.pid)
    h.commit_all()
    return person


def last_grant(out: Iterable[Output], pid: UUID) -> MediaGrant:
    return [g for g in of(out, MediaGrant) if g.participant_id == pid][-1]


def test_mute_is_enforced_through_media_and_ask_unmute_lifts_it() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    clerk, _ = h.join(Role.CLERK)
    party = admitted(h, judge, Role.DEFENDANT)
    out = h.send(clerk, "mute", participant_id=party.pid, kind="audio")
    assert h.room.pending_commands() == ()  # media state, not a recorded state
    grant = last_grant(out, party.pid)
    assert (grant.publish_audio, grant.publish_video) == (False, True)
    assert frames(out, party.conn, "muted") == [
        {"v": 1, "type": "muted", "kind": "audio", "by": str(clerk.pid)}
    ]
    roster = frames(out, judge.conn, "roster")[-1]
    muted = {e["participant_id"]: e["muted_audio"] for e in roster["participants"]}
    assert muted[str(party.pid)] is True

    out = h.send(judge, "ask_unmute", participant_id=party.pid, kind="audio")
    assert last_grant(out, party.pid).publish_audio is True
    assert frames(out, party.conn, "unmute_requested")[0]["by"] == str(judge.pid)


@pytest.mark.parametrize("role", [Role.PLAINTIFF, Role.COUNSEL, Role.OBSERVER])
def test_parties_may_not_use_controls(role: Role) -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    other = admitted(h, judge, Role.WITNESS)
    actor = admitted(h, judge, role)
    before = h.room.snapshot()
    controls: list[tuple[str, dict[str, object]]] = [
        ("mute", {"participant_id": other.pid, "kind": "audio"}),
        ("ask_unmute", {"participant_id": other.pid, "kind": "video"}),
        ("dismiss", {"participant_id": other.pid}),
        ("call_in", {"participant_id": other.pid}),
        ("admit", {"participant_id": other.pid}),
        ("deny", {"participant_id": other.pid}),
        ("remove", {"participant_id": other.pid, "reason": "x"}),
        ("lock", {}),
        ("unlock", {}),
    ]
    for kind, fields in controls:
        out = h.send(actor, kind, **fields)
        assert error_codes(out, actor.conn) == ["forbidden"], kind
        assert closes(out, actor.conn) == []  # refusals do not count as abuse
    assert h.room.snapshot() == before


def test_nobody_mutes_dismisses_or_removes_the_presiding_judge() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    second_judge, _ = h.join(Role.JUDGE)  # a collegial panel: one presides
    for kind, fields in [
        ("mute", {"kind": "audio"}),
        ("dismiss", {}),
        ("remove", {"reason": "x"}),
    ]:
        out = h.send(second_judge, kind, participant_id=judge.pid, **fields)
        assert error_codes(out, second_judge.conn) == ["forbidden"], kind
    assert h.room.presiding_judge_id == judge.pid


def test_dismiss_takes_away_media_and_call_in_brings_it_back() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    clerk, _ = h.join(Role.CLERK)
    witness = admitted(h, judge, Role.WITNESS)
    out = h.send(clerk, "dismiss", participant_id=witness.pid)
    assert error_codes(out, clerk.conn) == ["forbidden"]
    out = h.send(judge, "dismiss", participant_id=witness.pid, reason="wait outside")
    assert h.only_command(out, ChangeParticipantState).to is ParticipantState.IN_LOBBY
    out = h.commit_all()
    assert frames(out, witness.conn, "participant_state")[0]["state"] == "in_lobby"
    assert frames(out, witness.conn, "lobby_position")[0]["position"] == 1
    # The lobby gets no media peer at all: the witness's is torn down.
    assert MediaRelease(witness.pid) in out
    assert last_grant(out, judge.pid).may_publish
    assert witness.pid not in last_grant(out, judge.pid).subscribe_to
    assert (AttendanceEvent.DISMISSED, AttendanceReason.NONE) in [
        (a.event, a.reason) for a in of(out, RecordAttendance)
    ]
    # Clerks may call in.
    h.send(clerk, "call_in", participant_id=witness.pid)
    out = h.commit_all()
    assert judge.pid in last_grant(out, witness.pid).subscribe_to
    assert last_grant(out, witness.pid).may_publish


def test_remove_needs_a_reason_and_closes_the_connection() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party = admitted(h, judge, Role.THIRD_PARTY)
    out = h.send(judge, "remove", participant_id=party.pid, reason="")
    assert error_codes(out, judge.conn) == ["invalid_message"]
    out = h.send(judge, "remove", participant_id=party.pid, reason="contempt of court")
    command = h.only_command(out, ChangeParticipantState)
    assert command.to is ParticipantState.REMOVED
    assert command.permission is Permission.PARTICIPANT_REMOVE
    out = h.commit(command)
    (removed,) = frames(out, party.conn, "removed")
    assert (removed["denied"], removed["reason"]) == (False, "contempt of court")
    assert removed["by"] == str(judge.pid)
    assert closes(out, party.conn)[0].code == 4403
    assert MediaRelease(party.pid) in out
    assert [(a.event, a.reason) for a in of(out, RecordAttendance)] == [
        (AttendanceEvent.DISCONNECTED, AttendanceReason.REMOVED)
    ]
    roster = frames(out, judge.conn, "roster")[-1]
    assert str(party.pid) not in {e["participant_id"] for e in roster["participants"]}


def test_targets_must_exist_and_not_be_busy() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    ghost = h.claims(Role.PLAINTIFF).participant_id
    assert error_codes(h.send(judge, "admit", participant_id=ghost), judge.conn) == ["not_found"]
    out = h.send(judge, "admit", participant_id=judge.pid)
    assert error_codes(out, judge.conn) == ["forbidden"]
    h.send(judge, "admit", participant_id=party.pid)
    assert error_codes(h.send(judge, "deny", participant_id=party.pid), judge.conn) == ["busy"]
    assert error_codes(h.send(judge, "dismiss", participant_id=party.pid), judge.conn) == ["busy"]


def test_observers_never_publish() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    observer, out = h.join(Role.OBSERVER)
    assert frames(out, observer.conn, "welcome")[0]["grants"]["may_publish"] is False
    out = h.send(judge, "admit", participant_id=observer.pid)
    out += h.commit_all()
    grant = last_grant(out, observer.pid)
    assert (grant.publish_audio, grant.publish_video) == (False, False)
    assert grant.subscribe_to == {judge.pid}
    # Nothing to receive from an observer: the judge's subscriptions did not change.
    assert [g for g in of(out, MediaGrant) if g.participant_id == judge.pid] == []
    before = h.room.snapshot()
    out = h.send(observer, "media_state", mic=True, camera=False)
    assert error_codes(out, observer.conn) == ["forbidden"]
    assert h.room.snapshot() == before
    assert h.send(observer, "media_state", mic=False, camera=False) == []
    out = h.send(judge, "mute", participant_id=observer.pid, kind="audio")
    assert error_codes(out, judge.conn) == ["illegal_state"]


def test_media_negotiation_goes_to_the_media_node_only_from_the_hearing() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    party, _ = h.join(Role.PLAINTIFF)
    out = h.send(party, "media_start")
    assert error_codes(out, party.conn) == ["illegal_state"]
    out = h.send(judge, "media_start")
    (signal,) = of(out, MediaSignal)
    assert signal.participant_id == judge.pid
    assert isinstance(signal.message, MediaStart)
    out = h.send(judge, "sdp_answer", sdp="v=0 answer")
    (signal,) = of(out, MediaSignal)
    assert isinstance(signal.message, SdpAnswer)
    assert signal.message.sdp == "v=0 answer"
    out = h.send(judge, "ice_candidate", candidate="", sdpMid="0", sdpMLineIndex=0)
    assert len(of(out, MediaSignal)) == 1
    # The media node's offers reach a connected participant, and no one else.
    offer = SdpOffer(sdp="v=0 offer", tracks=[], publish=PublishSlots(audio="0", video="1"))
    assert h.room.on_media(judge.pid, offer) == [Send(judge.conn, offer)]
    assert h.room.on_media(h.claims(Role.WITNESS).participant_id, offer) == []


def test_health_goes_to_controllers_only_when_a_level_changes() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    clerk, _ = h.join(Role.CLERK)
    party = admitted(h, judge, Role.PLAINTIFF)

    def beat(loss: float) -> list[Output]:
        stats = {"rtt_ms": 80, "jitter_ms": 5, "bitrate_kbps": 600}
        return h.send(party, "heartbeat", packet_loss_pct=loss, **stats)

    out = beat(2.0)
    health = frames(out, clerk.conn, "health")[0]
    assert [e["level"] for e in health["participants"]] == ["good"]
    assert beat(3.0) == []  # same level: nothing
    out = beat(12.0)
    for staff in (judge, clerk):
        (msg,) = frames(out, staff.conn, "health")
        assert msg["participants"][0]["level"] == "poor"
        assert msg["participants"][0]["packet_loss_pct"] == 12.0
    assert frames(out, party.conn, "health") == []
    out = beat(15.0)
    assert frames(out, judge.conn, "health")[0]["participants"][0]["level"] == "bad"


def test_leave_is_recorded_then_the_connection_closes() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    party = admitted(h, judge, Role.COUNSEL)
    out = h.send(party, "leave", reason="done")
    command = h.only_command(out, ChangeParticipantState)
    assert command.to is ParticipantState.LEFT
    assert (command.actor, command.permission) == (party.pid, None)
    out = h.commit(command)
    assert frames(out, party.conn, "bye")[0]["reason"] == "left"
    assert closes(out, party.conn)[0].code == 1000
    assert [(a.event, a.reason) for a in of(out, RecordAttendance)] == [
        (AttendanceEvent.DISCONNECTED, AttendanceReason.CLOSED_BY_USER)
    ]
    h.advance(120)
    assert of(h.tick(), ChangeParticipantState) == []  # a person who left is not "disconnected"


def test_closing_the_hearing_says_bye_to_everyone() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    judge, _ = h.join(Role.JUDGE)
    party = admitted(h, judge, Role.PLAINTIFF)
    waiting, _ = h.join(Role.WITNESS)
    h.send(judge, "hearing_action", action="close", reason="judgment reserved")
    out = h.commit_all()
    for who in (judge, party, waiting):
        kinds = [f["type"] for f in frames(out, who.conn)]
        assert (kinds[0], kinds[-1]) == ("hearing_state", "bye")
        assert closes(out, who.conn)[0].code == 1000
    assert h.room.connection_ids() == frozenset()
    assert MediaRelease(party.pid) in out
    assert closes(h.open("late"), "late")[0].code == 4410
