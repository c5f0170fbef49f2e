"""Drives a ``Room`` message by message, the way the websocket adapter will, with no socket.

It plays the adapter's other half too: a dict stands in for the participants' recorded states,
and commands are "committed" to it on request. Every frame the room sends is checked against
``docs/signaling.schema.json`` on the way out.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import jsonschema

from yunting.hearing.model import Grants, HearingState, ParticipantState, Role
from yunting.hearing.tokens import JoinClaims
from yunting.signaling.messages import encode
from yunting.signaling.outputs import (
    ChangeHearingState,
    ChangeParticipantState,
    Close,
    Command,
    Output,
    Send,
    SetLocked,
    VerifyToken,
)
from yunting.signaling.room import Room, RoomConfig

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HEARING_ID = UUID("00000000-0000-4000-8000-00000000c0de")
OTHER_HEARING_ID = UUID("00000000-0000-4000-8000-0000000000ff")
SCHEMA_PATH = Path(__file__).parents[3] / "docs" / "signaling.schema.json"

OutputT = TypeVar("OutputT")

# Every server frame the tests produced, as JSON (the schema test checks there were many).
VALIDATED: list[dict[str, Any]] = []


@cache
def server_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    root = {**schema, "anyOf": [{"$ref": "#/$defs/ServerMessage"}]}
    cls = jsonschema.validators.validator_for(root)
    cls.check_schema(root)
    return cls(root, format_checker=cls.FORMAT_CHECKER)


def check_against_schema(outputs: Iterable[Output]) -> None:
    for output in outputs:
        if isinstance(output, Send):
            frame = json.loads(encode(output.message))
            server_validator().validate(frame)
            VALIDATED.append(frame)


def of(outputs: Iterable[Output], kind: type[OutputT]) -> list[OutputT]:
    return [o for o in outputs if isinstance(o, kind)]


def frames(
    outputs: Iterable[Output], conn_id: str, type_: str | None = None
) -> list[dict[str, Any]]:
    """JSON frames sent to ``conn_id`` (optionally of one ``type``), in order."""
    found = [json.loads(encode(o.message)) for o in of(outputs, Send) if o.conn_id == conn_id]
    return [f for f in found if type_ is None or f["type"] == type_]


def closes(outputs: Iterable[Output], conn_id: str) -> list[Close]:
    return [c for c in of(outputs, Close) if c.conn_id == conn_id]


@dataclass
class Person:
    pid: UUID
    role: Role
    conn: str
    resume_token: str | None = None


@dataclass
class Harness:
    hearing_state: HearingState = HearingState.OPEN
    locked: bool = False
    # Heartbeats are tested on their own; elsewhere they would only have to be sent to pass time.
    config: RoomConfig = field(
        default_factory=lambda: RoomConfig(heartbeat_timeout=timedelta(hours=1))
    )
    presiding_judge_id: UUID | None = None

    def __post_init__(self) -> None:
        tokens = itertools.count(1)
        self.room = Room(
            hearing_id=HEARING_ID,
            hearing_state=self.hearing_state,
            locked=self.locked,
            presiding_judge_id=self.presiding_judge_id,
            settings=self.config,
            new_resume_token=lambda: f"resume-{next(tokens)}",
        )
        self.now = T0
        self.db: dict[UUID, ParticipantState] = {}
        self.db_hearing = self.hearing_state
        self.db_locked = self.locked
        self._conns = itertools.count(1)
        self.log: list[Output] = []

    # Plumbing -----------------------------------------------------------------------------

    def _take(self, outputs: list[Output]) -> list[Output]:
        check_against_schema(outputs)
        self.log.extend(outputs)
        return outputs

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def claims(
        self,
        role: Role,
        pid: UUID | None = None,
        *,
        hearing_id: UUID = HEARING_ID,
        grants: Grants | None = None,
        ttl: timedelta = timedelta(days=1),
    ) -> JoinClaims:
        return JoinClaims(
            jti=uuid.uuid4().hex,
            hearing_id=hearing_id,
            participant_id=pid or uuid.uuid4(),
            role=role,
            grants=grants or Grants.for_role(role),
            issued_at=self.now,
            expires_at=self.now + ttl,
        )

    def new_conn(self) -> str:
        return f"c{next(self._conns)}"

    def open(self, conn: str) -> list[Output]:
        return self._take(self.room.open(conn, self.now))

    def raw(self, conn: str, data: str | bytes) -> list[Output]:
        return self._take(self.room.receive(conn, data, self.now))

    def send(self, who: Person | str, type_: str, **fields: Any) -> list[Output]:
        conn = who.conn if isinstance(who, Person) else who
        body = {"v": 1, "type": type_, **{k: _jsonable(v) for k, v in fields.items()}}
        return self.raw(conn, json.dumps(body))

    def hello(self, conn: str, resume_token: str | None = None) -> list[Output]:
        self.open(conn)
        extra = {"resume_token": resume_token} if resume_token else {}
        out = self.send(conn, "hello", token="yt1.test.token", **extra)
        assert of(out, VerifyToken) == [VerifyToken(conn, "yt1.test.token")]
        return out

    def connect(
        self, conn: str, claims: JoinClaims, state: ParticipantState | None = None
    ) -> list[Output]:
        recorded = state or self.db.setdefault(claims.participant_id, ParticipantState.VERIFIED)
        return self._take(
            self.room.connect(
                conn, claims, recorded, self.now, display_name=f"{claims.role} {conn}"
            )
        )

    def join(
        self,
        role: Role,
        pid: UUID | None = None,
        *,
        resume_token: str | None = None,
        commit: bool = True,
        grants: Grants | None = None,
    ) -> tuple[Person, list[Output]]:
        """Open, hello, verify, connect, and (``commit``) record every join step."""
        conn = self.new_conn()
        claims = self.claims(role, pid, grants=grants)
        out = self.hello(conn, resume_token)
        out += self.connect(conn, claims)
        if commit:
            out += self.commit_all()
        person = Person(claims.participant_id, role, conn)
        welcome = frames(out, conn, "welcome")
        if welcome:
            person.resume_token = welcome[-1]["resume_token"]
        return person, out

    def tick(self) -> list[Output]:
        return self._take(self.room.tick(self.now))

    def disconnect(self, who: Person | str, **kwargs: Any) -> list[Output]:
        conn = who.conn if isinstance(who, Person) else who
        return self._take(self.room.disconnect(conn, self.now, **kwargs))

    # The adapter's database half ----------------------------------------------------------

    def commit(self, command: Command, *, ok: bool = True, error: str = "") -> list[Output]:
        if ok:
            if isinstance(command, ChangeParticipantState):
                self.db[command.participant_id] = command.to
            elif isinstance(command, ChangeHearingState):
                from yunting.hearing.model import HEARING_ACTIONS

                self.db_hearing = HEARING_ACTIONS[command.action][1]
            elif isinstance(command, SetLocked):
                self.db_locked = command.locked
        return self._take(self.room.on_committed(command.command_id, self.now, ok=ok, error=error))

    def commit_all(self, *, ok: bool = True, error: str = "refused") -> list[Output]:
        """Commit pending commands until none is left (join steps come one after another)."""
        out: list[Output] = []
        for _ in range(20):
            pending = self.room.pending_commands()
            if not pending:
                return out
            for command in pending:
                out += self.commit(command, ok=ok, error=error)
        raise AssertionError("commands keep coming")

    def only_command(self, outputs: Iterable[Output], kind: type[OutputT]) -> OutputT:
        found = of(outputs, kind)
        assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
        return found[0]


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, UUID) else value


def error_codes(outputs: Iterable[Output], conn: str) -> list[str]:
    return [f["code"] for f in frames(outputs, conn, "error")]
