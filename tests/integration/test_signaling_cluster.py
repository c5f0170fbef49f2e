"""Two real ``yunting serve`` processes, one room: real PostgreSQL, real Redis, real websockets.

Redis sits behind a TCP proxy owned by the test, so "Redis goes away" is a real loss of every
connection the nodes hold (and deleting our keys meanwhile is what a restart without persistence
does), without disturbing the shared Redis server other tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from tests.integration.conftest import fast_hasher
from tests.integration.signaling_support import Court, Peer, room_pass, seed_court, states
from yunting.hearing.service import HearingService
from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.ledger.evidence import LedgerEvidence
from yunting.staff.service import StaffService

# Nodes share one database, so these run on PostgreSQL only.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database", ["postgres"], indirect=True),
]

YUNTING = str(Path(sys.executable).with_name("yunting"))
REDIS_URL = os.environ.get("YUNTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "cluster-test-secret-0123456789abcdef-0123456"
PASSWORD = "staff-password"
LEASE_S = 2.0


class RedisProxy:
    """A TCP pass-through to Redis that the test can cut and restore."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._path = parts.path or "/0"
        self._pairs: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.up = True

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self._path}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()
            return
        self._pairs.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._pairs.difference_update((writer, up_writer))

    def cut(self) -> None:
        self.up = False
        for writer in list(self._pairs):
            writer.transport.abort()
        self._pairs.clear()

    def restore(self) -> None:
        self.up = True

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class ServerProcess:
    name: str
    base: str
    ws: str
    proc: asyncio.subprocess.Process
    log: Path


@dataclass
class Cluster:
    court: Court
    nodes: dict[str, ServerProcess]
    proxy: RedisProxy
    prefix: str
    http: httpx.AsyncClient
    sessions: dict[str, str] = field(default_factory=dict)

    async def staff_token(self, node: str, username: str) -> dict[str, Any]:
        base = self.nodes[node].base
        body = await room_pass(self.http, base, self.court.hearing_id, username, PASSWORD)
        self.sessions[username] = body["session"]
        return body

    async def join(self, node: str, name: str, token: str) -> tuple[Peer, dict[str, Any]]:
        peer = await Peer.connect(self.nodes[node].ws, self.court.hearing_id, f"{name}@{node}")
        return peer, await peer.hello(token)

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log.read_text()[-4000:]}" for n in self.nodes.values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_node(name: str, env: dict[str, str], tmp_path: Path) -> ServerProcess:
    port = _free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            YUNTING,
            "serve",
            "--port",
            str(port),
            env={**env, "YUNTING_NODE_ID": name},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                await client.get(f"{base}/healthz")
                return ServerProcess(name, base, f"ws://127.0.0.1:{port}", proc, log)
            if proc.returncode is not None:
                raise AssertionError(log.read_text())
            await asyncio.sleep(0.1)
    raise AssertionError(f"{name} did not come up:\n{log.read_text()}")


@pytest.fixture
async def cluster(database: Database, tmp_path: Path) -> AsyncIterator[Cluster]:
    clock = SystemClock()
    hearings = HearingService(
        db=database,
        clock=clock,
        secret_key=SECRET,
        public_base_url="http://court.test",
        join_token_ttl=timedelta(days=1),
        court_timezone=ZoneInfo("Asia/Shanghai"),
        evidence=LedgerEvidence(),
    )
    staff = StaffService(
        db=database, clock=clock, session_ttl=timedelta(hours=1), hasher=fast_hasher()
    )
    court = await seed_court(hearings, staff, now=datetime.now(UTC), password=PASSWORD)
    proxy = RedisProxy(REDIS_URL)
    proxied = await proxy.start()
    prefix = f"yunting-test-{uuid.uuid4().hex[:8]}:"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("YUNTING_")}
    env = {
        **base_env,
        "YUNTING_DATABASE_URL": database.url,
        "YUNTING_DATA_DIR": str(tmp_path),
        "YUNTING_SECRET_KEY": SECRET,
        "YUNTING_REDIS_URL": proxied,
        "YUNTING_REDIS_PREFIX": prefix,
        "YUNTING_ARGON2_TIME_COST": "1",
        "YUNTING_ARGON2_MEMORY_KIB": "1024",
        "YUNTING_SIGNALING_RECONNECT_GRACE_S": "20",
        "YUNTING_SIGNALING_OWNER_LEASE_S": str(LEASE_S),
        "YUNTING_LOG_LEVEL": "INFO",
    }
    nodes: dict[str, ServerProcess] = {}
    try:
        for name in ("node-a", "node-b"):
            nodes[name] = await _start_node(name, env, tmp_path)
        async with httpx.AsyncClient(timeout=10) as http:
            yield Cluster(court, nodes, proxy, prefix, http)
    finally:
        for node in nodes.values():
            if node.proc.returncode is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes.values():
            try:
                await asyncio.wait_for(node.proc.wait(), timeout=15)
            except TimeoutError:
                node.proc.kill()
                await node.proc.wait()
        await proxy.stop()
        redis = Redis.from_url(REDIS_URL)
        try:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def _seat(cluster: Cluster) -> tuple[Peer, Peer, Peer, dict[str, Any]]:
    """Judge on node A (it owns the room), plaintiff and observer on node B, all admitted."""
    court = cluster.court
    judge_pass = await cluster.staff_token("node-a", "judge")
    judge, welcome = await cluster.join("node-a", "judge", judge_pass["token"])
    assert welcome["state"] == "in_hearing"
    plaintiff, lobby = await cluster.join("node-b", "plaintiff", court.tokens["plaintiff"])
    assert lobby["state"] == "in_lobby"
    observer, _ = await cluster.join("node-b", "observer", court.tokens["observer"])
    for name in ("plaintiff", "observer"):
        pid = str(court.ids[name])
        await judge.roster_where(lambda r, pid=pid: states(r).get(pid) == "in_lobby")
        await judge.send({"type": "admit", "participant_id": pid})
    assert (await plaintiff.next("participant_state"))["state"] == "in_hearing"
    assert (await observer.next("participant_state"))["state"] == "in_hearing"
    return judge, plaintiff, observer, judge_pass


async def test_two_nodes_share_one_room(cluster: Cluster) -> None:
    court = cluster.court
    judge, plaintiff, observer, judge_pass = await _seat(cluster)
    pid = str(court.ids["plaintiff"])

    # One roster, whichever node a participant is on.
    everyone = {judge_pass["participant_id"], pid, str(court.ids["observer"])}
    for peer in (judge, plaintiff, observer):
        roster = await peer.roster_where(lambda r: set(states(r)) >= everyone)
        assert [p["participant_id"] for p in roster["participants"]].count(pid) == 1

    # Messages cross in both directions.
    await plaintiff.send({"type": "media_state", "mic": True, "camera": True})
    for peer in (judge, observer):
        await peer.roster_where(
            lambda r: any(p["participant_id"] == pid and p["mic"] for p in r["participants"])
        )
    await judge.send({"type": "mute", "participant_id": pid, "kind": "audio"})
    muted = await plaintiff.next("muted")
    assert muted["by"] == judge_pass["participant_id"]
    await judge.send({"type": "hearing_action", "action": "start", "reason": ""})
    for peer in (judge, plaintiff, observer):
        await peer.next("hearing_state", where=lambda f: f["state"] == "in_session")
    # Refusals travel back to the relayed client.
    await observer.send({"type": "hearing_action", "action": "pause", "id": "p"})
    error = await observer.next("error")
    assert (error["code"], error["ref"]) == ("forbidden", "p")

    # The attendance log is one, read from either node.
    r = await cluster.http.get(
        f"{cluster.nodes['node-b'].base}/api/hearings/{court.hearing_id}/attendance",
        headers={"Authorization": f"Bearer {cluster.sessions['judge']}"},
    )
    events = {(row["display_name"], row["event"]) for row in r.json()}
    assert {("plaintiff", "entered_lobby"), ("plaintiff", "admitted")} <= events
    for peer in (judge, plaintiff, observer):
        await peer.close()


async def test_redis_outage_then_clients_resync(cluster: Cluster) -> None:
    court = cluster.court
    judge, plaintiff, observer, _ = await _seat(cluster)
    pid = str(court.ids["plaintiff"])

    cluster.proxy.cut()
    # Redis "restarted" and lost our keys (the room lease among them).
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{cluster.prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    # Node B cannot reach the room: the client is told, nothing is lost silently.
    await plaintiff.send({"type": "media_state", "mic": True, "camera": False})
    assert (await plaintiff.next("error"))["code"] == "unavailable"
    # The owner goes on for its own sockets; what it says to node B is lost meanwhile.
    await judge.send({"type": "mute", "participant_id": pid, "kind": "video"})
    await judge.roster_where(
        lambda r: any(p["participant_id"] == pid and p["muted_video"] for p in r["participants"])
    )
    await asyncio.sleep(1)
    cluster.proxy.restore()

    # Both nodes reconnect; the owner resyncs everyone with a fresh state and roster.
    resync = await plaintiff.next("hearing_state", where=lambda f: f["reason"] == "resync")
    assert resync["action"] is None
    await plaintiff.roster_where(
        lambda r: any(p["participant_id"] == pid and p["muted_video"] for p in r["participants"])
    )
    # And the room works across nodes again, without anyone having been dropped.
    await plaintiff.send({"type": "media_state", "mic": True, "camera": False})
    await judge.roster_where(
        lambda r: any(p["participant_id"] == pid and p["mic"] for p in r["participants"])
    )
    assert not plaintiff.closed
    assert not observer.closed
    for peer in (judge, plaintiff, observer):
        await peer.close()


async def test_owner_crash_moves_the_room_and_parties_keep_their_place(cluster: Cluster) -> None:
    court = cluster.court
    judge, plaintiff, observer, _ = await _seat(cluster)

    cluster.nodes["node-a"].proc.send_signal(signal.SIGKILL)
    await asyncio.wait_for(cluster.nodes["node-a"].proc.wait(), timeout=10)
    # Node B notices the owner's lease lapsed and asks its clients to reconnect.
    assert await plaintiff.closed_with(within=LEASE_S * 6) == (1012, "room_moved")
    assert (await observer.closed_with())[0] == 1012

    # They reconnect to the surviving node, which rebuilds the room from the database: both
    # were recorded in the hearing, so they resume without waiting to be admitted again.
    back, welcome = await cluster.join("node-b", "plaintiff", court.tokens["plaintiff"])
    assert welcome["state"] == "in_hearing", cluster.logs()
    assert welcome["resumed"] is True
    judge_pass = await cluster.staff_token("node-b", "judge")
    judge_again, judge_welcome = await cluster.join("node-b", "judge", judge_pass["token"])
    assert judge_welcome["presiding_judge_id"] == judge_pass["participant_id"]
    await back.roster_where(lambda r: states(r).get(judge_pass["participant_id"]) == "in_hearing")
    for peer in (back, judge_again):
        await peer.close()
    await judge.close()
