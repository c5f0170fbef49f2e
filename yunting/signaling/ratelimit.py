"""A token bucket per connection; time comes from the caller."""

from __future__ import annotations

from datetime import datetime


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. Starts full."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, *, rate: float, burst: int, now: datetime) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"expected rate > 0 and burst >= 1, got {rate} and {burst}")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: datetime) -> bool:
        """Spend one token if there is one. A clock that steps back refills nothing."""
        elapsed = (now - self._last).total_seconds()
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
