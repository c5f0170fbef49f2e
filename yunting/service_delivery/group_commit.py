"""Group commit: callers each hand over one item and wait for it to be written; items that
arrive while a write is running are written together by the next one.

Under load each item then costs a share of a transaction instead of one (on SQLite every write
transaction takes the whole database), and a caller still returns only once its item is
committed, so whatever it tells others afterwards (a provider acknowledging a receipt) is on
record first. Idle, an item is written at once: nothing waits for a batch to fill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitStoppedError(Exception):
    """The writer was cancelled (shutting down) before this item was written."""


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int,
        name: str,
    ) -> None:
        """``write`` stores a batch in one transaction and returns one result per item, in
        order; if it raises, every caller of that batch gets the exception."""
        if max_batch < 1:
            raise ValueError(f"expected max_batch >= 1, got {max_batch}")
        self._write = write
        self._max_batch = max_batch
        self._name = name
        self._backlog: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._backlog.append((item, done))
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = asyncio.create_task(self._run(), name=self._name)
        return await done

    async def _run(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._backlog:
                batch = self._backlog[: self._max_batch]
                del self._backlog[: self._max_batch]
                try:
                    results = await self._write([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(
                            f"{self._name}: expected {len(batch)} results, got {len(results)}"
                        )
                except Exception as e:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(e)
                else:
                    for (_, done), result in zip(batch, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            # Cancelled (shutting down): whoever still waits hears it. The batch being written
            # was rolled back with the cancelled transaction; the rest was never started.
            waiting = batch + self._backlog
            self._backlog = []
            for _, done in waiting:
                if not done.done():
                    done.set_exception(GroupCommitStoppedError(f"{self._name} stopped"))
