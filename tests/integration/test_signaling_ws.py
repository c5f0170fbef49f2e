"""The hearing room over real websockets on one node: real uvicorn, real clients, both databases.

Grace periods are shortened through settings so the reconnect and judge-drop rules can be seen
in seconds; everything else runs as deployed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from tests.integration.signaling_support import (
    Court,
    Peer,
    room_pass,
    seed_court,
    serve_app,
    states,
)
from yunting.hearing.model import HearingState, ParticipantState
from yunting.infra.db import Database
from yunting.infra.settings import Settings
from yunting.web.app import create_app
from yunting.web.resources import AppResources

SECRET = "signaling-test-secret-0123456789abcdef-0123"
PASSWORD = "staff-password"


@dataclass
class Node:
    app: FastAPI
    base: str
    ws: str
    court: Court
    http: httpx.AsyncClient

    @property
    def resources(self) -> AppResources:
        resources: AppResources = self.app.state.resources
        return resources

    async def staff_token(self, username: str) -> dict[str, Any]:
        return await room_pass(self.http, "", self.court.hearing_id, username, PASSWORD)

    async def join(self, name: str, token: str) -> tuple[Peer, dict[str, Any]]:
        peer = await Peer.connect(self.ws, self.court.hearing_id, name)
        return peer, await peer.hello(token)


@pytest.fixture
async def node(database: Database, tmp_path: Path) -> AsyncIterator[Node]:
    settings = Settings(
        database_url=database.url,
        data_dir=tmp_path,
        secret_key=SECRET,  # type: ignore[arg-type]
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        signaling_reconnect_grace_s=1.5,
        signaling_judge_drop_grace_s=1.0,
        signaling_max_message_bytes=4096,
        signaling_rate_per_s=50,
        signaling_rate_burst=20,
        media_enabled=False,  # tests/integration/test_media.py has the media node
    )
    app = create_app(settings)
    async with serve_app(app) as port:
        resources: AppResources = app.state.resources
        court = await seed_court(
            resources.hearings, resources.staff, now=resources.clock.now(), password=PASSWORD
        )
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            yield Node(app, base, f"ws://127.0.0.1:{port}", court, http)


async def attendance(node: Node, session: str) -> list[tuple[str, str, str]]:
    r = await node.http.get(
        f"/api/hearings/{node.court.hearing_id}/attendance",
        headers={"Authorization": f"Bearer {session}"},
    )
    assert r.status_code == 200, r.text
    return [(row["display_name"], row["event"], row["reason"]) for row in r.json()]


async def test_lobby_admission_and_start_are_recorded_then_announced(node: Node) -> None:
    court = node.court
    judge_pass = await node.staff_token("judge")
    judge, welcome = await node.join("judge", judge_pass["token"])
    assert welcome["state"] == "in_hearing"
    assert welcome["grants"] == {"may_publish": True, "may_subscribe": True, "may_control": True}
    assert welcome["presiding_judge_id"] == judge_pass["participant_id"]

    plaintiff, lobby_welcome = await node.join("plaintiff", court.tokens["plaintiff"])
    assert lobby_welcome["state"] == "in_lobby"
    assert lobby_welcome["lobby_position"] == 1
    assert lobby_welcome["roster"] is None  # the lobby sees nothing of the hearing
    pid = str(court.ids["plaintiff"])
    await judge.roster_where(lambda r: states(r).get(pid) == "in_lobby")

    await judge.send({"type": "admit", "participant_id": pid, "id": "a1"})
    admitted = await plaintiff.next("participant_state")
    assert admitted["state"] == "in_hearing"
    assert admitted["by"] == judge_pass["participant_id"]
    roster = await plaintiff.next("roster")
    assert states(roster)[pid] == "in_hearing"
    # Recorded before announced: the database already says so.
    hearings = node.resources.hearings
    assert (await hearings.room_participant(participant_id=court.ids["plaintiff"])).state is (
        ParticipantState.IN_HEARING
    )

    await judge.send({"type": "hearing_action", "action": "start", "reason": "开庭"})
    for peer in (judge, plaintiff):
        started = await peer.next("hearing_state")
        assert started["state"] == "in_session"
        assert started["action"] == "start"
    hearing = await hearings.room_hearing(hearing_id=court.hearing_id)
    assert hearing.state is HearingState.IN_SESSION

    log = await attendance(node, judge_pass["session"])
    assert ("plaintiff", "join_attempt", "") in log
    assert ("plaintiff", "entered_lobby", "") in log
    assert ("plaintiff", "admitted", "") in log
    assert ("judge", "entered_hearing", "") in log
    await plaintiff.close()
    await judge.close()


async def test_refusals_are_explicit_and_change_nothing(node: Node) -> None:
    court = node.court
    judge_pass = await node.staff_token("judge")
    judge, _ = await node.join("judge", judge_pass["token"])
    plaintiff, _ = await node.join("plaintiff", court.tokens["plaintiff"])
    observer, _ = await node.join("observer", court.tokens["observer"])
    for name in ("plaintiff", "observer"):
        await judge.send({"type": "admit", "participant_id": str(court.ids[name])})
    await plaintiff.next("participant_state")
    await observer.next("participant_state")
    before = node.resources.rooms.owned_room(court.hearing_id)
    assert before is not None
    snapshot = before.snapshot()

    # A party may not control the hearing; an observer may not publish.
    await plaintiff.send({"type": "hearing_action", "action": "start", "id": "x"})
    error = await plaintiff.next("error")
    assert (error["code"], error["ref"]) == ("forbidden", "x")
    await plaintiff.send(
        {"type": "remove", "participant_id": str(court.ids["observer"]), "reason": "no"}
    )
    assert (await plaintiff.next("error"))["code"] == "forbidden"
    await observer.send({"type": "media_state", "mic": True, "camera": False})
    assert (await observer.next("error"))["code"] == "forbidden"
    # Bad frames of every kind.
    await plaintiff.send("{not json")
    assert (await plaintiff.next("error"))["code"] == "bad_json"
    await plaintiff.send(json.dumps({"v": 2, "type": "heartbeat"}))
    assert (await plaintiff.next("error"))["code"] == "unsupported_version"
    await plaintiff.send({"type": "teleport"})
    assert (await plaintiff.next("error"))["code"] == "unknown_type"
    await plaintiff.send({"type": "admit"})
    assert (await plaintiff.next("error"))["code"] == "invalid_message"
    # Media before a media node exists: a clear error, not silence.
    await plaintiff.send({"type": "media_start"})
    assert (await plaintiff.next("error"))["code"] == "media_unavailable"
    assert before.snapshot() == snapshot

    # Oversized: error, then close 1009; the rest of the room carries on.
    await observer.send(json.dumps({"v": 1, "type": "leave", "reason": "x" * 5000}))
    assert (await observer.next("error"))["code"] == "too_big"
    assert (await observer.closed_with())[0] == 1009
    roster = await judge.roster_where(
        lambda r: any(
            p["participant_id"] == str(court.ids["observer"]) and p["presence"] == "reconnecting"
            for p in r["participants"]
        )
    )
    assert states(roster)[str(court.ids["plaintiff"])] == "in_hearing"
    await plaintiff.close()
    await judge.close()


async def test_bad_tokens_and_floods_close_with_documented_codes(node: Node) -> None:
    court = node.court
    # Tampered token: 4401.
    peer = await Peer.connect(node.ws, court.hearing_id, "tampered")
    token = court.tokens["plaintiff"]
    await peer.send({"type": "hello", "token": token[:-2] + ("AA" if token[-2:] != "AA" else "BB")})
    assert (await peer.closed_with())[0] == 4401
    # A token for another hearing: 4403.
    peer = await Peer.connect(node.ws, court.other_hearing_id, "elsewhere")
    await peer.send({"type": "hello", "token": court.tokens["plaintiff"]})
    assert await peer.closed_with() == (4403, "wrong_hearing")
    # Not verified yet (the defendant skipped the one-time code): refused, must verify.
    peer = await Peer.connect(node.ws, court.hearing_id, "defendant")
    await peer.send({"type": "hello", "token": court.tokens["defendant"]})
    code, reason = await peer.closed_with()
    assert (code, reason) == (4403, "must_verify")
    # Anything but hello first: 4401. No such hearing: 4404.
    peer = await Peer.connect(node.ws, court.hearing_id, "rude")
    await peer.send(
        {"type": "heartbeat", "rtt_ms": 1, "packet_loss_pct": 0, "jitter_ms": 0, "bitrate_kbps": 1}
    )
    assert (await peer.closed_with())[0] == 4401
    peer = await Peer.connect(node.ws, "00000000-0000-4000-8000-000000000000", "lost")
    assert (await peer.closed_with())[0] == 4404
    peer = await Peer.connect(node.ws, "not-a-uuid", "garbled")
    assert await peer.closed_with() == (4404, "no_such_hearing")
    # Paths beside the room endpoint are still the router's: no such route, no handshake.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{node.ws}/ws/hearings/{court.hearing_id}/extra")
    assert refused.value.response.status_code == 403
    # Revoked link: refused and written in the attendance log under the participant's name.
    judge_pass = await node.staff_token("judge")
    clerk = node.resources.staff
    user = await clerk.get_user_by_username(username="clerk")
    assert user is not None
    await node.resources.hearings.revoke_join_links(
        actor=user.actor(), participant_id=court.ids["observer"]
    )
    peer = await Peer.connect(node.ws, court.hearing_id, "observer")
    await peer.send({"type": "hello", "token": court.tokens["observer"]})
    assert (await peer.closed_with())[0] == 4401
    assert ("observer", "join_refused", "token_revoked") in await attendance(
        node, judge_pass["session"]
    )
    # Flood: error once, then 4429; the judge is still served.
    judge, _ = await node.join("judge", judge_pass["token"])
    plaintiff, _ = await node.join("plaintiff", court.tokens["plaintiff"])
    beat = json.dumps({"v": 1, "type": "media_state", "mic": False, "camera": False})
    with contextlib.suppress(Exception):
        for _ in range(400):
            await plaintiff.ws.send(beat)
    assert (await plaintiff.closed_with())[0] == 4429
    # One error per run of dropped messages: a loaded machine may let the bucket refill (20/s)
    # mid-flood, which starts a new run and one more error, never one per message.
    errors = [f for f in plaintiff.frames if f["type"] == "error"]
    assert errors
    assert {f["code"] for f in errors} == {"rate_limited"}
    assert len(errors) <= 5, errors
    await judge.send({"type": "lock", "reason": "full"})
    assert (await judge.next("hearing_state"))["locked"] is True
    await judge.close()


async def test_drop_and_resume_inside_grace_keeps_the_place(node: Node) -> None:
    court = node.court
    judge_pass = await node.staff_token("judge")
    judge, _ = await node.join("judge", judge_pass["token"])
    plaintiff, _ = await node.join("plaintiff", court.tokens["plaintiff"])
    pid = str(court.ids["plaintiff"])
    await judge.send({"type": "admit", "participant_id": pid})
    await plaintiff.next("participant_state")
    resume = plaintiff.frames[0]["resume_token"]  # from the welcome

    await plaintiff.drop()  # network failure, no closing handshake
    await judge.roster_where(
        lambda r: any(
            p["participant_id"] == pid and p["presence"] == "reconnecting"
            for p in r["participants"]
        )
    )
    back = await Peer.connect(node.ws, court.hearing_id, "plaintiff again")
    welcome = await back.hello(court.tokens["plaintiff"], resume_token=resume)
    assert welcome["resumed"] is True
    assert welcome["state"] == "in_hearing"  # no re-admission
    roster = await judge.roster_where(
        lambda r: any(
            p["participant_id"] == pid and p["presence"] == "online" for p in r["participants"]
        )
    )
    assert [p["participant_id"] for p in roster["participants"]].count(pid) == 1

    # Gone for longer than the grace period: marked disconnected, and the log says why.
    await back.drop()
    await judge.roster_where(lambda r: states(r).get(pid) == "disconnected", within=10)
    log = await attendance(node, judge_pass["session"])
    assert ("plaintiff", "resumed", "") in log
    assert ("plaintiff", "disconnected", "network_loss") in log
    assert ("plaintiff", "marked_disconnected", "network_loss") in log
    # Coming back after that goes through the lobby again.
    again, welcome = await node.join("plaintiff third", court.tokens["plaintiff"])
    assert welcome["state"] == "in_lobby"
    await again.close()
    await judge.close()


async def test_presiding_judge_drop_pauses_the_hearing(node: Node) -> None:
    court = node.court
    judge_pass = await node.staff_token("judge")
    judge, _ = await node.join("judge", judge_pass["token"])
    plaintiff, _ = await node.join("plaintiff", court.tokens["plaintiff"])
    await judge.send({"type": "admit", "participant_id": str(court.ids["plaintiff"])})
    await plaintiff.next("participant_state")
    await judge.send({"type": "hearing_action", "action": "start"})
    await plaintiff.next("hearing_state", where=lambda f: f["state"] == "in_session")

    await judge.drop()
    paused = await plaintiff.next("hearing_state", where=lambda f: f["state"] == "paused")
    assert paused["reason"] == "presiding_judge_disconnected"
    assert paused["by"] is None
    hearing = await node.resources.hearings.room_hearing(hearing_id=court.hearing_id)
    assert hearing.state is HearingState.PAUSED
    trail = await node.resources.hearings.audit_trail(
        actor=(await _clerk(node)).actor(), hearing_id=court.hearing_id
    )
    assert any(e["action"] == "hearing.pause" and e["actor_kind"] == "system" for e in trail)
    await plaintiff.close()


async def test_changes_from_the_staff_api_reach_the_room(node: Node) -> None:
    court = node.court
    clerk_pass = await node.staff_token("clerk")
    clerk, welcome = await node.join("clerk", clerk_pass["token"])
    assert welcome["role"] == "clerk"
    judge_pass = await node.staff_token("judge")
    r = await node.http.post(
        f"/api/hearings/{court.hearing_id}/state",
        json={"action": "start", "reason": "from the bench page"},
        headers={"Authorization": f"Bearer {judge_pass['session']}"},
    )
    assert r.status_code == 200, r.text
    changed = await clerk.next("hearing_state", where=lambda f: f["state"] == "in_session")
    assert changed["reason"] == "from the bench page"
    await clerk.close()


async def test_room_token_is_for_judges_and_clerks_only(node: Node) -> None:
    r = await node.http.post(f"/api/hearings/{node.court.hearing_id}/room-token")
    assert r.status_code == 401
    judge_pass = await node.staff_token("judge")
    again = await node.staff_token("judge")
    assert again["participant_id"] == judge_pass["participant_id"]  # one participant, reused


async def _clerk(node: Node) -> Any:
    user = await node.resources.staff.get_user_by_username(username="clerk")
    assert user is not None
    return user


async def test_staff_page_shows_the_live_room_and_attendance(node: Node) -> None:
    court = node.court
    judge_pass = await node.staff_token("judge")
    judge, _ = await node.join("judge", judge_pass["token"])
    plaintiff, _ = await node.join("plaintiff", court.tokens["plaintiff"])
    await judge.roster_where(lambda r: states(r).get(str(court.ids["plaintiff"])) == "in_lobby")
    pages = {}
    for lang in ("zh-CN", "en"):
        cookie = f"yt_session={judge_pass['session']}; yt_lang={lang}"
        r = await node.http.get(f"/hearings/{court.hearing_id}", headers={"Cookie": cookie})
        assert r.status_code == 200, r.text
        pages[lang] = r.text
    assert "出庭记录" in pages["zh-CN"]
    assert "进入候庭室" in pages["zh-CN"]
    assert "庭审室已开启：2 人在线，1 人在候庭室等候。" in pages["zh-CN"]
    assert "Attendance log" in pages["en"]
    assert "Entered the lobby" in pages["en"]
    assert "Room open: 2 online, 1 waiting in the lobby." in pages["en"]
    await plaintiff.close()
    await judge.close()


async def test_revoking_links_ends_a_live_connection(node: Node) -> None:
    court = node.court
    judge_pass = await node.staff_token("judge")
    judge, _ = await node.join("judge", judge_pass["token"])
    plaintiff, _ = await node.join("plaintiff", court.tokens["plaintiff"])
    clerk_pass = await node.staff_token("clerk")  # the clerk manages links, not the judge
    r = await node.http.delete(
        f"/api/participants/{court.ids['plaintiff']}/join-links",
        headers={"Authorization": f"Bearer {clerk_pass['session']}"},
    )
    assert r.status_code == 200, r.text
    assert await plaintiff.closed_with() == (4401, "token_revoked")
    log = await attendance(node, judge_pass["session"])
    assert ("plaintiff", "disconnected", "token_revoked") in log
    await judge.close()
