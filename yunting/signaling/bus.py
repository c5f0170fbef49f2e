"""Message bus between signaling nodes: in-process for the embedded default, Redis pub/sub to
span nodes.

The bus carries *work*, never state with legal weight: everything that matters is in the
database before it is published. Pub/sub is at-most-once; a node that loses its Redis connection
reconnects with backoff, re-subscribes, and calls its ``on_reconnect`` hooks so rooms can resync
their clients (a roster snapshot replaces whatever was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

Handler = Callable[[str, bytes], Awaitable[None]]
ReconnectHook = Callable[[], Awaitable[None]]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` to every current subscriber of ``topic`` (at most once)."""
        ...

    async def subscribe(self, topic: str, handler: Handler) -> None:
        """Call ``handler(topic, payload)`` for each message on ``topic`` until unsubscribed."""
        ...

    async def unsubscribe(self, topic: str) -> None: ...

    def on_reconnect(self, hook: ReconnectHook) -> None:
        """Run ``hook`` after the bus lost and regained its connection."""
        ...


class InProcessBus:
    """Direct calls inside one process; order per topic is preserved."""

    def __init__(self) -> None:
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._handlers.clear()

    async def publish(self, topic: str, payload: bytes) -> None:
        for handler in list(self._handlers.get(topic, ())):
            try:
                await handler(topic, payload)
            except Exception:
                # One failing subscriber must not stop delivery to the others.
                logger.exception("bus handler for %s failed", topic)

    async def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def unsubscribe(self, topic: str) -> None:
        self._handlers.pop(topic, None)

    def on_reconnect(self, hook: ReconnectHook) -> None:
        # An in-process bus never disconnects.
        return None


class RedisBus:
    """Redis pub/sub with automatic reconnect and re-subscribe.

    ``prefix`` namespaces every channel (several deployments or test runs on one Redis).
    """

    def __init__(
        self,
        *,
        url: str,
        prefix: str = "yunting:",
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
    ) -> None:
        self._url = url
        self._prefix = f"{prefix}bus:"
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._handlers: dict[str, Handler] = {}
        self._hooks: list[ReconnectHook] = []
        self._publisher: Redis | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._pubsub_changed = asyncio.Event()
        self._applied = asyncio.Condition()
        self._wanted_generation = 0
        self._applied_generation = 0
        self._connected = asyncio.Event()
        self._stopping = False

    def _channel(self, topic: str) -> str:
        return self._prefix + topic

    async def start(self) -> None:
        self._stopping = False
        self._publisher = Redis.from_url(self._url)
        self._listener_task = asyncio.create_task(self._listen(), name="redis-bus-listener")
        # Wait (briefly) for the first connection so early subscriptions are not lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout=5)

    async def stop(self) -> None:
        self._stopping = True
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener_task
            self._listener_task = None
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def publish(self, topic: str, payload: bytes) -> None:
        if self._publisher is None:
            raise RuntimeError("RedisBus.start() has not been called")
        try:
            await self._publisher.publish(self._channel(topic), payload)
        except (RedisConnectionError, RedisTimeoutError) as e:
            raise BusUnavailableError(f"cannot publish to {topic}: Redis unreachable") from e

    async def subscribe(self, topic: str, handler: Handler) -> None:
        """Returns once Redis has the subscription (or after 5 s without a connection: the
        listener subscribes on reconnect, and the reconnect hooks resync)."""
        self._handlers[topic] = handler
        await self._apply_and_wait()

    async def unsubscribe(self, topic: str) -> None:
        self._handlers.pop(topic, None)
        await self._apply_and_wait()

    async def _apply_and_wait(self) -> None:
        self._wanted_generation += 1
        target = self._wanted_generation
        self._pubsub_changed.set()
        async with self._applied:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._applied.wait_for(lambda: self._applied_generation >= target), timeout=5
                )

    def on_reconnect(self, hook: ReconnectHook) -> None:
        self._hooks.append(hook)

    async def _sync_subscriptions(self, pubsub: PubSub, subscribed: set[str]) -> set[str]:
        generation = self._wanted_generation
        wanted = {self._channel(t) for t in self._handlers}
        if new := wanted - subscribed:
            await pubsub.subscribe(*new)
        if gone := subscribed - wanted:
            await pubsub.unsubscribe(*gone)
        # SUBSCRIBE is acknowledged in order on the connection: a PING round trip after it means
        # Redis has applied it.
        await pubsub.ping()
        async with self._applied:
            self._applied_generation = max(self._applied_generation, generation)
            self._applied.notify_all()
        return wanted

    async def _listen(self) -> None:
        backoff = self._backoff_initial
        first = True
        while not self._stopping:
            client = Redis.from_url(self._url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                # A pub/sub connection needs at least one channel before it can wait for messages.
                await pubsub.subscribe(self._channel("__keepalive__"))
                subscribed = await self._sync_subscriptions(pubsub, set())
                self._connected.set()
                backoff = self._backoff_initial
                if not first:
                    logger.warning("redis bus reconnected; resyncing")
                    for hook in list(self._hooks):
                        await _run_hook(hook)
                first = False
                while not self._stopping:
                    if self._pubsub_changed.is_set():
                        self._pubsub_changed.clear()
                        subscribed = await self._sync_subscriptions(pubsub, subscribed)
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
                    if message is None or message.get("type") != "message":
                        continue
                    topic = bytes(message["channel"]).decode().removeprefix(self._prefix)
                    handler = self._handlers.get(topic)
                    if handler is not None:
                        try:
                            await handler(topic, bytes(message["data"]))
                        except Exception:
                            logger.exception("bus handler for %s failed", topic)
            except (RedisError, OSError) as e:
                self._connected.clear()
                logger.warning(
                    "redis bus connection lost (%s); retrying in %.2fs", type(e).__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()


async def _run_hook(hook: ReconnectHook) -> None:
    try:
        await hook()
    except Exception:
        logger.exception("bus reconnect hook failed")


class BusUnavailableError(Exception):
    """The bus could not take a message (Redis down); the caller decides what to tell clients."""
