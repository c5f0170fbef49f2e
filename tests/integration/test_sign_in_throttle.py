"""Repeated failed sign-ins are refused for a while: API, page, and the real Redis counters."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from yunting.staff.throttle import RedisLoginThrottle, ThrottleLimits

from .conftest import Api


async def test_api_refuses_after_ten_failures_even_the_right_password(api: Api) -> None:
    for _ in range(10):
        r = await api.client.post(
            "/api/auth/sign-in", json={"username": "clerk", "password": "wrong-password"}
        )
        assert r.status_code == 401
    r = await api.client.post(
        "/api/auth/sign-in", json={"username": "clerk", "password": "clerk-password"}
    )
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 15 * 60
    # Other accounts are unaffected (the per-address limit is higher).
    r = await api.client.post(
        "/api/auth/sign-in", json={"username": "judge", "password": "judge-password"}
    )
    assert r.status_code == 200


async def test_unknown_usernames_are_throttled_too(api: Api) -> None:
    for _ in range(10):
        r = await api.client.post(
            "/api/auth/sign-in", json={"username": "ghost", "password": "whatever1"}
        )
        assert r.status_code == 401
    r = await api.client.post(
        "/api/auth/sign-in", json={"username": "ghost", "password": "whatever1"}
    )
    assert r.status_code == 429


async def test_redis_throttle_is_shared_and_expires(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    limits = ThrottleLimits(window=timedelta(seconds=2), per_username=3, per_client=100)
    node_a = RedisLoginThrottle(redis=client, prefix=prefix, limits=limits)
    node_b = RedisLoginThrottle(redis=client, prefix=prefix, limits=limits)
    for _ in range(3):
        assert await node_a.retry_after(username="clerk", client="x") == 0
        await node_a.failed(username="clerk", client="x")
    # Another API node sees the same count.
    wait = await node_b.retry_after(username="clerk", client="y")
    assert 0 < wait <= 2
    await node_b.succeeded(username="clerk")
    assert await node_a.retry_after(username="clerk", client="x") == 0
    assert [k async for k in client.scan_iter(match=f"{prefix}*")]  # only our prefix was used
    ttl = await client.pttl(f"{prefix}login-fail:client:x")
    assert 0 < ttl <= 2000
