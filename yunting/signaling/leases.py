"""Which node owns a hearing's room: a lease per hearing.

A room's state has one writer (DESIGN.md, "Signaling"): the owner node. Embedded, this node owns
every room. Scaled out, the owner holds a Redis key with a time to live and renews it; a node that
dies lets it expire and the next connection for the hearing, on any node, claims it and rebuilds
the room from the database.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from yunting.signaling.bus import BusUnavailableError

# Renew only our own lease; re-take it when the key is gone (Redis restarted without persistence,
# nobody else claimed meanwhile). Returns the owner after the call.
_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return ARGV[1]
elseif not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RoomLeases(Protocol):
    async def claim(self, hearing_id: UUID) -> str:
        """The owner of the hearing's room, taking the lease if nobody holds it."""
        ...

    async def owner(self, hearing_id: UUID) -> str | None:
        """The current owner, or None when the lease has lapsed."""
        ...

    async def renew(self, hearing_id: UUID) -> str:
        """Extend our lease; returns the owner afterwards (another node: we lost the room)."""
        ...

    async def release(self, hearing_id: UUID) -> None: ...


class LocalLeases:
    """One node: it owns every room."""

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    async def claim(self, hearing_id: UUID) -> str:
        return self._node_id

    async def owner(self, hearing_id: UUID) -> str | None:
        return self._node_id

    async def renew(self, hearing_id: UUID) -> str:
        return self._node_id

    async def release(self, hearing_id: UUID) -> None:
        return None


class RedisLeases:
    """``SET NX PX`` leases; Redis errors surface as ``BusUnavailableError``."""

    def __init__(self, *, redis: Redis, prefix: str, node_id: str, ttl_s: float) -> None:
        self._redis = redis
        self._prefix = f"{prefix}room-owner:"
        self._node_id = node_id
        self._ttl_ms = int(ttl_s * 1000)

    def _key(self, hearing_id: UUID) -> str:
        return f"{self._prefix}{hearing_id}"

    async def claim(self, hearing_id: UUID) -> str:
        try:
            # RENEW takes a free lease and keeps ours, so it is also the claim.
            owner = await self._redis.eval(
                _RENEW, 1, self._key(hearing_id), self._node_id, self._ttl_ms
            )
        except RedisError as e:
            raise BusUnavailableError(f"cannot claim room {hearing_id}: {e}") from e
        return _text(owner)

    async def owner(self, hearing_id: UUID) -> str | None:
        try:
            value = await self._redis.get(self._key(hearing_id))
        except RedisError as e:
            raise BusUnavailableError(f"cannot read the owner of room {hearing_id}: {e}") from e
        return None if value is None else _text(value)

    async def renew(self, hearing_id: UUID) -> str:
        return await self.claim(hearing_id)

    async def release(self, hearing_id: UUID) -> None:
        try:
            await self._redis.eval(_RELEASE, 1, self._key(hearing_id), self._node_id)
        except RedisError as e:
            raise BusUnavailableError(f"cannot release room {hearing_id}: {e}") from e


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
