"""Signaling benchmark: relay throughput and latency, the Redis hop, memory per idle connection.

Prints one JSON line. Never asserts times.

    python bench/signaling.py [--quick] [--rooms R] [--participants K] [--senders S]

Everything runs on loopback, each server in its own process; the bench process is the clients
(websockets' sans-I/O protocol on plain asyncio protocols: no task per socket). Every server
runs for the whole bench, and the workloads run in interleaved blocks (the order reversed every
other round) so that a change in what the host gives this machine hits them all alike.

- Baseline: a bare ``websockets`` server (``websockets.asyncio.server.serve``, default
  permessage-deflate, the event loop uvicorn picks) in a subprocess. ``echo_msgs_per_s``:
  ``R*K`` connections, each sending a ``media_state``-sized message and waiting for its echo
  (one in flight per connection); frames received by clients per second, p50/p99 round trip.
  ``fanout_echo_msgs_per_s``: the same rooms, members and senders as the relay below, the bare
  server broadcasting each message to its room (``broadcast()``): the relay with no application.
- Ours, one node: a real ``yunting serve`` (no Redis). ``R`` hearings of ``K`` participants
  (judge, clerk, plaintiff, defendant, counsel, ...), all in the hearing: the parties joined the
  lobby with their links and the judge admitted them. In each room ``S`` parties toggle their
  microphone (``media_state``) and the room sends every member a ``roster``. Each sender waits
  for its own roster before the next toggle (closed loop, ``R*S`` toggles in flight, so
  ``p50_ms``/``p99_ms`` are latencies at saturation: in flight / throughput).
  ``relay_msgs_per_s``: rosters received by clients per second; latency: from the toggle being
  sent to each member receiving the roster that shows it. ``ratio_vs_echo`` = relay / echo.
- Ours, two nodes: two ``yunting serve`` sharing the database and a real Redis (a key prefix of
  this run's own). The judge joins node A first, so A owns the room; clerk and parties (the
  senders, and every member but the judge) are on node B. A toggle goes B -> Redis -> A (the
  room); each frame for a member on B goes A -> Redis -> B.
- ``paced_*``: the same rooms at a fixed light load (``--paced-rate`` toggles per second over all
  rooms), so latency is the path's, not a queue's; ``fanout_echo_paced_*`` is the bare server at
  that load, the floor the host's scheduling jitter sets. ``redis_hop_p50_ms`` = two-node
  paced p50 - one-node paced p50 over the members on node B (all but the judge): what
  B -> Redis -> A and A -> Redis -> B add (PUBLISH round trips, pub/sub delivery, the JSON
  envelope each way).
  ``saturated_p50_delta_ms`` is the same difference at saturation (mostly queueing).
- ``idle_conn_kib``: (server RSS after - before) / N for N websockets that completed
  hello/welcome and wait in the lobbies of N/50 hearings (verified observers); VmRSS of the
  uvicorn process, read when it is idle, with the relay rooms' sockets already open.
  ``echo_idle_conn_kib``: the same for the bare server (one echo each, then idle).

CPU of every server process and of the bench itself is reported per workload (100 = one core),
with CPU microseconds per frame delivered: ``ratio_vs_echo_server_cpu`` is the ratio if client and
server each had a core of their own. ``effective_cores``: how much work two busy processes get
done compared with one (a VM's two CPUs may be siblings of one core, or shared with a busy host).

Database: a private PostgreSQL database created from ``YUNTING_BENCH_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), migrated with ``yunting migrate`` and
dropped at the end; SQLite in the temporary directory if PostgreSQL is unreachable. Redis:
``YUNTING_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); without it the two-node
figures are null. Every process, key, database and file the bench made is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib
import json
import os
import random
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from yunting.hearing.model import HearingAction, ParticipantState, Role, StaffRole
from yunting.hearing.service import HearingService
from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.ledger.evidence import LedgerEvidence
from yunting.staff.passwords import make_hasher
from yunting.staff.service import StaffService

YUNTING = str(Path(sys.executable).with_name("yunting"))
POSTGRES_ADMIN_URL = os.environ.get(
    "YUNTING_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("YUNTING_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGETS = {"ratio_vs_echo": 0.5, "redis_hop_p50_ms": 2.0, "idle_conn_kib": 30.0}
STAFF_PASSWORD = "bench-staff-password"  # noqa: S105 - throwaway accounts in a throwaway database
IDLE_PER_HEARING = 50
WAIT_S = 30.0

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "杰", "霞", "明", "丽", "超", "琳", "涛"]
PARTY_ROLES = [
    (Role.PLAINTIFF, "原告"),
    (Role.DEFENDANT, "被告"),
    (Role.COUNSEL, "原告代理人"),
    (Role.COUNSEL, "被告代理人"),
    (Role.THIRD_PARTY, "第三人"),
    (Role.WITNESS, "证人"),
    (Role.INTERPRETER, "翻译"),
]
MIC = (
    '{"v":1,"type":"media_state","mic":false,"camera":false}',
    '{"v":1,"type":"media_state","mic":true,"camera":false}',
)


def person_name(n: int) -> str:
    return SURNAMES[n % len(SURNAMES)] + GIVEN[(n // len(SURNAMES)) % len(GIVEN)]


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: ``yunting serve`` (uvicorn, loop "auto") runs on it too."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


# Processes ---------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    # Runs in the child before exec: if the bench is killed outright, its servers go too.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def spawn(name: str, args: list[str], env: dict[str, str], workdir: Path, port: int) -> Server:
    log = workdir / f"{name}.log"
    # A file, not a pipe: a pipe nobody reads would block the server once full.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # called from the main thread, which outlives them
        )
    return Server(name, proc, port, log)


async def wait_ready(server: Server, *, health: bool) -> None:
    deadline = time.monotonic() + WAIT_S
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
            try:
                if health:
                    r = await http.get(f"http://127.0.0.1:{server.port}/healthz")
                    if r.status_code == 200:
                        return
                else:
                    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                    writer.close()
                    return
            except (httpx.TransportError, OSError):
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{server.name} did not come up in {WAIT_S}s:\n{server.log_tail()}")


async def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        if not await until(lambda: server.proc.poll() is not None, within=15):
            server.proc.kill()
    server.proc.wait()


async def until(check: Callable[[], bool], *, within: float, step: float = 0.02) -> bool:
    """Poll ``check`` until it holds (True) or ``within`` seconds pass (False)."""
    for _ in range(max(1, int(within / step))):
        if check():
            return True
        await asyncio.sleep(step)
    return check()


async def wait_quiet(pids: Sequence[int], *, span: float = 0.3, within: float = 15.0) -> None:
    """Until the processes use under 5 % of a core over ``span`` (joins and closes are done)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(span)
        if sum(cpu_seconds(p) for p in pids) - before < 0.05 * span * len(pids) + 1e-9:
            return


# The bare websockets server (a subprocess of the bench) -------------------------------------------


async def bare_server(port: int) -> None:
    """``/echo``: echo every message. ``/room/<name>``: broadcast every message to the room."""
    rooms: dict[str, set[ServerConnection]] = {}

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/echo"
        if path.startswith("/room/"):
            members = rooms.setdefault(path, set())
            members.add(ws)
            try:
                async for message in ws:
                    broadcast(members, message)
            finally:
                members.discard(ws)
        else:
            async for message in ws:
                await ws.send(message)

    stopping = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set_result, None)
    async with serve(handler, "127.0.0.1", port, max_size=1 << 20):
        await stopping


# A lean websocket client: websockets' sans-I/O protocol under an asyncio.Protocol --------


class WsClient(asyncio.Protocol):
    """One client websocket. Frames are handed to ``on_text(text, arrival_time)`` from
    ``data_received``: no task and no queue per connection, so one process can drive thousands
    of sockets and the arrival time is when the bytes came in."""

    def __init__(self, url: str, on_text: Callable[[str, float], None], *, deflate: bool) -> None:
        self.protocol = ClientProtocol(
            parse_uri(url),
            extensions=enable_client_permessage_deflate(None) if deflate else None,
            max_size=None,
        )
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.close_code: int | None = None
        self.wire_bytes = 0
        self._parts: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        self.wire_bytes += len(data)
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._frame(event, arrived)
            elif isinstance(event, Response) and not self.opened.done():
                if self.protocol.handshake_exc is None:
                    self.opened.set_result(None)
                else:
                    self.opened.set_exception(self.protocol.handshake_exc)
        self._flush()

    def _frame(self, frame: Frame, arrived: float) -> None:
        if frame.opcode is Opcode.TEXT or (frame.opcode is Opcode.CONT and self._parts):
            if frame.fin and not self._parts:
                self.on_text(bytes(frame.data).decode(), arrived)
                return
            self._parts.append(bytes(frame.data))
            if frame.fin:
                data, self._parts = b"".join(self._parts), []
                self.on_text(data.decode(), arrived)
        elif frame.opcode is Opcode.CLOSE and frame.data:
            self.close_code = Close.parse(bytes(frame.data)).code

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost before open: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _flush(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def send(self, message: str) -> None:
        self.protocol.send_text(message.encode())
        self._flush()

    async def close(self) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self._flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), timeout=2)
        self.abort()

    def abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class Clients:
    """Every websocket the bench opened, so all can be dropped on the way out."""

    def __init__(self, *, deflate: bool, parallel: int = 64) -> None:
        self.deflate = deflate
        self.all: list[WsClient] = []
        self._gate = asyncio.Semaphore(parallel)

    async def open(self, url: str, on_text: Callable[[str, float], None]) -> WsClient:
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        async with self._gate:
            _, client = await loop.create_connection(
                lambda: WsClient(url, on_text, deflate=self.deflate),
                parts.hostname or "127.0.0.1",
                parts.port or 80,
            )
            self.all.append(client)
            await asyncio.wait_for(asyncio.shield(client.opened), timeout=WAIT_S)
        return client

    async def close(self, clients: Sequence[WsClient]) -> None:
        await asyncio.gather(*(c.close() for c in clients))
        gone = set(map(id, clients))
        self.all = [c for c in self.all if id(c) not in gone]

    def abort_all(self) -> None:
        for client in self.all:
            client.abort()
        self.all.clear()


# Load: counting frames and latencies inside a measurement window ----------------------------------


class Load:
    """One workload's frames received and send-to-receipt latencies, summed over its
    measurement blocks; a frame counts when it arrives inside a block, a latency when the
    message was sent inside one."""

    def __init__(self, name: str, pids: Sequence[int], *, redis: bool = False) -> None:
        self.name = name
        self.pids = list(pids)
        self.redis = redis
        self.measuring = False  # the relay clients parse frames for the load, not for setup
        self.sending = False
        self.interval: float | None = None  # per sender; None: closed loop
        self.clear()

    def clear(self) -> None:
        self.t_start = float("inf")
        self.t_end = float("inf")
        self.elapsed = 0.0
        self.frames = 0
        self.text_bytes = 0
        self.wire_bytes = 0
        self.latencies: list[float] = []
        self.latencies_far: list[float] = []  # recipients not on the room's owner node
        self.anomalies = 0
        self.other: Counter[str] = Counter()
        self.server_cpu = [0.0] * len(self.pids)
        self.client_cpu = 0.0
        self.redis_cpu = 0.0

    def count(self, arrived: float, size: int) -> None:
        if self.t_start <= arrived < self.t_end:
            self.frames += 1
            self.text_bytes += size

    def latency(self, sent: float, arrived: float, *, far: bool) -> None:
        if self.t_start <= sent < self.t_end:
            self.latencies.append(arrived - sent)
            if far:
                self.latencies_far.append(arrived - sent)


class Sender:
    """One in flight: the next message goes when this sender's own copy comes back (closed
    loop), or at the next tick of its pace, whichever is later."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.ws: WsClient | None = None
        self.sent_at: list[float] = []
        self.outstanding = False
        self.due = 0.0
        self.generation = 0  # a paced timer from an earlier block must not fire in this one

    def payload(self) -> str:
        raise NotImplementedError

    def fire(self) -> None:
        if not self.load.sending or self.outstanding or self.ws is None:
            return
        message = self.payload()
        self.outstanding = True
        self.sent_at.append(time.perf_counter())
        self.ws.send(message)

    def _paced(self, generation: int) -> None:
        if generation == self.generation:
            self.fire()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.generation += 1
        interval = self.load.interval
        if interval is None:
            self.fire()
        else:  # spread the first sends over one interval
            self.due = loop.time() + random.random() * interval
            loop.call_at(self.due, self._paced, self.generation)

    def echoed(self) -> None:
        self.outstanding = False
        interval = self.load.interval
        if not self.load.sending:
            return
        if interval is None:
            self.fire()
            return
        loop = asyncio.get_running_loop()
        self.due = max(self.due + interval, loop.time())
        loop.call_at(self.due, self._paced, self.generation)


class EchoConn(Sender):
    def __init__(self, load: Load) -> None:
        super().__init__(load)
        self.mic = False

    def payload(self) -> str:
        self.mic = not self.mic
        return MIC[self.mic][:-1] + f',"id":"{len(self.sent_at)}"}}'

    def on_text(self, message: str, arrived: float) -> None:
        self.load.count(arrived, len(message))
        json.loads(message)  # what any client does with a frame
        if self.sent_at:
            self.load.latency(self.sent_at[-1], arrived, far=True)
        self.echoed()


class FanoutConn(Sender):
    """A member of a bare broadcast room; ``senders`` maps the id in each message back."""

    def __init__(self, load: Load, index: int, senders: list[FanoutConn]) -> None:
        super().__init__(load)
        self.index = index
        self.senders = senders
        self.mic = False

    def payload(self) -> str:
        self.mic = not self.mic
        return MIC[self.mic][:-1] + f',"id":"{self.index}:{len(self.sent_at)}"}}'

    def on_text(self, message: str, arrived: float) -> None:
        self.load.count(arrived, len(message))
        index, n = json.loads(message)["id"].split(":")
        sender = self.senders[int(index)]
        self.load.latency(sender.sent_at[int(n)], arrived, far=True)
        if sender is self:
            self.echoed()


class RelayMember(Sender):
    """A participant's socket to ``/ws/hearings/{id}``.

    During setup it keeps every frame (``next``). While measuring it reads only rosters: the
    entries whose ``mic`` flipped since its previous roster tell which sender's toggle this is;
    every toggle of a sender reaches every member exactly once and in order, so the member's
    count of flips seen for that sender indexes the sender's send times.
    """

    def __init__(self, load: Load, seat: Seat, *, far: bool) -> None:
        super().__init__(load)
        self.seat = seat
        self.far = far
        self.frames: list[dict[str, Any]] = []
        self._taken = 0
        self._arrived = asyncio.Event()
        self.by_index: list[RelayMember | None] = []
        self.mics: list[bool] = []
        self.seen: list[int] = []
        self.mic = False

    def payload(self) -> str:
        self.mic = not self.mic
        return MIC[self.mic]

    def on_text(self, message: str, arrived: float) -> None:
        frame = json.loads(message)
        load = self.load
        if not load.measuring:
            self.frames.append(frame)
            self._arrived.set()
            return
        if frame["type"] != "roster":
            load.other[frame["type"]] += 1
            return
        load.count(arrived, len(message))
        mics = [p["mic"] for p in frame["participants"]]
        if len(mics) != len(self.mics):
            load.anomalies += 1
            return
        for i, (now_on, was_on) in enumerate(zip(mics, self.mics, strict=True)):
            if now_on == was_on:
                continue
            sender = self.by_index[i]
            n = self.seen[i]
            self.seen[i] = n + 1
            if sender is None or n >= len(sender.sent_at):
                load.anomalies += 1
                continue
            load.latency(sender.sent_at[n], arrived, far=self.far)
            if sender is self:
                self.echoed()
        self.mics = mics

    async def next(
        self, type_: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """The first frame of ``type_`` (matching ``where``) not yet taken."""
        deadline = time.monotonic() + WAIT_S
        while True:
            for i in range(self._taken, len(self.frames)):
                frame = self.frames[i]
                if frame["type"] == type_ and (where is None or where(frame)):
                    self._taken = i + 1
                    return frame
            if self.ws is not None and self.ws.closed.done():
                raise RuntimeError(
                    f"{self.seat.name}: closed ({self.ws.close_code}) waiting for {type_}; "
                    f"got {[f['type'] for f in self.frames[self._taken :]]}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.seat.name}: no {type_} within {WAIT_S}s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=left)

    def last_roster(self) -> dict[str, Any]:
        rosters = [f for f in self.frames if f["type"] == "roster"]
        return rosters[-1]


# Seeding: a court, hearings and participants, through yunting's own services ----------------------


@dataclass(frozen=True, slots=True)
class Seat:
    name: str
    role: Role
    token: str
    participant_id: UUID


@dataclass
class SeededHearing:
    hearing_id: UUID
    seats: list[Seat] = field(default_factory=list)  # judge, clerk, then the others


@dataclass
class Seeded:
    one_node: list[SeededHearing]
    two_node: list[SeededHearing]
    idle: list[SeededHearing]  # the first one warms the server up


async def seed(
    url: str,
    secret: str,
    *,
    rooms: int,
    participants: int,
    idle_hearings: int,
    idle_per_hearing: int,
    two_node: bool,
) -> Seeded:
    """As a clerk would: schedule, add participants, issue links, mark the parties' identity as
    verified (what the one-time code does), open the lobby. Judge and clerk get their room
    tokens as from the bench page (``staff_room_pass``)."""
    db = Database(url)
    await db.start()
    try:
        clock = SystemClock()
        hearings = HearingService(
            db=db,
            clock=clock,
            secret_key=secret,
            public_base_url="http://127.0.0.1",
            join_token_ttl=timedelta(days=1),
            court_timezone=ZoneInfo("Asia/Shanghai"),
            evidence=LedgerEvidence(),
        )
        staff = StaffService(
            db=db,
            clock=clock,
            session_ttl=timedelta(hours=1),
            hasher=make_hasher(time_cost=1, memory_kib=1024),
        )
        court = await hearings.ensure_court(name="云庭基准法院", code="BENCH01")
        judge_name, clerk_name = "审判长 王丽", "书记员 陈明"
        judge_user = await staff.create_user(
            court_id=court.id,
            username="bench-judge",
            display_name=judge_name,
            role=StaffRole.JUDGE,
            password=STAFF_PASSWORD,
        )
        clerk_user = await staff.create_user(
            court_id=court.id,
            username="bench-clerk",
            display_name=clerk_name,
            role=StaffRole.CLERK,
            password=STAFF_PASSWORD,
        )
        clerk = clerk_user.actor()
        judge_person = await hearings.create_person(
            actor=clerk, name=judge_name, phone=None, email=None, id_number_last4=None
        )
        clerk_person = await hearings.create_person(
            actor=clerk, name=clerk_name, phone=None, email=None, id_number_last4=None
        )
        case = await hearings.create_case(
            actor=clerk, number="(2026)浙0192民初9999号", title="基准诉基准公司", cause="合同纠纷"
        )
        names = iter(range(1_000_000))

        async def one(others: list[tuple[Role, str]], with_staff: bool) -> SeededHearing:
            hearing = await hearings.schedule_hearing(
                actor=clerk,
                case_id=case.id,
                scheduled_start=clock.now() + timedelta(minutes=5),
                expected_minutes=60,
                is_public=True,
            )
            seeded = SeededHearing(hearing.id)
            if with_staff:
                for user, person, name in (
                    (judge_user, judge_person, judge_name),
                    (clerk_user, clerk_person, clerk_name),
                ):
                    room_pass = await hearings.staff_room_pass(
                        actor=user.actor(), hearing_id=hearing.id, person_id=person.id, name=name
                    )
                    seeded.seats.append(
                        Seat(name, room_pass.role, room_pass.token, room_pass.participant_id)
                    )
            for role, label in others:
                name = f"{label} {person_name(next(names))}"
                person = await hearings.create_person(
                    actor=clerk, name=name, phone=None, email=None, id_number_last4=None
                )
                participant = await hearings.add_participant(
                    actor=clerk,
                    hearing_id=hearing.id,
                    person_id=person.id,
                    role=role,
                    display_name=name,
                )
                link = await hearings.issue_join_link(actor=clerk, participant_id=participant.id)
                await hearings.change_participant_state(
                    actor=clerk,
                    participant_id=participant.id,
                    to=ParticipantState.VERIFIED,
                    action="participant.verify",
                )
                seeded.seats.append(Seat(name, role, link.token, participant.id))
            await hearings.change_hearing_state(
                actor=clerk, hearing_id=hearing.id, action=HearingAction.OPEN_LOBBY
            )
            return seeded

        gate = asyncio.Semaphore(1 if db.is_sqlite else 8)

        async def gated(others: list[tuple[Role, str]], with_staff: bool) -> SeededHearing:
            async with gate:
                return await one(others, with_staff)

        parties = [PARTY_ROLES[i % len(PARTY_ROLES)] for i in range(participants - 2)]
        observers = [(Role.OBSERVER, "旁听")] * idle_per_hearing
        sets = [rooms, rooms if two_node else 0, idle_hearings]
        made = await asyncio.gather(
            *(gated(parties, True) for _ in range(sets[0] + sets[1])),
            *(gated(observers, False) for _ in range(sets[2])),
        )
        return Seeded(
            one_node=made[: sets[0]],
            two_node=made[sets[0] : sets[0] + sets[1]],
            idle=made[sets[0] + sets[1] :],
        )
    finally:
        await db.stop()


# Database and Redis ------------------------------------------------------------------------------


async def _admin(statement: str) -> None:
    engine = create_async_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5}
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_postgres(name: str) -> str | None:
    """A private database for this run, or None when PostgreSQL cannot be reached."""
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except Exception as e:
        print(f"bench: PostgreSQL unavailable ({type(e).__name__}); using SQLite", file=sys.stderr)
        return None
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def redis_reachable() -> bool:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        return bool(await client.ping())
    except Exception as e:
        print(f"bench: Redis unavailable ({type(e).__name__}); no two-node run", file=sys.stderr)
        return False
    finally:
        await client.aclose()


async def redis_cpu_seconds() -> float:
    client = Redis.from_url(REDIS_URL)
    try:
        info = await client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        await client.aclose()


async def delete_redis_keys(prefix: str) -> int:
    client = Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            deleted += int(await client.delete(key))
    finally:
        await client.aclose()
    return deleted


# Measurement blocks ------------------------------------------------------------------------------


async def block(
    load: Load,
    senders: Sequence[Sender],
    receivers: Sequence[Sender],
    *,
    seconds: float,
    warmup: float,
) -> None:
    """Run the senders for ``warmup + seconds``, count the last ``seconds`` into ``load``."""
    load.sending = True
    loop = asyncio.get_running_loop()
    for sender in senders:
        sender.start(loop)
    await asyncio.sleep(warmup)
    cpu0 = [cpu_seconds(p) for p in load.pids]
    client0 = time.process_time()
    redis0 = await redis_cpu_seconds() if load.redis else 0.0
    wire0 = sum(r.ws.wire_bytes for r in receivers if r.ws is not None)
    load.t_start, load.t_end = time.perf_counter(), float("inf")
    await asyncio.sleep(seconds)
    load.t_end = time.perf_counter()
    cpu1 = [cpu_seconds(p) for p in load.pids]
    client1 = time.process_time()
    redis1 = await redis_cpu_seconds() if load.redis else 0.0
    wire1 = sum(r.ws.wire_bytes for r in receivers if r.ws is not None)
    load.sending = False
    load.elapsed += load.t_end - load.t_start
    load.server_cpu = [c + b - a for c, a, b in zip(load.server_cpu, cpu0, cpu1, strict=True)]
    load.client_cpu += client1 - client0
    load.redis_cpu += redis1 - redis0
    load.wire_bytes += wire1 - wire0
    await until(lambda: not any(s.outstanding for s in senders), within=WAIT_S)
    stuck = sum(s.outstanding for s in senders)
    if stuck:
        raise RuntimeError(f"{load.name}: {stuck} senders never got their own message back")


@dataclass
class Workload:
    load: Load
    senders: Sequence[Sender]
    receivers: Sequence[Sender]


async def interleave(
    workloads: Sequence[Workload], *, rounds: int, seconds: float, warmup: float
) -> None:
    """Blocks of each workload in turn, the order reversed every other round, so a drift in
    what the host gives us (a shared VM) hits every workload alike."""
    for n in range(rounds):
        for workload in workloads if n % 2 == 0 else list(reversed(workloads)):
            await block(
                workload.load,
                workload.senders,
                workload.receivers,
                seconds=seconds,
                warmup=warmup,
            )


def figures(load: Load, prefix: str = "") -> dict[str, Any]:
    """A load's summed blocks as report fields."""
    elapsed = load.elapsed
    lat = sorted(load.latencies)
    far = sorted(load.latencies_far)

    def per_frame(total: float) -> float | None:
        return round(total / load.frames, 1) if load.frames else None

    return {
        f"{prefix}msgs_per_s": round(load.frames / elapsed, 1) if elapsed else 0.0,
        f"{prefix}p50_ms": ms(percentile(lat, 0.50)),
        f"{prefix}p99_ms": ms(percentile(lat, 0.99)),
        f"{prefix}p50_far_ms": ms(percentile(far, 0.50)),
        f"{prefix}p99_far_ms": ms(percentile(far, 0.99)),
        f"{prefix}samples": len(lat),
        f"{prefix}server_cpu_pct": [round(100 * c / elapsed, 1) for c in load.server_cpu],
        f"{prefix}redis_cpu_pct": round(100 * load.redis_cpu / elapsed, 1) if load.redis else None,
        f"{prefix}client_cpu_pct": round(100 * load.client_cpu / elapsed, 1),
        # CPU microseconds per frame delivered: every server process, Redis included.
        f"{prefix}server_us_per_frame": per_frame((sum(load.server_cpu) + load.redis_cpu) * 1e6),
        f"{prefix}client_us_per_frame": per_frame(load.client_cpu * 1e6),
        f"{prefix}text_bytes_per_frame": per_frame(load.text_bytes),
        f"{prefix}wire_bytes_per_frame": per_frame(load.wire_bytes),
        f"{prefix}anomalies": load.anomalies,
        f"{prefix}unexpected_frames": dict(load.other),
    }


BURN = """
import time
end = time.perf_counter() + {seconds}
n = 0
while time.perf_counter() < end:
    n += 1
print(n)
"""


async def effective_cores(seconds: float = 0.4) -> float:
    """Work two busy processes get done over what one gets done alone: 2.0 for two real cores,
    about 1.0 when the two CPUs are siblings of one core or the host is busy."""

    async def burn(processes: int) -> int:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", BURN.format(seconds=seconds), stdout=subprocess.PIPE
            )
            for _ in range(processes)
        ]
        outputs = await asyncio.gather(*(p.communicate() for p in procs))
        return sum(int(out) for out, _ in outputs)

    before = await burn(1)
    both = await burn(2)
    after = await burn(1)
    return round(both / max(before, after), 2)


# Setting up the clients --------------------------------------------------------------------------


@dataclass
class Plan:
    rooms: int
    participants: int
    senders: int
    rounds: int
    block_s: float
    paced_rounds: int
    paced_block_s: float
    warmup: float
    paced_rate: float  # toggles per second, all rooms together
    idle: int


async def open_echo(server: Server, clients: Clients, plan: Plan) -> Workload:
    load = Load("echo", [server.pid])
    load.measuring = True
    conns = [EchoConn(load) for _ in range(plan.rooms * plan.participants)]
    for conn in conns:
        conn.ws = await clients.open(f"{server.ws}/echo", conn.on_text)
    return Workload(load, conns, conns)


async def open_fanout(server: Server, clients: Clients, plan: Plan) -> Workload:
    load = Load("fanout_echo", [server.pid])
    load.measuring = True
    senders: list[FanoutConn] = []
    members: list[FanoutConn] = []
    for room in range(plan.rooms):
        for k in range(plan.participants):
            sends = 2 <= k < 2 + plan.senders  # the seats that send in the relay: parties
            member = FanoutConn(load, len(senders) if sends else -1, senders)
            if sends:
                senders.append(member)
            member.ws = await clients.open(f"{server.ws}/room/{room}", member.on_text)
            members.append(member)
    return Workload(load, senders, members)


async def echo_idle_memory(server: Server, clients: Clients, n: int) -> float:
    """RSS growth per bare websocket that exchanged one message and then sat idle."""
    load = Load("echo_idle", [server.pid])
    conns = [EchoConn(load) for _ in range(n)]
    await wait_quiet([server.pid])
    before = rss_kib(server.pid)
    for conn in conns:
        conn.ws = await clients.open(f"{server.ws}/echo", conn.on_text)
    load.sending = True
    for conn in conns:  # the equivalent of hello/welcome: one message each way
        conn.fire()
    load.sending = False  # no second message when the echo comes back
    if not await until(lambda: not any(c.outstanding for c in conns), within=WAIT_S):
        raise RuntimeError("idle echo connections did not get their echo")
    await wait_quiet([server.pid])
    after = rss_kib(server.pid)
    await clients.close([c.ws for c in conns if c.ws is not None])
    return (after - before) / n


@dataclass
class RelayRoom:
    members: list[RelayMember]
    senders: list[RelayMember]


async def join_rooms(
    hearings: Sequence[SeededHearing],
    clients: Clients,
    load: Load,
    plan: Plan,
    *,
    owner: Server,
    other: Server,
) -> list[RelayRoom]:
    """Judge on ``owner`` first (the first connection claims the room), everyone else on
    ``other``; the judge admits the parties; returns once every member sees all K in the
    hearing, online, on its latest roster."""
    gate = asyncio.Semaphore(8)

    async def join(hearing: SeededHearing) -> RelayRoom:
        async with gate:
            members = [RelayMember(load, seat, far=i > 0) for i, seat in enumerate(hearing.seats)]

            async def hello(member: RelayMember, server: Server) -> dict[str, Any]:
                member.ws = await clients.open(
                    f"{server.ws}/ws/hearings/{hearing.hearing_id}", member.on_text
                )
                member.ws.send(json.dumps({"v": 1, "type": "hello", "token": member.seat.token}))
                return await member.next("welcome")

            judge = members[0]
            if (await hello(judge, owner))["state"] != "in_hearing":
                raise RuntimeError("the judge did not enter the hearing")
            await asyncio.gather(*(hello(m, other) for m in members[1:]))
            if judge.ws is None:
                raise RuntimeError("the judge has no socket")
            for i, member in enumerate(members[2:]):
                admit = {
                    "v": 1,
                    "type": "admit",
                    "id": f"a{i}",
                    "participant_id": str(member.seat.participant_id),
                }
                judge.ws.send(json.dumps(admit))
            for member in members[2:]:
                await member.next("participant_state", lambda f: f["state"] == "in_hearing")
            everyone = {str(s.participant_id) for s in hearing.seats}

            def complete(frame: dict[str, Any]) -> bool:
                entries = frame["participants"]
                return {p["participant_id"] for p in entries} == everyone and all(
                    p["state"] == "in_hearing" and p["presence"] == "online" for p in entries
                )

            for member in members:
                await member.next("roster", complete)
            return RelayRoom(members, members[2 : 2 + plan.senders])

    return await asyncio.gather(*(join(h) for h in hearings))


def arm(rooms: Sequence[RelayRoom], load: Load) -> Workload:
    """From now on members read rosters as load; their last roster is the starting point."""
    for room in rooms:
        order = [p["participant_id"] for p in room.members[0].last_roster()["participants"]]
        index = {str(m.seat.participant_id): m for m in room.members}
        by_index = [index[pid] if index[pid] in room.senders else None for pid in order]
        for member in room.members:
            roster = member.last_roster()["participants"]
            if [p["participant_id"] for p in roster] != order:
                raise RuntimeError(f"{member.seat.name} sees the roster in another order")
            member.by_index = by_index
            member.mics = [p["mic"] for p in roster]
            member.seen = [0] * len(order)
            member.frames.clear()
    load.measuring = True
    return Workload(
        load,
        [s for room in rooms for s in room.senders],
        [m for room in rooms for m in room.members],
    )


async def idle_memory(
    server: Server, warm: SeededHearing, hearings: Sequence[SeededHearing], clients: Clients
) -> tuple[float, int, int]:
    """RSS growth per welcomed lobby connection (verified observers), the server at rest and
    warmed up by one hearing's worth of the same connections first. Returns KiB per
    connection, connections, and the RSS after."""

    async def join(batch: Sequence[SeededHearing]) -> None:
        welcomed = asyncio.Event()
        waiting = sum(len(h.seats) for h in batch)

        def on_text(message: str, arrived: float) -> None:
            nonlocal waiting
            if '"type":"welcome"' in message:
                waiting -= 1
                if waiting == 0:
                    welcomed.set()

        async def one(hearing: SeededHearing, seat: Seat) -> None:
            ws = await clients.open(f"{server.ws}/ws/hearings/{hearing.hearing_id}", on_text)
            ws.send(json.dumps({"v": 1, "type": "hello", "token": seat.token}))

        await asyncio.gather(*(one(h, s) for h in batch for s in h.seats))
        await asyncio.wait_for(welcomed.wait(), timeout=WAIT_S * 2)
        await wait_quiet([server.pid])

    await join([warm])
    before = rss_kib(server.pid)
    await join(hearings)
    after = rss_kib(server.pid)
    n = sum(len(h.seats) for h in hearings)
    return (after - before) / n, n, after


# The run -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    current = asyncio.current_task()
    if current is not None:  # SIGTERM: unwind through the finally blocks below
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    plan = Plan(
        rooms=args.rooms or (10 if args.quick else 40),
        participants=args.participants,
        senders=args.senders,
        rounds=args.rounds or (2 if args.quick else 5),
        block_s=args.block_seconds or (1.0 if args.quick else 2.0),
        paced_rounds=2 if args.quick else 4,
        paced_block_s=0.8 if args.quick else 1.5,
        warmup=0.25 if args.quick else 0.5,
        paced_rate=args.paced_rate,
        idle=args.idle or (200 if args.quick else 500),
    )
    if plan.participants < 2 + plan.senders:
        raise SystemExit("--participants must leave room for judge, clerk and the senders")
    idle_per = min(IDLE_PER_HEARING, plan.idle)
    idle_hearings = -(-plan.idle // idle_per)
    plan.idle = idle_hearings * idle_per
    run_id = f"{os.getpid()}_{secrets.token_hex(4)}"
    secret = secrets.token_urlsafe(32)
    prefix = f"yunting-bench:{run_id}:"
    settings = {
        "YUNTING_SIGNALING_RATE_PER_S": "1000000",
        "YUNTING_SIGNALING_RATE_BURST": "1000000",
        # Clients send no heartbeats: the load is the relay alone.
        "YUNTING_SIGNALING_HEARTBEAT_TIMEOUT_S": "600",
        "YUNTING_LOG_LEVEL": "WARNING",
    }
    clients = Clients(deflate=not args.no_deflate)
    servers: list[Server] = []
    pg_name: str | None = None
    use_redis = False
    r: dict[str, Any] = {}
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = round(time.perf_counter() - mark, 2)
        mark = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="yunting-bench-") as tmp:
        workdir = Path(tmp)
        try:
            r["effective_cores"] = await effective_cores()
            pg_name = f"yunting_bench_{run_id}"
            url = await create_postgres(pg_name)
            if url is None:
                pg_name = None
                url = f"sqlite+aiosqlite:///{workdir / 'yunting.sqlite3'}"
            use_redis = await redis_reachable()
            base = {k: v for k, v in os.environ.items() if not k.startswith("YUNTING_")}
            base.update(
                YUNTING_DATA_DIR=str(workdir / "data"),
                YUNTING_DATABASE_URL=url,
                YUNTING_SECRET_KEY=secret,
                YUNTING_ARGON2_TIME_COST="1",
                YUNTING_ARGON2_MEMORY_KIB="1024",
                **settings,
            )
            migrate = await asyncio.create_subprocess_exec(
                YUNTING,
                "migrate",
                env=base,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(migrate.communicate(), timeout=120)
            if migrate.returncode != 0:
                raise RuntimeError(f"yunting migrate failed:\n{output.decode(errors='replace')}")

            # Every server runs for the whole bench (idle outside its blocks).
            port = free_port()
            bare = spawn(
                "bare", [sys.executable, __file__, "--bare-server", str(port)], base, workdir, port
            )
            servers.append(bare)

            def yunting(name: str, env: dict[str, str]) -> Server:
                port = free_port()
                server = spawn(name, [YUNTING, "serve", "--port", str(port)], env, workdir, port)
                servers.append(server)
                return server

            one = yunting("one", base)
            # Memory on a server of its own, stopped once measured: lobby members keep their
            # place (and their rooms tick) for a while after their sockets go.
            memory = yunting("memory", base)
            node_a = node_b = None
            if use_redis:
                cluster = {**base, "YUNTING_REDIS_URL": REDIS_URL, "YUNTING_REDIS_PREFIX": prefix}
                node_a = yunting("node-a", cluster)
                node_b = yunting("node-b", cluster)
            async with asyncio.TaskGroup() as group:
                seeding = group.create_task(
                    seed(
                        url,
                        secret,
                        rooms=plan.rooms,
                        participants=plan.participants,
                        idle_hearings=idle_hearings + 1,
                        idle_per_hearing=idle_per,
                        two_node=use_redis,
                    )
                )
                group.create_task(wait_ready(bare, health=False))
                for server in servers[1:]:
                    group.create_task(wait_ready(server, health=True))
            seeded = seeding.result()
            phase("setup")

            # Connections, and memory per idle connection with the workload's already open.
            echo = await open_echo(bare, clients, plan)
            fanout = await open_fanout(bare, clients, plan)
            r["echo_idle_conn_kib"] = round(await echo_idle_memory(bare, clients, plan.idle), 2)
            kib, r["idle_conns"], r["server_rss_kib"] = await idle_memory(
                memory, seeded.idle[0], seeded.idle[1:], clients
            )
            r["idle_conn_kib"] = round(kib, 2)
            await stop(memory)  # its clients get their close and go
            servers.remove(memory)
            one_load = Load("relay", [one.pid])
            one_rooms = await join_rooms(
                seeded.one_node, clients, one_load, plan, owner=one, other=one
            )
            workloads = [echo, fanout]
            relay = arm(one_rooms, one_load)
            workloads.append(relay)
            two: Workload | None = None
            if node_a is not None and node_b is not None:
                two_load = Load("two_node", [node_a.pid, node_b.pid], redis=True)
                two_rooms = await join_rooms(
                    seeded.two_node, clients, two_load, plan, owner=node_a, other=node_b
                )
                two = arm(two_rooms, two_load)
                workloads.append(two)
            await wait_quiet([s.pid for s in servers])
            phase("connect")

            await interleave(
                workloads, rounds=plan.rounds, seconds=plan.block_s, warmup=plan.warmup
            )
            r.update(figures(echo.load, "echo_"))
            r.update(figures(fanout.load, "fanout_echo_"))
            r.update(figures(relay.load))
            if two is not None:
                r.update(figures(two.load, "two_node_"))
            phase("saturated")

            # The bare fanout at the same light load: the floor this host's jitter sets.
            paced = [w for w in (fanout, relay, two) if w is not None]
            for workload in paced:
                workload.load.clear()
                workload.load.interval = len(workload.senders) / plan.paced_rate
            await interleave(
                paced, rounds=plan.paced_rounds, seconds=plan.paced_block_s, warmup=plan.warmup
            )
            r.update(figures(fanout.load, "fanout_echo_paced_"))
            r.update(figures(relay.load, "paced_"))
            if two is not None:
                r.update(figures(two.load, "two_node_paced_"))
            phase("paced")
        finally:
            clients.abort_all()
            for server in servers:
                try:
                    await stop(server)
                except Exception as e:  # keep cleaning up
                    print(f"bench: stopping {server.name}: {e!r}", file=sys.stderr)
            if use_redis:
                try:
                    await delete_redis_keys(prefix)
                except Exception as e:
                    print(f"bench: deleting Redis keys: {e!r}", file=sys.stderr)
            if pg_name is not None:
                try:
                    await _admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                except Exception as e:
                    print(f"bench: dropping database {pg_name}: {e!r}", file=sys.stderr)
            phase("cleanup")

    r["phases_s"] = phases
    return report(args, plan, r, postgres=pg_name is not None, redis=use_redis, settings=settings)


def report(
    args: argparse.Namespace,
    plan: Plan,
    r: dict[str, Any],
    *,
    postgres: bool,
    redis: bool,
    settings: dict[str, str],
) -> dict[str, Any]:
    ratio = r["msgs_per_s"] / r["echo_msgs_per_s"]
    hop: float | None = None
    saturated_delta: float | None = None
    if redis:
        hop = round(r["two_node_paced_p50_far_ms"] - r["paced_p50_far_ms"], 3)
        saturated_delta = round(r["two_node_p50_far_ms"] - r["p50_far_ms"], 3)
    anomalies = sum(v for k, v in r.items() if k.endswith("anomalies"))
    unexpected = {
        f"{k.removesuffix('unexpected_frames')}{t}": n
        for k, v in r.items()
        if k.endswith("unexpected_frames")
        for t, n in v.items()
    }
    return {
        "bench": "signaling",
        "quick": args.quick,
        "relay_msgs_per_s": r["msgs_per_s"],
        "ratio_vs_echo": round(ratio, 3),
        "p50_ms": r["p50_ms"],
        "p99_ms": r["p99_ms"],
        "redis_hop_p50_ms": hop,
        "idle_conn_kib": r["idle_conn_kib"],
        "echo_msgs_per_s": r["echo_msgs_per_s"],
        "echo_p50_ms": r["echo_p50_ms"],
        "echo_p99_ms": r["echo_p99_ms"],
        "fanout_echo_msgs_per_s": r["fanout_echo_msgs_per_s"],
        "fanout_echo_p50_ms": r["fanout_echo_p50_ms"],
        "fanout_echo_p99_ms": r["fanout_echo_p99_ms"],
        "ratio_vs_fanout_echo": round(r["msgs_per_s"] / r["fanout_echo_msgs_per_s"], 3),
        # The same ratio if client and server each had a core: server CPU per frame delivered.
        "ratio_vs_echo_server_cpu": round(
            r["echo_server_us_per_frame"] / r["server_us_per_frame"], 3
        ),
        "two_node_relay_msgs_per_s": r.get("two_node_msgs_per_s"),
        "two_node_p50_ms": r.get("two_node_p50_ms"),
        "two_node_p99_ms": r.get("two_node_p99_ms"),
        "redis_hop_note": (
            "two-node minus one-node p50 at the same light load (paced), members on node B: "
            "B->Redis->A (room) and back A->Redis->B for each frame"
        ),
        "saturated_p50_delta_ms": saturated_delta,
        "paced_toggles_per_s": plan.paced_rate,
        "fanout_echo_paced_p50_ms": r["fanout_echo_paced_p50_ms"],
        "fanout_echo_paced_p99_ms": r["fanout_echo_paced_p99_ms"],
        "paced_msgs_per_s": r["paced_msgs_per_s"],
        "paced_p50_ms": r["paced_p50_ms"],
        "paced_p99_ms": r["paced_p99_ms"],
        "paced_p50_far_ms": r["paced_p50_far_ms"],
        "two_node_paced_p50_ms": r.get("two_node_paced_p50_ms"),
        "two_node_paced_p99_ms": r.get("two_node_paced_p99_ms"),
        "two_node_paced_p50_far_ms": r.get("two_node_paced_p50_far_ms"),
        "toggles_per_s": round(r["msgs_per_s"] / plan.participants, 1),
        "two_node_toggles_per_s": (
            round(r["two_node_msgs_per_s"] / plan.participants, 1) if redis else None
        ),
        "roster_frame_bytes": r["text_bytes_per_frame"],
        "wire_bytes_per_frame": r["wire_bytes_per_frame"],
        "echo_idle_conn_kib": r["echo_idle_conn_kib"],
        "idle_conns": r["idle_conns"],
        "server_rss_kib": r["server_rss_kib"],
        "server_us_per_frame": {
            "echo": r["echo_server_us_per_frame"],
            "fanout_echo": r["fanout_echo_server_us_per_frame"],
            "relay": r["server_us_per_frame"],
            "fanout_echo_paced": r["fanout_echo_paced_server_us_per_frame"],
            "relay_paced": r["paced_server_us_per_frame"],
            "two_node_relay": r.get("two_node_server_us_per_frame"),
            "two_node_relay_paced": r.get("two_node_paced_server_us_per_frame"),
        },
        "client_us_per_frame": {
            "echo": r["echo_client_us_per_frame"],
            "fanout_echo": r["fanout_echo_client_us_per_frame"],
            "relay": r["client_us_per_frame"],
            "two_node_relay": r.get("two_node_client_us_per_frame"),
        },
        "cpu_pct": {
            "echo_server": r["echo_server_cpu_pct"],
            "echo_client": r["echo_client_cpu_pct"],
            "fanout_echo_server": r["fanout_echo_server_cpu_pct"],
            "fanout_echo_client": r["fanout_echo_client_cpu_pct"],
            "relay_server": r["server_cpu_pct"],
            "relay_client": r["client_cpu_pct"],
            "relay_paced_server": r["paced_server_cpu_pct"],
            "two_node_servers_a_b": r.get("two_node_server_cpu_pct"),
            "two_node_client": r.get("two_node_client_cpu_pct"),
            "two_node_redis": r.get("two_node_redis_cpu_pct"),
            "two_node_paced_servers_a_b": r.get("two_node_paced_server_cpu_pct"),
        },
        "samples": {
            "echo": r["echo_samples"],
            "relay": r["samples"],
            "relay_paced": r["paced_samples"],
            "two_node_relay": r.get("two_node_samples"),
            "two_node_relay_paced": r.get("two_node_paced_samples"),
        },
        "anomalies": anomalies,
        "unexpected_frames": unexpected,
        "targets": TARGETS,
        "meets_targets": {
            "ratio_vs_echo": ratio >= TARGETS["ratio_vs_echo"],
            "redis_hop_p50_ms": None if hop is None else hop <= TARGETS["redis_hop_p50_ms"],
            "idle_conn_kib": r["idle_conn_kib"] <= TARGETS["idle_conn_kib"],
        },
        "rooms": plan.rooms,
        "participants_per_room": plan.participants,
        "senders_per_room": plan.senders,
        "connections": plan.rooms * plan.participants,
        "rounds": plan.rounds,
        "block_s": plan.block_s,
        "database": "postgresql" if postgres else "sqlite",
        "redis": redis,
        "event_loop": "uvloop" if loop_factory() is not None else "asyncio",
        "permessage_deflate": not args.no_deflate,
        "effective_cores": r["effective_cores"],
        "settings": settings,
        "phases_s": r["phases_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument("--rooms", type=int, default=0, help="hearings (default 40; quick 10)")
    parser.add_argument("--participants", type=int, default=6, help="members per room")
    parser.add_argument("--senders", type=int, default=2, help="members toggling per room")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds (5; quick 2)")
    parser.add_argument(
        "--block-seconds", type=float, default=0, help="measured seconds per block (2; quick 1)"
    )
    parser.add_argument("--idle", type=int, default=0, help="idle connections (500; quick 200)")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=100.0,
        help="toggles/s over all rooms in the paced (light load) blocks",
    )
    parser.add_argument(
        "--no-deflate", action="store_true", help="clients do not offer permessage-deflate"
    )
    parser.add_argument("--bare-server", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of sockets
    coro: Coroutine[Any, Any, Any]
    coro = bare_server(args.bare_server) if args.bare_server else run(args)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            result = runner.run(coro)
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("bench: interrupted; everything it started was cleaned up", file=sys.stderr)
        return 1
    if not args.bare_server:
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
