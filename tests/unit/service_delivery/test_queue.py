"""The in-process delivery queue: batches up to a count, never holds an id twice."""

from __future__ import annotations

import uuid

from yunting.service_delivery.queue import LocalQueue, QueueItem


async def test_take_returns_up_to_count_in_order_and_waits_for_nothing_when_empty() -> None:
    queue = LocalQueue()
    ids = [uuid.uuid4() for _ in range(5)]
    await queue.put(ids)
    assert await queue.take(count=3, wait_s=0.1) == [QueueItem(i) for i in ids[:3]]
    assert await queue.take(count=3, wait_s=0.1) == [QueueItem(i) for i in ids[3:]]
    assert await queue.take(count=3, wait_s=0.01) == []


async def test_an_id_still_waiting_is_not_queued_again() -> None:
    # The sweeper re-queues attempts queued long ago; in-process they are usually still waiting.
    queue = LocalQueue()
    a, b = uuid.uuid4(), uuid.uuid4()
    await queue.put([a, b])
    await queue.put([b, a])
    assert queue.qsize() == 2
    assert [i.attempt_id for i in await queue.take(count=10, wait_s=0.1)] == [a, b]
    # Taken, it may be queued again (a retry, or a send that failed before its claim).
    await queue.put([a])
    assert [i.attempt_id for i in await queue.take(count=10, wait_s=0.1)] == [a]
