"""The local blob store: complete blobs or none, immutable, keys that cannot escape."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from yunting.infra.storage import (
    BlobNotFoundError,
    LocalBlobStore,
    StorageError,
    check_key,
    sha256_of_blob,
)


async def test_a_file_handed_over_is_stored_under_its_key(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "spool" / "0001.webm"
    source.parent.mkdir()
    source.write_bytes(b"segment bytes" * 1000)
    blob = await store.put_file("recordings/h1/t1/0001.webm", source)
    assert blob.size == 13_000
    assert blob.sha256 == hashlib.sha256(b"segment bytes" * 1000).hexdigest()
    assert not source.exists()
    assert await store.exists("recordings/h1/t1/0001.webm")
    assert await store.size("recordings/h1/t1/0001.webm") == 13_000
    path = await store.local_path("recordings/h1/t1/0001.webm")
    assert path.read_bytes() == b"segment bytes" * 1000
    assert await sha256_of_blob(store, "recordings/h1/t1/0001.webm") == blob.sha256


async def test_blobs_are_immutable(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    (tmp_path / "f").write_bytes(b"first")
    assert (await store.put_file("k/blob", tmp_path / "f", sha256="given")).sha256 == "given"
    (tmp_path / "f").write_bytes(b"second")
    with pytest.raises(StorageError, match="immutable"):
        await store.put_file("k/blob", tmp_path / "f")
    assert (await store.local_path("k/blob")).read_bytes() == b"first"


async def test_missing_blobs_and_missing_sources(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobNotFoundError):
        await store.local_path("nothing/here")
    with pytest.raises(BlobNotFoundError):
        await store.size("nothing/here")
    assert not await store.exists("nothing/here")
    with pytest.raises(StorageError, match="cannot store"):
        await store.put_file("a/b", tmp_path / "no-such-file")


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "../x", "a//b", "a/.hidden", "a b", "a\\b", "x" * 501]
)
def test_keys_cannot_leave_the_store(key: str) -> None:
    with pytest.raises(ValueError, match="not a storage key"):
        check_key(key)


def test_ordinary_keys_pass() -> None:
    assert check_key("recordings/6f1c/audio-1/0003.webm") == "recordings/6f1c/audio-1/0003.webm"
