"""Keyframes and their size, read from the VP8 bitstream (RFC 6386 9.1)."""

from __future__ import annotations

import av

from yunting.media.vp8 import is_keyframe, keyframe_size


def encoded_frames(n: int, size: tuple[int, int]) -> list[bytes]:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = size
    codec.pix_fmt = "yuv420p"
    codec.options = {"g": "5"}  # a keyframe every 5 frames
    out: list[bytes] = []
    for i in range(n):
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 7) % 256]) * plane.buffer_size)
        frame.pts = i
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


def test_keyframes_and_sizes_come_from_the_bitstream() -> None:
    frames = encoded_frames(12, (320, 240))
    flags = [is_keyframe(f) for f in frames]
    assert flags[0] is True
    assert 1 < sum(flags) < len(frames)  # keyframes and delta frames both present
    assert keyframe_size(frames[0]) == (320, 240)
    delta = next(f for f in frames if not is_keyframe(f))
    assert keyframe_size(delta) is None


def test_short_or_foreign_data_is_not_a_keyframe() -> None:
    assert not is_keyframe(b"")
    assert not is_keyframe(b"\x00\x00\x00\x9d\x01")  # cut short
    assert not is_keyframe(b"\x00\x00\x00\x00\x00\x00\x40\x01\xf0\x00")  # no start code
    assert keyframe_size(b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01") == (640, 480)
