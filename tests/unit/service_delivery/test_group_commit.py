"""GroupCommit: one write per batch of items that arrived together, each caller answered with
its own result or the batch's error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from yunting.service_delivery.group_commit import GroupCommit, GroupCommitStoppedError


class Store:
    """A write that takes a while (until released) and records its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_on: set[int] = set()
        self.short = False

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_on & set(items):
            raise RuntimeError(f"cannot write {sorted(self.fail_on & set(items))}")
        return [i * 10 for i in items][: len(items) - 1] if self.short else [i * 10 for i in items]


async def test_an_item_alone_is_written_at_once() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=10, name="test")
    assert await commit(1) == 10
    assert store.batches == [[1]]


async def test_items_that_arrive_during_a_write_go_together_in_the_next() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=10, name="test")
    store.release.clear()
    first = asyncio.create_task(commit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert store.batches == [[1]]  # writing, held
    rest = [asyncio.create_task(commit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    store.release.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40]
    assert store.batches == [[1], [2, 3, 4]]


async def test_a_batch_never_exceeds_max_batch() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=2, name="test")
    store.release.clear()
    tasks = [asyncio.create_task(commit(n)) for n in range(5)]
    await asyncio.sleep(0)
    store.release.set()
    assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
    assert store.batches == [[0, 1], [2, 3], [4]]


async def test_a_failed_write_fails_its_batch_only() -> None:
    store = Store()
    store.fail_on = {2}
    commit = GroupCommit(store.write, max_batch=2, name="test")
    store.release.clear()
    tasks = [asyncio.create_task(commit(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    store.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert isinstance(results[1], RuntimeError)
    assert results[2] == 30
    # The writer goes on afterwards.
    assert await commit(5) == 50


async def test_a_write_that_answers_the_wrong_number_of_results_fails_its_batch() -> None:
    store = Store()
    store.short = True
    commit = GroupCommit(store.write, max_batch=10, name="test")
    with pytest.raises(RuntimeError, match="expected 1 results, got 0"):
        await commit(1)


async def test_callers_are_told_when_the_writer_is_cancelled() -> None:
    store = Store()
    commit = GroupCommit(store.write, max_batch=1, name="test")
    store.release.clear()
    tasks = [asyncio.create_task(commit(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    writer = commit._writer
    assert writer is not None
    writer.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, GroupCommitStoppedError) for r in results), results
    # A new item starts a new writer.
    store.release.set()
    assert await commit(3) == 30


def test_max_batch_must_be_positive() -> None:
    async def write(items: Sequence[int]) -> list[int]:
        return list(items)

    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(write, max_batch=0, name="test")
