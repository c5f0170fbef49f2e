"""The aiortc hooks: refused on versions or sources they were not written for, and working on
the installed one (a tapped receiver hands over complete frames and decodes nothing)."""

from __future__ import annotations

import aiortc
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RtpPacket

from yunting.media import hooks


class _Transport:  # receivers and senders only keep a reference until they start
    _stats_id = "t"
    state = "new"


def test_the_installed_aiortc_passes_the_check() -> None:
    hooks.check_aiortc()


def test_another_aiortc_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "1.17.0")
    with pytest.raises(hooks.UnsupportedAiortcError, match=r"aiortc 1\.17\.0"):
        hooks.check_aiortc()


def test_a_changed_call_site_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def rewritten(self: RTCRtpSender, packet: object) -> None:  # keyframe call gone
        return None

    monkeypatch.setattr(RTCRtpSender, "_handle_rtcp_packet", rewritten)
    with pytest.raises(hooks.UnsupportedAiortcError, match="_send_keyframe"):
        hooks.check_aiortc()


# aiortc's senders and receivers look up the event loop when built, so these tests run in one
# (outside a loop they fail once another test has closed the default loop).
async def test_a_tapped_receiver_hands_over_complete_frames_and_nothing_to_the_decoder() -> None:
    receiver = RTCRtpReceiver("audio", _Transport())  # type: ignore[arg-type]
    frames: list[tuple[bytes, int, int]] = []
    hooks.tap_receiver(
        receiver,
        video=False,
        on_frame=lambda data, ts, ssrc: frames.append((data, ts, ssrc)),
        on_sender_report=lambda *_: None,
    )
    buffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    assert isinstance(buffer, hooks.TapJitterBuffer)
    for seq, ts in ((1, 960), (2, 1920), (3, 2880)):
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=ts, ssrc=0xABC)
        packet._data = bytes([seq])  # what depayloading leaves
        assert buffer.add(packet) == (False, None)  # never a frame for aiortc's decoder
    # A frame is complete when the next one starts.
    assert frames == [(b"\x01", 960, 0xABC), (b"\x02", 1920, 0xABC)]


async def test_a_started_receiver_cannot_be_tapped() -> None:
    receiver = RTCRtpReceiver("video", _Transport())  # type: ignore[arg-type]
    receiver._RTCRtpReceiver__started = True  # type: ignore[attr-defined]
    with pytest.raises(hooks.UnsupportedAiortcError):
        hooks.tap_receiver(
            receiver, video=True, on_frame=lambda *_: None, on_sender_report=lambda *_: None
        )


async def test_keyframe_requests_from_a_subscriber_reach_our_callback() -> None:
    sender = RTCRtpSender("video", _Transport())  # type: ignore[arg-type]
    asked: list[bool] = []
    hooks.on_keyframe_request(sender, lambda: asked.append(True))
    sender._send_keyframe()
    assert asked == [True]
