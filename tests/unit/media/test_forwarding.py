"""The forwarding policy frame by frame: keyframe gating, bounded backlog, clocks, throttling."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from yunting.media.forwarding import (
    Forwarder,
    KeyframeThrottle,
    SenderReportClock,
    ntp_to_unix,
    rtp_delta,
)


@dataclass(frozen=True)
class F:
    n: int
    keyframe: bool = False


def test_video_waits_for_a_keyframe_and_asks_for_one() -> None:
    fwd: Forwarder[F] = Forwarder(gated=True)
    assert fwd.push(F(1)) is True  # dropped, keyframe wanted
    assert fwd.pop() is None
    assert fwd.push(F(2, keyframe=True)) is False
    assert fwd.push(F(3)) is False
    assert [fwd.pop(), fwd.pop(), fwd.pop()] == [F(2, True), F(3), None]


def test_audio_is_not_gated() -> None:
    fwd: Forwarder[F] = Forwarder(gated=False)
    assert fwd.push(F(1)) is False
    assert fwd.pop() == F(1)


def test_a_full_backlog_is_dropped_and_video_restarts_on_a_keyframe() -> None:
    fwd: Forwarder[F] = Forwarder(gated=True, max_backlog=3)
    fwd.push(F(0, keyframe=True))
    fwd.push(F(1))
    fwd.push(F(2))
    assert len(fwd) == 3
    assert fwd.push(F(3)) is True  # overflow: backlog gone, waiting for a keyframe
    assert len(fwd) == 0
    assert fwd.push(F(4, keyframe=True)) is False
    assert fwd.pop() == F(4, True)


def test_restart_forgets_the_backlog() -> None:
    fwd: Forwarder[F] = Forwarder(gated=True)
    fwd.push(F(0, keyframe=True))
    fwd.restart()
    assert fwd.pop() is None
    assert fwd.waiting


def test_keyframe_requests_are_throttled() -> None:
    throttle = KeyframeThrottle(interval_s=0.3)
    assert throttle.due(10.0)
    assert not throttle.due(10.1)
    assert not throttle.due(10.29)
    assert throttle.due(10.31)


@pytest.mark.parametrize(
    ("later", "earlier", "delta"),
    [(100, 50, 50), (50, 100, -50), (5, 2**32 - 5, 10), (2**32 - 5, 5, -10)],
)
def test_rtp_delta_crosses_the_wrap(later: int, earlier: int, delta: int) -> None:
    assert rtp_delta(later, earlier) == delta


def test_sender_report_maps_rtp_time_to_the_wall_clock() -> None:
    clock = SenderReportClock(90_000)
    assert clock.to_unix(1234) is None  # no report yet
    # 2026-01-01T00:00:00Z as NTP, half a second in the fraction.
    unix = 1_767_225_600
    ntp = ((unix + 2_208_988_800) << 32) | (1 << 31)
    assert ntp_to_unix(ntp) == unix + 0.5
    clock.update(ntp=ntp, rtp=2**32 - 9000)  # just before the wrap
    assert clock.to_unix(2**32 - 9000) == unix + 0.5
    assert clock.to_unix(9000) == pytest.approx(unix + 0.7)  # 18000 ticks later, wrapped
    assert clock.to_unix(2**32 - 18000) == pytest.approx(unix + 0.4)
