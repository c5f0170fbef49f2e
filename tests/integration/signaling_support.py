"""Real websocket clients for the hearing room, and a court to hold hearings in.

``Peer`` is a participant's browser reduced to its signaling socket: it validates every frame the
server sends against ``docs/signaling.schema.json`` and keeps them, so a test can wait for the
frame it expects without losing the ones before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.unit.signaling.harness import server_validator
from yunting.hearing.model import HearingAction, ParticipantState, PartySide, Role, StaffRole
from yunting.hearing.service import HearingService
from yunting.staff.service import StaffService

Frame = dict[str, Any]
WAIT_S = 10.0


class Peer:
    """One websocket to ``/ws/hearings/{id}``."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[Frame] = []
        self._seen = 0
        self._arrived = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        # Called with every frame as it arrives (the media test client answers offers here).
        self.listeners: list[Callable[[Frame], None]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, ws_base: str, hearing_id: UUID | str, name: str = "") -> Peer:
        ws = await connect(f"{ws_base}/ws/hearings/{hearing_id}", open_timeout=WAIT_S)
        return cls(ws, name)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                server_validator().validate(frame)  # every frame the server sends is in spec
                self.frames.append(frame)
                for listener in self.listeners:
                    listener(frame)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            if self.ws.close_code is not None:
                self.close_code = self.ws.close_code
                self.close_reason = self.ws.close_reason or ""
            self._arrived.set()

    @property
    def closed(self) -> bool:
        return self._reader.done()

    async def send(self, message: Frame | str | bytes) -> None:
        if isinstance(message, dict):
            message = json.dumps({"v": 1, **message})
        await self.ws.send(message)

    async def hello(self, token: str, resume_token: str | None = None) -> Frame:
        message: Frame = {"type": "hello", "token": token}
        if resume_token is not None:
            message["resume_token"] = resume_token
        await self.send(message)
        return await self.next("welcome")

    async def next(self, type_: str, where: Any = None, within: float = WAIT_S) -> Frame:
        """The first frame of ``type_`` (matching ``where``) not yet taken by ``next``."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for i in range(self._seen, len(self.frames)):
                frame = self.frames[i]
                if frame["type"] == type_ and (where is None or where(frame)):
                    self._seen = i + 1
                    return frame
            if self.closed:
                raise AssertionError(
                    f"{self.name}: closed ({self.close_code} {self.close_reason}) before a "
                    f"{type_}; got {[f['type'] for f in self.frames[self._seen :]]}"
                )
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"{self.name}: no {type_} within {within}s; got "
                    f"{[f['type'] for f in self.frames[self._seen :]]}"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=left)

    async def roster_where(self, check: Any, within: float = WAIT_S) -> Frame:
        return await self.next("roster", where=check, within=within)

    async def closed_with(self, within: float = WAIT_S) -> tuple[int | None, str]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout=within)
        assert self.closed, f"{self.name}: still open after {within}s"
        return self.close_code, self.close_reason

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self._reader

    async def drop(self) -> None:
        """Lose the connection without a closing handshake (network failure)."""
        self.ws.transport.abort()
        with contextlib.suppress(Exception):
            await self._reader


async def room_pass(
    http: Any, base: str, hearing_id: UUID, username: str, password: str
) -> dict[str, Any]:
    """Sign a staff user in on ``base`` and get a room token: the body, plus ``session``."""
    r = await http.post(
        f"{base}/api/auth/sign-in", json={"username": username, "password": password}
    )
    assert r.status_code == 200, r.text
    session = r.json()["session_token"]
    r = await http.post(
        f"{base}/api/hearings/{hearing_id}/room-token",
        headers={"Authorization": f"Bearer {session}"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    body["session"] = session
    return body


@contextlib.asynccontextmanager
async def serve_app(app: Starlette) -> AsyncIterator[int]:
    """Serve ``app`` with real uvicorn on a free loopback port (yielded) until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def states(roster: Frame) -> dict[str, str]:
    return {p["participant_id"]: p["state"] for p in roster["participants"]}


@dataclass
class Court:
    """A court with a judge and a clerk account, a case and an open hearing with parties."""

    hearing_id: UUID
    other_hearing_id: UUID
    judge_user: str
    clerk_user: str
    tokens: dict[str, str] = field(default_factory=dict)  # role name -> join token
    ids: dict[str, UUID] = field(default_factory=dict)  # role name -> participant id


async def seed_court(
    hearings: HearingService,
    staff: StaffService,
    *,
    now: datetime,
    password: str,
    open_lobby: bool = True,
) -> Court:
    """Judge and clerk join from their sessions; plaintiff, defendant and observer by link.

    The plaintiff and the observer have verified their identity, the defendant has not.
    """
    court = await hearings.ensure_court(name="杭州互联网法院", code="ZJ0192")
    users = {}
    for username, staff_role in (("judge", StaffRole.JUDGE), ("clerk", StaffRole.CLERK)):
        users[username] = await staff.create_user(
            court_id=court.id,
            username=username,
            display_name=username,
            role=staff_role,
            password=password,
        )
    clerk = users["clerk"].actor()
    case = await hearings.create_case(
        actor=clerk, number="(2026)浙0192民初1234号", title="张伟诉某公司", cause="合同纠纷"
    )
    hearing_ids = []
    for _ in range(2):
        hearing = await hearings.schedule_hearing(
            actor=clerk,
            case_id=case.id,
            scheduled_start=now + timedelta(minutes=5),
            expected_minutes=60,
            is_public=True,
        )
        hearing_ids.append(hearing.id)
    result = Court(hearing_ids[0], hearing_ids[1], "judge", "clerk")
    for name, role, side in (
        ("plaintiff", Role.PLAINTIFF, PartySide.PLAINTIFF),
        ("defendant", Role.DEFENDANT, PartySide.DEFENDANT),
        ("observer", Role.OBSERVER, None),
    ):
        person = await hearings.create_person(
            actor=clerk, name=name, phone=None, email=None, id_number_last4=None
        )
        party_id = None
        if side is not None:
            party = await hearings.add_party(
                actor=clerk, case_id=case.id, person_id=person.id, side=side
            )
            party_id = party.id
        participant = await hearings.add_participant(
            actor=clerk,
            hearing_id=result.hearing_id,
            person_id=person.id,
            role=role,
            party_id=party_id,
            display_name=name,
        )
        link = await hearings.issue_join_link(actor=clerk, participant_id=participant.id)
        result.tokens[name] = link.token
        result.ids[name] = participant.id
        if name != "defendant":
            await hearings.change_participant_state(
                actor=clerk,
                participant_id=participant.id,
                to=ParticipantState.VERIFIED,
                action="participant.verify",
            )
    if open_lobby:
        await hearings.change_hearing_state(
            actor=clerk, hearing_id=result.hearing_id, action=HearingAction.OPEN_LOBBY
        )
    return result
