"""Where files with legal weight live: recording segments now, served documents next.

A ``BlobStore`` holds immutable blobs under keys like ``recordings/<hearing>/<track>/0003.webm``.
Producers write a complete local file first (PyAV's muxer needs a seekable file) and hand it
over with ``put_file``; consumers that need a real file (PyAV demuxing a segment) ask for
``local_path``. ``LocalBlobStore`` keeps them under the data directory; an S3-compatible store
implements the same port (upload on ``put_file``, download to a cache on ``local_path``).

Keys are checked, so a key built from user input can never leave the store's directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_CHUNK = 1 << 20


class StorageError(Exception):
    """The store could not keep or give back a blob (disk full, missing, permissions)."""


class BlobNotFoundError(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


def check_key(key: str) -> str:
    if len(key) > 500 or not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class BlobStore(Protocol):
    async def put_file(self, key: str, source: Path, *, sha256: str | None = None) -> StoredBlob:
        """Take over the complete local file ``source`` (it is moved or uploaded, then gone).
        ``sha256``, when the producer already knows it, saves reading the file again."""
        ...

    async def local_path(self, key: str) -> Path:
        """A local file with the blob's bytes, for readers that need one."""
        ...

    def read_chunks(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes, in chunks (for downloads and verification)."""
        ...

    async def size(self, key: str) -> int: ...

    async def exists(self, key: str) -> bool: ...


def fsync_dir(directory: Path) -> None:
    """Make a rename or new file in ``directory`` durable (its entry, not just its bytes)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalBlobStore:
    """Blobs as files under ``root``. ``put_file`` renames within one file system (the spool
    directory should be under the same data directory) and flushes the directory entry, so a
    blob either exists completely or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(self, key: str, source: Path, *, sha256: str | None = None) -> StoredBlob:
        target = self._path(key)

        def move() -> StoredBlob:
            digest = sha256 if sha256 is not None else sha256_of_file(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                raise StorageError(f"blob {key} exists already: blobs are immutable")
            try:
                os.replace(source, target)
            except OSError:
                # Another file system: copy, flush, then drop the source.
                tmp = target.with_name(target.name + ".part")
                with source.open("rb") as src, tmp.open("wb") as dst:
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)
                    dst.flush()
                    os.fsync(dst.fileno())
                os.replace(tmp, target)
                source.unlink()
            fsync_dir(target.parent)
            return StoredBlob(key=key, size=target.stat().st_size, sha256=digest)

        try:
            return await asyncio.to_thread(move)
        except StorageError:
            raise
        except OSError as e:
            raise StorageError(f"cannot store {key}: {e}") from e

    async def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFoundError(f"no blob {key}")
        return path

    async def read_chunks(self, key: str) -> AsyncIterator[bytes]:
        path = await self.local_path(key)
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, _CHUNK):
                yield chunk

    async def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as e:
            raise BlobNotFoundError(f"no blob {key}") from e

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()


async def sha256_of_blob(store: BlobStore, key: str) -> str:
    """Hash what the store gives back (verification reads the stored bytes, not a cache)."""
    digest = hashlib.sha256()
    async for chunk in store.read_chunks(key):
        digest.update(chunk)
    return digest.hexdigest()
