"""Every use of aiortc's (and aioice's) private internals, in one place, checked at start-up.

aiortc 1.16 has no public API to take encoded frames from a receiver, to ask a publisher for a
keyframe on our own, or to hear a subscriber's keyframe request when the sender only packs
frames it did not encode. The media node needs all three; docs/design/aiortc-encoded-forwarding.md
explains each touch point and the alternatives. ``check_aiortc`` refuses to start the media node
on a version these hooks were not written for, or where a call site they rely on has changed,
with an error that says which; tests/unit/media/test_hooks.py fails when a hook stops working.

Touch points:
1. encoded frames in: the receiver's jitter buffer is replaced by ``TapJitterBuffer``, which
   hands each complete frame to us and nothing to aiortc's decoder thread;
2. sender reports in: the receiver's ``_handle_rtcp_packet`` is wrapped on the instance;
3. keyframe requests out: ``RTCRtpReceiver._send_rtcp_pli``;
4. keyframe requests in: ``RTCRtpSender._send_keyframe`` is shadowed on the instance;
5. ICE host addresses: ``aioice.ice.get_host_addresses`` (aioice leaves out 127.0.0.1).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aioice.ice
import aiortc
import av
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtcpSrPacket, RtpPacket

logger = logging.getLogger(__name__)

SUPPORTED_AIORTC = ("1.16.",)
SUPPORTED_AV = ("18.",)

# Call sites in aiortc the hooks depend on: (owner, attribute, source text it must contain).
# Looked up when checked, not at import, so the check sees what will actually run.
_CALL_SITES: tuple[tuple[Any, str, str], ...] = (
    (RTCRtpReceiver, "_handle_rtp_packet", "self.__jitter_buffer.add(packet)"),
    (RTCRtpSender, "_handle_rtcp_packet", "self._send_keyframe()"),
    (RTCRtpSender, "_next_encoded_frame", "self.__encoder.pack(data)"),
    (RTCRtpReceiver, "_send_rtcp_pli", "media_ssrc"),
    (aioice.ice.Connection, "gather_candidates", "get_host_addresses("),
)

OnFrame = Callable[[bytes, int, int], None]  # (frame, RTP timestamp, media SSRC)
OnSenderReport = Callable[[int, int, int], None]  # (SSRC, NTP timestamp, RTP timestamp)


class UnsupportedAiortcError(RuntimeError):
    """The installed aiortc/PyAV is not one the media node's hooks were written for."""


def check_aiortc() -> None:
    """Raise ``UnsupportedAiortcError`` naming what does not match; return if all does."""
    if not aiortc.__version__.startswith(SUPPORTED_AIORTC):
        raise UnsupportedAiortcError(
            f"aiortc {aiortc.__version__} is installed; the media node supports "
            f"{', '.join(v + 'x' for v in SUPPORTED_AIORTC)} (pyproject.toml pins it)"
        )
    if not av.__version__.startswith(SUPPORTED_AV):
        raise UnsupportedAiortcError(
            f"PyAV {av.__version__} is installed; the media node supports "
            f"{', '.join(v + 'x' for v in SUPPORTED_AV)}"
        )
    for owner, name, needle in _CALL_SITES:
        where = f"{owner.__module__}.{owner.__qualname__}.{name}"
        try:
            source = inspect.getsource(getattr(owner, name))
        except (AttributeError, OSError, TypeError) as e:
            raise UnsupportedAiortcError(f"cannot read {where}: {e}") from e
        if needle not in source:
            raise UnsupportedAiortcError(f"{where} no longer contains {needle!r}")


class TapJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer (reordering, loss detection, its keyframe-request flag), with
    every complete frame handed to ``on_frame`` instead of to the decoder: the decoder thread
    then never wakes, and the server decodes nothing."""

    def __init__(self, *, capacity: int, is_video: bool, on_frame: OnFrame) -> None:
        # prefetch 0: release a frame as soon as it is complete; the viewer has its own buffer.
        super().__init__(capacity=capacity, prefetch=0, is_video=is_video)
        self._on_frame = on_frame

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is not None:
            # After RTX unwrap: packet.ssrc is the media SSRC, the one a PLI must name.
            self._on_frame(frame.data, frame.timestamp, packet.ssrc)
        return pli_flag, None


def tap_receiver(
    receiver: RTCRtpReceiver,
    *,
    video: bool,
    on_frame: OnFrame,
    on_sender_report: OnSenderReport,
) -> None:
    """Take ``receiver``'s encoded frames and sender reports. Call before the connection
    starts receiving (right after the transceiver is created)."""
    state = vars(receiver)
    if state.get("_RTCRtpReceiver__started") is not False:
        raise UnsupportedAiortcError("the receiver has already started (or aiortc changed)")
    current = state.get("_RTCRtpReceiver__jitter_buffer")
    if not isinstance(current, JitterBuffer):
        raise UnsupportedAiortcError("RTCRtpReceiver has no jitter buffer to replace")
    receiver._RTCRtpReceiver__jitter_buffer = TapJitterBuffer(  # type: ignore[attr-defined]
        capacity=current.capacity, is_video=video, on_frame=on_frame
    )
    original: Callable[[Any], Awaitable[None]] = receiver._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            on_sender_report(packet.ssrc, info.ntp_timestamp, info.rtp_timestamp)
        await original(packet)

    receiver._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Send the publisher a PLI for its media SSRC."""
    await receiver._send_rtcp_pli(media_ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the subscriber behind ``sender`` asks for a keyframe (PLI or
    FIR). aiortc's own handler only flags its encoder, which packed frames never use."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


_stock_host_addresses = aioice.ice.get_host_addresses


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Offer exactly these host candidate addresses (empty: aioice's own choice, every
    interface but loopback). Process-wide: aioice has no per-connection setting."""
    if not addresses:
        aioice.ice.get_host_addresses = _stock_host_addresses
        return
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses
