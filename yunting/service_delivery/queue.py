"""The delivery queue: it carries attempt ids, nothing else. The database stays the source of
truth (a sweeper re-queues what a queue lost; a send needs the compare-and-set on the row), so a
queue may lose or repeat work without losing or doubling a service.

Without Redis: an in-process ``asyncio.Queue``. With Redis: a Stream and a consumer group, so
several worker processes share the work, and entries a dead worker had taken (pending, never
acknowledged) are claimed by another after ``claim_idle`` (XAUTOCLAIM).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Redis's errors when a consumer group's stream is deleted: before a read, or during one.
_STREAM_GONE = ("NOGROUP", "UNBLOCKED")


@dataclass(frozen=True, slots=True)
class QueueItem:
    attempt_id: UUID
    # The Redis stream entry id (to acknowledge); empty for the in-process queue.
    entry_id: str = ""


class DeliveryQueue(Protocol):
    async def put(self, attempt_ids: Sequence[UUID]) -> None: ...

    async def take(self, *, count: int, wait_s: float) -> list[QueueItem]:
        """Up to ``count`` items, waiting at most ``wait_s`` for the first."""
        ...

    async def ack(self, items: Sequence[QueueItem]) -> None: ...


class LocalQueue:
    """The embedded default: one process, nothing to reclaim.

    An id already waiting is not queued twice: the sweeper re-queues attempts queued long ago
    ("lost"), which here are usually still waiting behind a large burst."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[UUID] = asyncio.Queue()
        self._waiting: set[UUID] = set()

    async def put(self, attempt_ids: Sequence[UUID]) -> None:
        for attempt_id in attempt_ids:
            if attempt_id not in self._waiting:
                self._waiting.add(attempt_id)
                self._queue.put_nowait(attempt_id)

    async def take(self, *, count: int, wait_s: float) -> list[QueueItem]:
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout=wait_s)
        except TimeoutError:
            return []
        items = [QueueItem(first)]
        while len(items) < count and not self._queue.empty():
            items.append(QueueItem(self._queue.get_nowait()))
        self._waiting.difference_update(i.attempt_id for i in items)
        return items

    async def ack(self, items: Sequence[QueueItem]) -> None:
        del items  # nothing is pending in memory

    def qsize(self) -> int:
        return self._queue.qsize()


class RedisStreamQueue:
    """A Redis Stream with one consumer group shared by every worker process."""

    GROUP = "workers"

    def __init__(
        self,
        *,
        redis: Redis,
        prefix: str,
        consumer: str,
        claim_idle_s: float = 30.0,
        max_len: int = 1_000_000,
    ) -> None:
        self._redis = redis
        self.stream = f"{prefix}delivery:attempts"
        self._consumer = consumer
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._max_len = max_len
        self._group_ready = False

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self.stream, self.GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    async def put(self, attempt_ids: Sequence[UUID]) -> None:
        if not attempt_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for attempt_id in attempt_ids:
                pipe.xadd(
                    self.stream,
                    {"a": str(attempt_id)},
                    maxlen=self._max_len,
                    approximate=True,
                )
            await pipe.execute()

    async def take(self, *, count: int, wait_s: float) -> list[QueueItem]:
        try:
            await self._ensure_group()
            # Entries a dead consumer took and never acknowledged come first.
            claimed = await self._redis.xautoclaim(
                self.stream,
                self.GROUP,
                self._consumer,
                min_idle_time=self._claim_idle_ms,
                start_id="0-0",
                count=count,
            )
            entries: list[Any] = list(claimed[1]) if claimed else []
            if entries:
                logger.info("reclaimed %d pending delivery entries", len(entries))
            else:
                response = await self._redis.xreadgroup(
                    self.GROUP,
                    self._consumer,
                    {self.stream: ">"},
                    count=count,
                    block=max(1, int(wait_s * 1000)),
                )
                streams: list[Any] = list(response or [])
                entries = [e for _, stream_entries in streams for e in stream_entries]
        except (RedisConnectionError, RedisTimeoutError) as e:
            # Redis restarting: the sweeper covers the gap from the database.
            logger.warning("delivery queue unavailable: %s", e)
            self._group_ready = False
            await asyncio.sleep(min(wait_s, 1.0))
            return []
        except ResponseError as e:
            if not str(e).startswith(_STREAM_GONE):
                raise
            # The stream or its group is gone (deleted, evicted, a Redis without persistence
            # restarted between two commands; a blocked read hears UNBLOCKED): made again on
            # the next take. What it held is still due in the database: the sweeper queues it.
            logger.warning("delivery queue stream %s lost its group; recreating it", self.stream)
            self._group_ready = False
            return []
        items = []
        for entry_id, fields in entries:
            if fields is None:  # deleted from the stream meanwhile
                continue
            raw = fields.get(b"a") or fields.get("a")
            try:
                attempt_id = UUID(raw.decode() if isinstance(raw, bytes) else str(raw))
            except ValueError:
                logger.warning("dropping a malformed delivery entry %r", entry_id)
                await self._redis.xack(self.stream, self.GROUP, entry_id)
                continue
            items.append(
                QueueItem(
                    attempt_id, entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                )
            )
        return items

    async def ack(self, items: Sequence[QueueItem]) -> None:
        ids = [i.entry_id for i in items if i.entry_id]
        if not ids:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xack(self.stream, self.GROUP, *ids)
                pipe.xdel(self.stream, *ids)
                await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError) as e:
            # Unacknowledged entries are reclaimed and meet the compare-and-set: no resend.
            logger.warning("could not acknowledge delivery entries: %s", e)
