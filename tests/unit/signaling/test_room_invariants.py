"""Random message sequences against the room's invariants (issue 4, "Bad input and limits").

Each example plays random steps from random roles: connects (some with bad tokens), valid and
invalid messages, drops, time passing, and commits that randomly fail. After every step:

* at most one presiding judge, and only a judge presides; no participant twice on a roster;
* nobody is both in the lobby and in the hearing; the lobby is never sent a roster, and never
  holds a media grant;
* observers never hold publish rights, and no media grant ever lets them publish;
* nothing changes state without a committed command: outside a successful commit the hearing
  state, the lock and every participant's state stay put, and the room always agrees with the
  record for participants that have no command in flight;
* refused input (only ``error`` frames out) leaves the room exactly as it was;
* nothing is sent to a connection after it was closed; every frame matches the JSON Schema.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.signaling.harness import HEARING_ID, OTHER_HEARING_ID, Harness
from yunting.hearing.model import Grants, HearingState, ParticipantState, Role
from yunting.signaling.messages import Error, Roster, Welcome
from yunting.signaling.outputs import (
    ChangeParticipantState,
    Close,
    MediaGrant,
    MediaRelease,
    Output,
    Send,
)
from yunting.signaling.room import RoomConfig

ROLES = [
    Role.JUDGE,
    Role.JUDGE,
    Role.CLERK,
    Role.PLAINTIFF,
    Role.DEFENDANT,
    Role.WITNESS,
    Role.COUNSEL,
    Role.OBSERVER,
]
PIDS = [UUID(int=0x5107_0000 + i) for i in range(len(ROLES))]
ROLE_OF = dict(zip(PIDS, ROLES, strict=True))
ACTIONS = ["open_lobby", "start", "pause", "suspend", "resume", "close"]
KINDS = [
    "heartbeat", "media_state", "admit", "deny", "call_in", "dismiss", "mute", "ask_unmute",
    "remove", "lock", "unlock", "hearing_action", "media_start", "sdp_answer", "ice_candidate",
    "leave", "hello",
    "admit", "admit", "call_in", "hearing_action", "heartbeat",
]  # fmt: skip

slot = st.integers(0, len(ROLES) - 1)
join_step = st.tuples(
    st.just("join"),
    slot,
    st.booleans(),  # present the last resume token
    st.sampled_from(
        ["ok", "ok", "ok", "ok", "ok", "uncommitted", "rejected", "wrong_hearing", "greedy_grants"]
    ),
)
send_step = st.tuples(
    st.just("send"),
    slot,
    st.sampled_from(KINDS),
    slot,
    st.integers(0, 99),
    st.booleans(),  # aimed at the sender itself
    st.sampled_from([True, True, False]),  # the record commits what it asked for at once
)
raw_step = st.tuples(
    st.just("raw"),
    slot,
    st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40),
        st.sampled_from(['{"v":1}', "[]", '{"v":1,"type":"admit"}', '{"v":2,"type":"leave"}']),
    ),
)
drop_step = st.tuples(st.just("drop"), slot, st.booleans())
time_step = st.tuples(st.just("time"), st.sampled_from([0.05, 0.5, 1, 5, 5, 10, 31, 61]))
commit_step = st.tuples(st.just("commit"), st.integers(0, 7), st.integers(0, 4))
steps = st.lists(
    st.one_of(join_step, join_step, send_step, send_step, send_step, raw_step, drop_step,
              time_step, commit_step, commit_step),
    min_size=25,
    max_size=80,
)  # fmt: skip


@dataclass
class World:
    h: Harness
    conn_of: dict[int, str] = field(default_factory=dict)
    resume: dict[int, str] = field(default_factory=dict)
    owner: dict[str, UUID] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    media: dict[UUID, MediaGrant] = field(default_factory=dict)


def message_for(kind: str, target: UUID, n: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"v": 1, "type": kind, "id": f"m{n}"}
    if kind == "heartbeat":
        fields |= {"rtt_ms": n, "packet_loss_pct": n % 25, "jitter_ms": 1, "bitrate_kbps": 300}
    elif kind == "media_state":
        fields |= {"mic": n % 2 == 0, "camera": n % 3 == 0}
    elif kind in ("admit", "deny", "call_in", "dismiss"):
        fields["participant_id"] = str(target)
    elif kind in ("mute", "ask_unmute"):
        fields |= {"participant_id": str(target), "kind": "audio" if n % 2 else "video"}
    elif kind == "remove":
        fields |= {"participant_id": str(target), "reason": "r"}
    elif kind == "hearing_action":
        fields["action"] = ACTIONS[n % len(ACTIONS)]
    elif kind == "sdp_answer":
        fields["sdp"] = "v=0"
    elif kind == "ice_candidate":
        fields |= {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}
    elif kind == "hello":
        fields["token"] = "yt1.again"
    return fields


def commit_new(h: Harness, known: set[str]) -> list[Output]:
    """Commit, successfully, every command not in ``known`` and whatever follows from them."""
    out: list[Output] = []
    for _ in range(5):
        fresh = [c for c in h.room.pending_commands() if c.command_id not in known]
        if not fresh:
            break
        for command in fresh:
            out += h.commit(command)
    return out


def remember_resume(world: World, i: int, out: list[Output]) -> None:
    for output in out:
        if isinstance(output, Send) and isinstance(output.message, Welcome):
            world.resume[i] = output.message.resume_token


def aim(h: Harness, kind: str, sender: UUID, target: int, n: int, to_self: bool) -> UUID:
    """Half the time a target the command makes sense for (admit someone in the lobby, ...),
    otherwise anyone, the sender included."""
    if to_self:
        return sender
    if n % 2:
        return PIDS[target]
    snapshot = h.room.snapshot()
    wanted = (
        ParticipantState.IN_LOBBY
        if kind in ("admit", "call_in", "deny")
        else ParticipantState.IN_HEARING
    )
    fitting = [m.participant_id for m in snapshot.members if m.state is wanted]
    return fitting[target % len(fitting)] if fitting else PIDS[target]


def pick(world: World, i: int) -> tuple[int, str | None]:
    """Slot ``i``'s connection if it has a live one, else some live connection."""
    live = sorted(k for k, c in world.conn_of.items() if c not in world.closed)
    if i in live or not live:
        return i, world.conn_of.get(i)
    j = live[i % len(live)]
    return j, world.conn_of[j]


def play(world: World, step: tuple[Any, ...]) -> tuple[list[Output], bool, bool]:
    """Run one step; returns its outputs, whether it was a commit, and whether it succeeded."""
    h = world.h
    kind = step[0]
    conn: str | None  # a fresh connection when joining, else whichever live one ``pick`` finds
    if kind == "join":
        _, i, use_resume, mode = step
        conn = h.new_conn()
        out = h.open(conn)
        if any(isinstance(o, Close) for o in out):
            return out, False, False
        world.conn_of[i] = conn
        world.owner[conn] = PIDS[i]
        token = world.resume.get(i) if use_resume else None
        out += h.raw(conn, json.dumps({"v": 1, "type": "hello", "token": "t"} | (
            {"resume_token": token} if token else {}
        )))  # fmt: skip
        if mode == "rejected":
            refused = h.room.reject(conn, "expired", h.now, participant_id=PIDS[i])
            return out + h._take(refused), False, False
        claims = h.claims(
            ROLES[i],
            PIDS[i],
            hearing_id=OTHER_HEARING_ID if mode == "wrong_hearing" else HEARING_ID,
            grants=Grants(True, True, True) if mode == "greedy_grants" else None,
        )
        state = h.db.get(PIDS[i], ParticipantState.VERIFIED)
        out += h.connect(conn, claims, state)
        if mode == "ok":
            out += commit_new(h, set())
        remember_resume(world, i, out)
        return out, mode == "ok", True
    if kind == "send":
        _, i, message_kind, target, n, to_self, at_once = step
        i, conn = pick(world, i)
        if conn is None:
            return [], False, False
        body = message_for(message_kind, aim(h, message_kind, PIDS[i], target, n, to_self), n)
        known = {c.command_id for c in h.room.pending_commands()}
        out = h.raw(conn, json.dumps(body))
        if at_once:
            out += commit_new(h, known)
        return out, at_once, True
    if kind == "raw":
        _, i, data = step
        i, conn = pick(world, i)
        return (h.raw(conn, data) if conn else []), False, False
    if kind == "drop":
        _, i, clean = step
        i, conn = pick(world, i)
        if conn is None:
            return [], False, False
        from yunting.signaling.outputs import AttendanceReason

        reason = AttendanceReason.CLOSED_BY_USER if clean else AttendanceReason.NETWORK_LOSS
        out = h.disconnect(conn, reason=reason)
        world.closed.add(conn)
        return out, False, False
    if kind == "time":
        h.advance(step[1])
        return h.tick(), False, False
    _, index, fail = step
    pending = h.room.pending_commands()
    if not pending:
        return [], True, False
    ok = fail != 0
    out = h.commit(pending[index % len(pending)], ok=ok, error="db said no")
    for j, conn in world.conn_of.items():
        remember_resume(world, j, [o for o in out if isinstance(o, Send) and o.conn_id == conn])
    return out, True, ok


def check(world: World, before: Any, out: list[Output], committed: bool) -> None:
    h = world.h
    after = h.room.snapshot()
    members = {m.participant_id: m for m in after.members}

    # Connections: nothing after a close, frames only to connections that are open.
    for output in out:
        if isinstance(output, Send | Close):
            assert output.conn_id not in world.closed, f"{output} after close"
        if isinstance(output, Close):
            world.closed.add(output.conn_id)
    assert not (h.room.connection_ids() & world.closed)

    closed_now = {o.conn_id for o in out if isinstance(o, Close)}
    # One presiding judge, who is a judge; no duplicate roster entries.
    if after.presiding_judge_id in ROLE_OF:
        assert ROLE_OF[after.presiding_judge_id] is Role.JUDGE
    for output in out:
        if isinstance(output, Send) and isinstance(output.message, Roster | Welcome):
            entries = (
                output.message.participants
                if isinstance(output.message, Roster)
                else output.message.roster or []
            )
            assert sum(e.presiding for e in entries) <= 1
            ids = [e.participant_id for e in entries]
            assert len(ids) == len(set(ids))
            viewer = members[world.owner[output.conn_id]]
            if output.conn_id in closed_now:
                # Sent while the viewer was still there; a commit later in this step (leave,
                # remove) ended its connection. Its state now says nothing about that frame.
                continue
            # The lobby never sees the hearing.
            if isinstance(output.message, Roster) or output.message.roster is not None:
                assert viewer.state is ParticipantState.IN_HEARING
            else:
                assert viewer.state is ParticipantState.IN_LOBBY

    # Lobby and hearing are exclusive; the lobby list is exactly the in_lobby members.
    assert set(after.lobby) == {
        p for p, m in members.items() if m.state is ParticipantState.IN_LOBBY
    }
    assert len(after.lobby) == len(set(after.lobby))

    # Media: observers never publish; only online members in the hearing get media, and only
    # from each other.
    for output in out:
        if isinstance(output, MediaGrant):
            world.media[output.participant_id] = output
            if ROLE_OF[output.participant_id] is Role.OBSERVER:
                assert not output.publish_audio
                assert not output.publish_video
        elif isinstance(output, MediaRelease):
            world.media.pop(output.participant_id, None)
    active = {p for p, m in members.items() if m.state is ParticipantState.IN_HEARING and m.online}
    for pid, grant in world.media.items():
        # Whoever leaves the active set loses its media peer (MediaRelease), not just rights.
        assert pid in active, f"{ROLE_OF[pid]} in {members[pid].state} holds media"
        assert grant.subscribe_to <= active - {pid}
        if ROLE_OF[pid] is Role.OBSERVER:
            assert not grant.may_publish
    for m in after.members:
        if m.role is Role.OBSERVER:
            assert not m.may_publish

    # Nothing changes state without a committed command.
    if not committed:
        assert after.hearing_state is before.hearing_state
        assert after.locked is before.locked
        old = {m.participant_id: m.state for m in before.members}
        for pid, m in members.items():
            if pid in old:
                assert m.state is old[pid], f"{ROLE_OF[pid]}: {old[pid]} -> {m.state}"
    in_flight = {
        c.participant_id for c in h.room.pending_commands() if isinstance(c, ChangeParticipantState)
    }
    for pid, m in members.items():
        if pid not in in_flight:
            assert m.state is h.db.get(pid, ParticipantState.VERIFIED), ROLE_OF[pid]
    assert after.hearing_state is h.db_hearing
    assert after.locked is h.db_locked

    # Refused input changes nothing. (A commit the database refused also answers with an error
    # alone: its command is no longer pending, and nothing else may have changed.)
    if out and all(isinstance(o, Send) and isinstance(o.message, Error) for o in out):
        assert set(after.pending) <= set(before.pending)
        assert dataclasses.replace(after, pending=()) == dataclasses.replace(before, pending=())


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    initial=st.sampled_from(
        [HearingState.OPEN, HearingState.OPEN, HearingState.IN_SESSION, HearingState.SCHEDULED]
    ),
    locked=st.booleans(),
    script=steps,
)
def test_random_sequences_keep_the_invariants(
    initial: HearingState, locked: bool, script: list[tuple[Any, ...]]
) -> None:
    config = RoomConfig(
        reconnect_grace=timedelta(seconds=60),
        judge_drop_grace=timedelta(seconds=30),
        heartbeat_timeout=timedelta(seconds=90),
        rate_burst=8,
        rate_per_s=4,
        flood_close_after=6,
        max_protocol_errors=3,
    )
    world = World(Harness(hearing_state=initial, locked=locked, config=config))
    for step in script:
        before = world.h.room.snapshot()
        out, committed, ok = play(world, step)
        check(world, before, out, committed and ok)
