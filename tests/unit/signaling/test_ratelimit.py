from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.signaling.harness import T0
from yunting.signaling.ratelimit import TokenBucket


def test_burst_then_refill_at_rate() -> None:
    bucket = TokenBucket(rate=20, burst=40, now=T0)
    assert all(bucket.take(T0) for _ in range(40))
    assert not bucket.take(T0)
    assert bucket.take(T0 + timedelta(milliseconds=50))  # one token after 1/20 s
    assert not bucket.take(T0 + timedelta(milliseconds=50))


def test_never_saves_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=20, burst=3, now=T0)
    later = T0 + timedelta(hours=1)
    assert [bucket.take(later) for _ in range(4)] == [True, True, True, False]


def test_clock_stepping_back_refills_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=T0)
    assert bucket.take(T0)
    assert not bucket.take(T0 - timedelta(seconds=30))
    assert not bucket.take(T0 + timedelta(milliseconds=500))
    assert bucket.take(T0 + timedelta(seconds=1))


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="expected rate > 0"):
        TokenBucket(rate=0, burst=1, now=T0)
