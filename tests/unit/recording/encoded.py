"""Real VP8 and Opus frames for the recording tests, encoded once with PyAV (the recorder
itself never encodes): what a browser would publish, minus the network."""

from __future__ import annotations

import functools
from fractions import Fraction

import av
import numpy as np

from yunting.media import vp8


@functools.cache
def vp8_frames(
    count: int, width: int = 160, height: int = 120, keyframe_every: int = 30
) -> tuple[tuple[bytes, bool], ...]:
    """``count`` frames of a changing picture at 30 fps: (data, keyframe)."""
    encoder: av.VideoCodecContext = av.CodecContext.create("libvpx", "w")  # type: ignore[assignment]
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.gop_size = keyframe_every
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[tuple[bytes, bool]] = []
    for i in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        for n, plane in enumerate(frame.planes):
            plane.update(bytes([(i * 7 + n * 50) % 256]) * plane.buffer_size)
        frame.pts = i
        for packet in encoder.encode(frame):
            data = bytes(packet)
            out.append((data, vp8.is_keyframe(data)))
    for packet in encoder.encode(None):
        data = bytes(packet)
        out.append((data, vp8.is_keyframe(data)))
    return tuple(out[:count])


@functools.cache
def opus_frames(count: int) -> tuple[bytes, ...]:
    """``count`` 20 ms Opus frames of silence-and-tone, 48 kHz."""
    encoder: av.AudioCodecContext = av.CodecContext.create("libopus", "w")  # type: ignore[assignment]
    encoder.sample_rate = 48_000
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.time_base = Fraction(1, 48_000)
    out: list[bytes] = []
    for i in range(count + 4):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.sample_rate = 48_000
        frame.planes[0].update(bytes([i % 256, 16]) * 960)
        frame.pts = i * 960
        out += [bytes(p) for p in encoder.encode(frame)]
    return tuple(out[:count])


@functools.cache
def vp8_colour_frames(
    colours: tuple[tuple[int, int, int], ...],
    width: int = 160,
    height: int = 120,
    keyframe_every: int = 30,
) -> tuple[tuple[bytes, bool], ...]:
    """One frame per entry of ``colours``, each a solid picture of that (Y, U, V): pictures a
    test can recognise again after decoding, scaling and encoding."""
    encoder: av.VideoCodecContext = av.CodecContext.create("libvpx", "w")  # type: ignore[assignment]
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.gop_size = keyframe_every
    encoder.bit_rate = 500_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[tuple[bytes, bool]] = []
    for i, colour in enumerate(colours):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, value in zip(frame.planes, colour, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = i
        for packet in encoder.encode(frame):
            data = bytes(packet)
            out.append((data, vp8.is_keyframe(data)))
    for packet in encoder.encode(None):
        data = bytes(packet)
        out.append((data, vp8.is_keyframe(data)))
    return tuple(out[: len(colours)])


@functools.cache
def opus_tone(count: int, frequency: float = 200.0, amplitude: float = 0.5) -> tuple[bytes, ...]:
    """``count`` 20 ms Opus frames of a sine tone, 48 kHz mono, starting at phase 0."""
    encoder: av.AudioCodecContext = av.CodecContext.create("libopus", "w")  # type: ignore[assignment]
    encoder.sample_rate = 48_000
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.time_base = Fraction(1, 48_000)
    encoder.bit_rate = 96_000
    out: list[bytes] = []
    for i in range(count + 4):  # the encoder's delay: a few more in for ``count`` out
        t = np.arange(i * 960, (i + 1) * 960) / 48_000
        pcm = np.round(amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.sample_rate = 48_000
        frame.planes[0].update(pcm.tobytes())
        frame.pts = i * 960
        out += [bytes(p) for p in encoder.encode(frame)]
    return tuple(out[:count])
