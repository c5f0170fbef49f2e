"""The room and the recording: the recording follows every hearing state change before it is
announced, judge and clerk (only) see its status, and a failed recorder pauses the hearing."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.signaling.harness import Harness, Person, error_codes, frames, of
from yunting.hearing.model import HearingAction, HearingState, Role
from yunting.signaling.messages import RecordingStatus
from yunting.signaling.outputs import ChangeHearingState, FollowRecording, Send
from yunting.signaling.room import RECORDING_FAILED_REASON


def status(state: str = "recording", segments: int = 0) -> RecordingStatus:
    return RecordingStatus(
        state=state,  # type: ignore[arg-type]
        reason="start",
        since=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
        segments=segments,
        last_segment_at=None,
    )


def hearing_with_party(state: HearingState) -> tuple[Harness, Person, Person, Person]:
    h = Harness(hearing_state=state)
    judge, _ = h.join(Role.JUDGE)
    clerk, _ = h.join(Role.CLERK)
    party, _ = h.join(Role.PLAINTIFF)
    h.send(judge, "admit", participant_id=party.pid)
    h.commit_all()
    return h, judge, clerk, party


def test_the_recording_follows_a_start_before_anyone_hears_of_it() -> None:
    h, judge, _, party = hearing_with_party(HearingState.OPEN)
    h.send(judge, "hearing_action", action="start", reason="")
    (command,) = h.room.pending_commands()
    out = h.commit(command)
    follow = h.only_command(out, FollowRecording)
    assert (follow.state, follow.action, follow.actor) == (
        HearingState.IN_SESSION,
        "start",
        judge.pid,
    )
    # The FollowRecording output comes before every frame announcing the new state.
    first_send = next(i for i, o in enumerate(out) if isinstance(o, Send))
    assert out.index(follow) < first_send
    assert frames(out, party.conn, "hearing_state")[0]["state"] == "in_session"


def test_pause_resume_and_close_are_each_followed() -> None:
    h, judge, _, _ = hearing_with_party(HearingState.IN_SESSION)
    followed: list[tuple[HearingState, str]] = []
    for action in ("pause", "resume", "close"):
        h.send(judge, "hearing_action", action=action, reason="because")
        (command,) = h.room.pending_commands()
        out = h.commit(command)
        followed += [(f.state, f.reason) for f in of(out, FollowRecording)]
    assert followed == [
        (HearingState.PAUSED, "because"),
        (HearingState.IN_SESSION, "because"),
        (HearingState.CLOSED, "because"),
    ]


def test_a_refused_command_is_not_followed() -> None:
    h, judge, _, _ = hearing_with_party(HearingState.IN_SESSION)
    h.send(judge, "hearing_action", action="pause", reason="")
    (command,) = h.room.pending_commands()
    assert of(h.commit(command, ok=False, error="db down"), FollowRecording) == []


def test_an_outside_change_is_followed() -> None:
    h, _, _, _ = hearing_with_party(HearingState.IN_SESSION)
    out = h.room.external_change(
        h.now,
        hearing_state=HearingState.SUSPENDED,
        locked=False,
        action="suspend",
        reason="x",
        by=None,
    )
    assert [f.state for f in of(out, FollowRecording)] == [HearingState.SUSPENDED]


def test_only_judge_and_clerk_see_the_recording_status() -> None:
    h, judge, clerk, party = hearing_with_party(HearingState.IN_SESSION)
    out = h.room.recording_status(status(segments=3))
    h._take(out)
    assert {o.conn_id for o in of(out, Send)} == {judge.conn, clerk.conn}
    (seen,) = frames(out, judge.conn, "recording")
    assert (seen["state"], seen["segments"]) == ("recording", 3)
    assert frames(out, party.conn, "recording") == []


def test_a_judge_joining_later_gets_the_status_with_its_welcome_and_in_a_resync() -> None:
    h = Harness(hearing_state=HearingState.IN_SESSION)
    h._take(h.room.recording_status(status("idle")))
    judge, out = h.join(Role.JUDGE)
    assert [f["state"] for f in frames(out, judge.conn, "recording")] == ["idle"]
    party, out = h.join(Role.PLAINTIFF)
    assert frames(out, party.conn, "recording") == []
    resync = h._take(h.room.resync())
    assert [f["state"] for f in frames(resync, judge.conn, "recording")] == ["idle"]
    assert frames(resync, party.conn, "recording") == []


def test_a_failed_recorder_alerts_judge_and_clerk_and_pauses_the_hearing() -> None:
    h, judge, clerk, party = hearing_with_party(HearingState.IN_SESSION)
    out = h._take(h.room.recording_failed("disk full", h.now))
    assert error_codes(out, judge.conn) == ["recording_failed"]
    assert error_codes(out, clerk.conn) == ["recording_failed"]
    assert error_codes(out, party.conn) == []
    command = h.only_command(out, ChangeHearingState)
    assert (command.action, command.actor, command.reason) == (
        HearingAction.PAUSE,
        None,
        RECORDING_FAILED_REASON,
    )
    assert frames(out, party.conn, "hearing_state") == []  # not before it is recorded
    out = h.commit(command)
    (state,) = frames(out, party.conn, "hearing_state")
    assert (state["state"], state["reason"], state["by"]) == ("paused", "recording_failed", None)
    assert [f.state for f in of(out, FollowRecording)] == [HearingState.PAUSED]
    # The judge resumes: the recording is followed back into the session.
    h.send(judge, "hearing_action", action="resume", reason="recorder replaced")
    (resume,) = h.room.pending_commands()
    out = h.commit(resume)
    assert [f.state for f in of(out, FollowRecording)] == [HearingState.IN_SESSION]


def test_a_recording_pause_that_was_not_recorded_is_asked_again() -> None:
    h, _, _, _ = hearing_with_party(HearingState.IN_SESSION)
    first = h.only_command(h._take(h.room.recording_failed("x", h.now)), ChangeHearingState)
    h.commit(first, ok=False, error="db down")
    h.advance(1)
    again = h.only_command(h.tick(), ChangeHearingState)
    assert again.command_id != first.command_id
    assert again.reason == RECORDING_FAILED_REASON


def test_a_failure_waits_for_a_pending_hearing_command_and_is_dropped_outside_a_session() -> None:
    h, judge, _, _ = hearing_with_party(HearingState.IN_SESSION)
    h.send(judge, "hearing_action", action="pause", reason="recess")
    (pause,) = h.room.pending_commands()
    out = h._take(h.room.recording_failed("x", h.now))
    assert of(out, ChangeHearingState) == []  # one hearing command at a time
    h.commit(pause)
    h.advance(1)
    assert of(h.tick(), ChangeHearingState) == []  # paused anyway: nothing to stop

    h = Harness(hearing_state=HearingState.OPEN)
    h.join(Role.JUDGE)
    assert of(h._take(h.room.recording_failed("x", h.now)), ChangeHearingState) == []
