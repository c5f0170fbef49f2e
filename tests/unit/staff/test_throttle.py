"""The in-process sign-in throttle (the Redis one runs against real Redis in integration)."""

from __future__ import annotations

from datetime import timedelta

from yunting.infra.clock import FrozenClock
from yunting.staff.throttle import MemoryLoginThrottle, ThrottleLimits

LIMITS = ThrottleLimits(window=timedelta(minutes=15), per_username=3, per_client=5)


async def test_username_limit_and_window(clock: FrozenClock) -> None:
    throttle = MemoryLoginThrottle(clock=clock, limits=LIMITS)
    for _ in range(3):
        assert await throttle.retry_after(username="clerk", client="a") == 0
        await throttle.failed(username="clerk", client="a")
        clock.advance(60)
    wait = await throttle.retry_after(username="clerk", client="b")
    # The oldest of the three failures leaves the window 15 min after it happened.
    assert wait == (15 - 3) * 60
    assert await throttle.retry_after(username="judge", client="b") == 0
    clock.advance(wait)
    assert await throttle.retry_after(username="clerk", client="b") == 0


async def test_client_limit_spans_usernames(clock: FrozenClock) -> None:
    throttle = MemoryLoginThrottle(clock=clock, limits=LIMITS)
    for i in range(5):
        await throttle.failed(username=f"guess{i}", client="10.0.0.9")
    assert await throttle.retry_after(username="anyone", client="10.0.0.9") > 0
    assert await throttle.retry_after(username="anyone", client="10.0.0.8") == 0


async def test_success_forgets_the_username(clock: FrozenClock) -> None:
    throttle = MemoryLoginThrottle(clock=clock, limits=LIMITS)
    for _ in range(2):
        await throttle.failed(username="clerk", client="a")
    await throttle.succeeded(username="clerk")
    await throttle.failed(username="clerk", client="a")
    await throttle.failed(username="clerk", client="a")
    assert await throttle.retry_after(username="clerk", client="a") == 0
