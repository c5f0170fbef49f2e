"""What the media node reads from a VP8 frame without decoding it (RFC 6386 section 9.1).

A keyframe's 3-byte frame tag has bit 0 clear, followed by the start code 9d 01 2a and the
14-bit width and height (the top two bits of each are a scaling mode we ignore). Decoders do
not report keyframes reliably (FFmpeg's libvpx wrapper never sets ``key_frame``), so the
forwarder and the recorder both look here.
"""

from __future__ import annotations

_START_CODE = b"\x9d\x01\x2a"


def is_keyframe(frame: bytes) -> bool:
    return len(frame) >= 10 and frame[0] & 0x01 == 0 and frame[3:6] == _START_CODE


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a keyframe, None for anything else."""
    if not is_keyframe(frame):
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height
