"""The signaling bus: in-process, and Redis pub/sub across two bus instances (two "nodes")."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from yunting.signaling.bus import Bus, InProcessBus, RedisBus

REDIS_URL = os.environ.get("YUNTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Collector:
    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.event = asyncio.Event()

    async def __call__(self, topic: str, payload: bytes) -> None:
        self.got.append((topic, payload))
        self.event.set()

    async def wait_for(self, n: int, within_s: float = 5) -> None:
        async def enough() -> None:
            while len(self.got) < n:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(enough(), within_s)


@pytest.fixture
def prefix() -> str:
    return f"yunting-test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def two_nodes(prefix: str) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    a = RedisBus(url=REDIS_URL, prefix=prefix)
    b = RedisBus(url=REDIS_URL, prefix=prefix)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def test_in_process_bus_delivers_in_order_and_isolates_failures() -> None:
    bus: Bus = InProcessBus()
    good = Collector()

    async def broken(topic: str, payload: bytes) -> None:
        raise RuntimeError("boom")

    await bus.subscribe("room:1", broken)
    await bus.subscribe("room:1", good)
    for i in range(100):
        await bus.publish("room:1", str(i).encode())
    await bus.publish("room:2", b"elsewhere")
    assert [p for _, p in good.got] == [str(i).encode() for i in range(100)]


async def test_redis_bus_crosses_nodes_in_order(two_nodes: tuple[RedisBus, RedisBus]) -> None:
    a, b = two_nodes
    got = Collector()
    await b.subscribe("room:7", got)
    # subscribe() returned, so nothing published from now on may be lost.
    for i in range(200):
        await a.publish("room:7", f"m{i}".encode())
    await got.wait_for(200)
    assert [p for _, p in got.got] == [f"m{i}".encode() for i in range(200)]
    assert {t for t, _ in got.got} == {"room:7"}


async def test_redis_bus_prefix_isolates_deployments(
    two_nodes: tuple[RedisBus, RedisBus],
) -> None:
    a, b = two_nodes
    got = Collector()
    await b.subscribe("room:1", got)
    other = RedisBus(url=REDIS_URL, prefix=f"other-{uuid.uuid4().hex[:6]}:")
    await other.start()
    try:
        await other.publish("room:1", b"not for us")
        await a.publish("room:1", b"for us")
        await got.wait_for(1)
        await asyncio.sleep(0.1)
        assert got.got == [("room:1", b"for us")]
    finally:
        await other.stop()


async def test_unsubscribe_stops_delivery(two_nodes: tuple[RedisBus, RedisBus]) -> None:
    a, b = two_nodes
    got = Collector()
    await b.subscribe("room:3", got)
    await a.publish("room:3", b"one")
    await got.wait_for(1)
    await b.unsubscribe("room:3")
    await a.publish("room:3", b"two")
    await asyncio.sleep(0.2)
    assert got.got == [("room:3", b"one")]


async def test_redis_bus_recovers_after_its_connection_is_killed(
    two_nodes: tuple[RedisBus, RedisBus], prefix: str
) -> None:
    a, b = two_nodes
    got = Collector()
    resynced = asyncio.Event()

    async def resync() -> None:
        resynced.set()

    b.on_reconnect(resync)
    await b.subscribe("room:9", got)
    # Kill every pub/sub client connection on the server (what a Redis restart does to us).
    admin = Redis.from_url(REDIS_URL)
    try:
        await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()
    await asyncio.wait_for(resynced.wait(), timeout=10)
    for _ in range(50):  # the listener is back; publish until it is subscribed again
        await a.publish("room:9", b"after")
        if got.got:
            break
        await asyncio.sleep(0.05)
    await got.wait_for(1)
    assert got.got[0] == ("room:9", b"after")
