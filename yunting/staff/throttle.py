"""Sign-in throttling: failed attempts counted per username and per client address.

Both are checked *before* the password hash is computed, so a flood costs us nothing, and the
username limit applies to names that do not exist as well (no oracle). In-process counters for
the embedded default; Redis when configured, so every API node sees the same counts.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis

from yunting.infra.clock import Clock


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    window: timedelta = timedelta(minutes=15)
    per_username: int = 10
    per_client: int = 50


class LoginThrottle(Protocol):
    async def retry_after(self, *, username: str, client: str) -> float:
        """Seconds until a sign-in may be tried again; 0 when it may now."""
        ...

    async def failed(self, *, username: str, client: str) -> None:
        """Count one failed attempt."""
        ...

    async def succeeded(self, *, username: str) -> None:
        """Forget the username's failures (the client's stay counted)."""
        ...


class MemoryLoginThrottle:
    """Sliding-window counters in this process (the embedded default)."""

    def __init__(self, *, clock: Clock, limits: ThrottleLimits | None = None) -> None:
        self._clock = clock
        self._limits = limits or ThrottleLimits()
        self._failures: defaultdict[str, deque[datetime]] = defaultdict(deque)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures[key]
        while times and now - times[0] >= self._limits.window:
            times.popleft()
        if not times:
            del self._failures[key]  # keep memory bounded by active keys only
            return deque()
        return times

    async def retry_after(self, *, username: str, client: str) -> float:
        now = self._clock.now()
        waits = [0.0]
        for key, limit in (
            (f"user:{username}", self._limits.per_username),
            (f"client:{client}", self._limits.per_client),
        ):
            times = self._recent(key, now)
            if len(times) >= limit:
                oldest_counted = times[len(times) - limit]
                waits.append((oldest_counted + self._limits.window - now).total_seconds())
        return max(waits)

    async def failed(self, *, username: str, client: str) -> None:
        now = self._clock.now()
        self._failures[f"user:{username}"].append(now)
        self._failures[f"client:{client}"].append(now)

    async def succeeded(self, *, username: str) -> None:
        self._failures.pop(f"user:{username}", None)


class RedisLoginThrottle:
    """Fixed-window counters in Redis (``INCR`` + ``EXPIRE``), shared by every node."""

    def __init__(
        self, *, redis: Redis, prefix: str = "yunting:", limits: ThrottleLimits | None = None
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}login-fail:"
        self._limits = limits or ThrottleLimits()

    def _keys(self, username: str, client: str) -> list[tuple[str, int]]:
        return [
            (f"{self._prefix}user:{username}", self._limits.per_username),
            (f"{self._prefix}client:{client}", self._limits.per_client),
        ]

    async def retry_after(self, *, username: str, client: str) -> float:
        waits = [0.0]
        for key, limit in self._keys(username, client):
            count = await self._redis.get(key)
            if count is not None and int(count) >= limit:
                ttl_ms = await self._redis.pttl(key)
                waits.append(max(ttl_ms, 1000) / 1000)
        return max(waits)

    async def failed(self, *, username: str, client: str) -> None:
        window_s = math.ceil(self._limits.window.total_seconds())
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, _ in self._keys(username, client):
                # NX: the window starts at the first failure and is not extended by later ones.
                pipe.incr(key)
                pipe.expire(key, window_s, nx=True)
            await pipe.execute()

    async def succeeded(self, *, username: str) -> None:
        await self._redis.delete(f"{self._prefix}user:{username}")
