"""One segment file: encoded VP8 or Opus frames muxed into WebM by PyAV, never decoded.

A segment is written under a ``.part`` name and becomes its final name only when complete:
the muxer has written its trailer, the file is flushed to disk (fsync), renamed, and the
directory entry flushed too. A crash leaves at most a ``.part`` file, never a final name with
half a file behind it. The SHA-256 is of the final bytes, read back after the fsync, so it is
the hash of what is on disk.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from yunting.infra.storage import fsync_dir, sha256_of_file

PART_SUFFIX = ".part"


class SegmentWriteError(Exception):
    """The segment could not be written (disk full, permissions, muxer refused a frame)."""


@dataclass(frozen=True, slots=True)
class SegmentFile:
    path: Path
    size: int
    sha256: str
    frames: int


class WebmSegmentWriter:
    """``write`` frames with timestamps relative to the segment's first frame (clock-rate
    units), then ``close`` (or ``abort``). Blocking file I/O: run it off the event loop."""

    def __init__(
        self, path: Path, *, kind: str, clock_rate: int, width: int = 0, height: int = 0
    ) -> None:
        if kind == "video" and (width <= 0 or height <= 0):
            raise ValueError("a video segment needs the keyframe's width and height")
        self.path = path
        self.part = path.with_name(path.name + PART_SUFFIX)
        self._time_base = Fraction(1, clock_rate)
        self.frames = 0
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._container: Any = av.open(str(self.part), "w", format="webm")
            if kind == "video":
                self._stream: Any = self._container.add_mux_stream(
                    "vp8", width=width, height=height
                )
            else:
                # A WebM Opus track must carry an OpusHead (CodecPrivate) or players refuse it;
                # a stream with libopus's codec context gets one when the muxer starts. The
                # context is only opened for its header: no frame is ever encoded.
                self._stream = self._container.add_stream("libopus", rate=48_000, layout="stereo")
            self._stream.time_base = self._time_base
        except (OSError, av.FFmpegError, ValueError) as e:
            self._discard()
            raise SegmentWriteError(f"cannot start segment {path.name}: {e}") from e

    def write(self, *, pts: int, data: bytes, keyframe: bool) -> None:
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = self._time_base
        packet.stream = self._stream
        packet.is_keyframe = keyframe
        try:
            self._container.mux(packet)
        except (OSError, av.FFmpegError, ValueError) as e:
            raise SegmentWriteError(f"cannot write to segment {self.path.name}: {e}") from e
        self.frames += 1

    def close(self) -> SegmentFile:
        """Finish the file, make it durable under its final name, and hash it."""
        if self._closed:
            raise SegmentWriteError(f"segment {self.path.name} is already closed")
        self._closed = True
        try:
            self._container.close()
            with self.part.open("rb+") as f:
                os.fsync(f.fileno())
            os.replace(self.part, self.path)
            fsync_dir(self.path.parent)
            return SegmentFile(
                path=self.path,
                size=self.path.stat().st_size,
                sha256=sha256_of_file(self.path),
                frames=self.frames,
            )
        except (OSError, av.FFmpegError, ValueError) as e:
            self._discard()
            raise SegmentWriteError(f"cannot finish segment {self.path.name}: {e}") from e

    def abort(self) -> None:
        """Drop the segment (the recorder failed mid-way): no final file appears."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, av.FFmpegError, ValueError):
            self._container.close()  # the file goes anyway
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(OSError):  # never made, or its directory is gone
            self.part.unlink(missing_ok=True)
