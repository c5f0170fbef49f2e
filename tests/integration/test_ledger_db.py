"""The evidence ledger on a real database (SQLite and PostgreSQL): appends, concurrency, proofs,
tamper detection by ``verify``, and evidence bundles."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy import text

from yunting.infra.clock import FrozenClock
from yunting.infra.db import Database
from yunting.infra.ledger import (
    InvalidEntryError,
    InvalidTreeSizeError,
    Ledger,
    NewEntry,
    append,
    append_many,
    build_ledger,
    merkle,
    repository,
)
from yunting.infra.ledger.bundle import item_path, verify_bundle
from yunting.infra.ledger.model import Entry, IssueKind
from yunting.infra.ledger.signing import TreeHeadSigner, verify_tree_head
from yunting.infra.settings import Settings

from .conftest import Api, bearer

CASE_A = UUID("11111111-2222-4333-8444-555555555555")
CASE_B = UUID("99999999-8888-4777-8666-555555555555")
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"yunting test ledger key").digest())


@pytest.fixture
def ledger(database: Database, clock: FrozenClock) -> Ledger:
    return Ledger(db=database, signer=TreeHeadSigner(KEY), clock=clock)


def sha(n: int) -> str:
    return hashlib.sha256(f"document {n}".encode()).hexdigest()


def new_entry(n: int, clock: FrozenClock, case_id: UUID | None = None) -> NewEntry:
    return NewEntry(
        kind="hearing.state_changed",
        subject_id=f"hearing-{n % 3}",
        content_sha256=sha(n),
        event={"n": n, "from": "open", "to": "in_session", "by": "审判长 王芳"},
        at=clock.now() + timedelta(seconds=n),
        case_id=case_id,
    )


async def fill(database: Database, clock: FrozenClock, count: int, start: int = 0) -> None:
    await append_many(database, entries=[new_entry(n, clock) for n in range(start, start + count)])


async def all_leaves(database: Database) -> list[bytes]:
    async with database.read() as conn:
        rows = await repository.entries_page(conn, after=-1, limit=10**6)
    return [row.leaf for row in rows]


async def test_appends_build_the_rfc6962_tree(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    indices = [
        await append(
            database,
            kind="DOCUMENT_SERVED",
            subject_id=uuid4(),
            content_sha256=sha(n),
            event={"n": n},
            at=clock.now(),
        )
        for n in range(5)
    ]
    indices += await append_many(database, entries=[new_entry(n, clock) for n in range(5, 21)])
    assert indices == list(range(21))

    leaves = await all_leaves(database)
    expected_root = merkle.root_from_leaf_hashes([merkle.leaf_hash(leaf) for leaf in leaves])
    head = await ledger.head()
    assert (head.size, head.root_hash) == (21, expected_root)
    assert [Entry.from_leaf(leaf).index for leaf in leaves] == indices


async def test_append_commits_and_rolls_back_with_the_callers_transaction(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    class CallerFailedError(Exception):
        pass

    async def transition_that_fails_after_appending() -> None:
        async with database.transaction() as conn:
            index = await append(
                conn,
                kind="hearing.closed",
                subject_id="h-1",
                content_sha256=sha(1),
                event={},
                at=clock.now(),
            )
            assert index == 0
            raise CallerFailedError  # the caller's own work failed after the append

    with pytest.raises(CallerFailedError):
        await transition_that_fails_after_appending()
    assert (await ledger.head()).size == 0
    assert await all_leaves(database) == []

    async with database.transaction() as conn:
        first = await append(
            conn,
            kind="hearing.closed",
            subject_id="h-1",
            content_sha256=sha(1),
            event={},
            at=clock.now(),
        )
        second = await append(
            conn,
            kind="hearing.closed",
            subject_id="h-2",
            content_sha256=sha(2),
            event={},
            at=clock.now(),
        )
    assert (first, second) == (0, 1)
    assert (await ledger.verify_log()).ok


async def test_a_crash_between_entry_and_head_leaves_the_log_consistent(
    database: Database, ledger: Ledger, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(database, clock, 3)

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("process died mid-append")

    monkeypatch.setattr(repository, "write_head", crash)
    with pytest.raises(ConnectionError):
        await append_many(database, entries=[new_entry(9, clock)])
    monkeypatch.undo()

    assert len(await all_leaves(database)) == 3  # the entry row went with the failed transaction
    assert await append_many(database, entries=[new_entry(10, clock)]) == [3]
    assert (await ledger.verify_log()).ok


async def test_concurrent_writers_never_share_an_index(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    per_writer = 25

    async def writer(offset: int) -> list[int]:
        got = []
        for n in range(per_writer):
            async with database.transaction() as conn:
                got.append(
                    await append(
                        conn,
                        kind="receipt",
                        subject_id=f"w{offset}",
                        content_sha256=sha(offset * 1000 + n),
                        event={"n": n},
                        at=clock.now(),
                    )
                )
                await asyncio.sleep(0)  # let the other writer run while we hold the lock
        return got

    results = await asyncio.gather(writer(1), writer(2), writer(3))
    everything = sorted(i for got in results for i in got)
    assert everything == list(range(3 * per_writer))
    report = await ledger.verify_log()
    assert report.ok, report.issues
    assert report.size == 3 * per_writer


async def test_a_second_writer_waits_for_the_first_to_commit(
    database: Database, clock: FrozenClock
) -> None:
    first_appended = asyncio.Event()
    release_first = asyncio.Event()

    async def slow_writer() -> int:
        async with database.transaction() as conn:
            index = await append(
                conn, kind="a", subject_id="slow", content_sha256=sha(1), event={}, at=clock.now()
            )
            first_appended.set()
            await release_first.wait()
            return index

    async def fast_writer() -> int:
        await first_appended.wait()
        return await append(
            database, kind="b", subject_id="fast", content_sha256=sha(2), event={}, at=clock.now()
        )

    slow = asyncio.create_task(slow_writer())
    fast = asyncio.create_task(fast_writer())
    await first_appended.wait()
    await asyncio.sleep(0.3)
    assert not fast.done()  # blocked on the log's lock, not racing for index 0
    release_first.set()
    assert (await slow, await fast) == (0, 1)


async def test_signed_heads_inclusion_and_consistency_proofs(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    heads = []
    for size in (1, 5, 8, 13, 32):
        await fill(database, clock, size - (heads[-1].tree_size if heads else 0))
        clock.advance(60)
        heads.append(await ledger.sign_tree_head())
    assert [h.tree_size for h in heads] == [1, 5, 8, 13, 32]
    assert all(verify_tree_head(h, ledger.signer.public_key) for h in heads)

    for head in heads:
        assert await ledger.root_at(tree_size=head.tree_size) == head.root_hash
        for index in range(head.tree_size):
            proof = await ledger.inclusion_proof(index=index, tree_size=head.tree_size)
            entry = await ledger.get_entry(index=index)
            assert proof.leaf_hash == entry.leaf_hash
            assert proof.verify(head.root_hash)
            assert not proof.verify(
                heads[-1].root_hash if head is not heads[-1] else heads[0].root_hash
            )
    for older in heads:
        for newer in heads:
            if older.tree_size <= newer.tree_size:
                proof = await ledger.consistency_proof(
                    first=older.tree_size, second=newer.tree_size
                )
                assert proof.verify(older.root_hash, newer.root_hash)


async def test_signing_again_without_growth_returns_the_same_head(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    empty = await ledger.sign_tree_head()
    assert (empty.tree_size, empty.root_hash) == (0, merkle.EMPTY_ROOT)
    await fill(database, clock, 3)
    first = await ledger.sign_tree_head()
    clock.advance(10)
    assert await ledger.sign_tree_head() == first
    await fill(database, clock, 1, start=3)
    later = await ledger.sign_tree_head()
    assert later.tree_size == 4
    assert later.timestamp_ms == first.timestamp_ms + 10_000
    assert await ledger.tree_head(tree_size=3) == first


async def test_proof_requests_outside_the_log_are_refused(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await fill(database, clock, 4)
    with pytest.raises(InvalidTreeSizeError):
        await ledger.inclusion_proof(index=0, tree_size=5)
    with pytest.raises(InvalidTreeSizeError):
        await ledger.inclusion_proof(index=4, tree_size=4)
    with pytest.raises(InvalidTreeSizeError):
        await ledger.consistency_proof(first=3, second=2)
    with pytest.raises(InvalidEntryError):
        await append(
            database, kind="x", subject_id="s", content_sha256="nope", event={}, at=clock.now()
        )


async def test_lookup_by_content_hash(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await fill(database, clock, 6)
    await append(
        database,
        kind="again",
        subject_id="s",
        content_sha256=sha(2).upper(),
        event={},
        at=clock.now(),
    )
    found = await ledger.find_entries(content_sha256=sha(2))
    assert [e.index for e in found] == [2, 6]
    assert await ledger.find_entries(content_sha256=sha(99)) == []


# --- tampering with the stored rows -------------------------------------------------------------


async def tampered(database: Database, statement: str, **params: Any) -> None:
    async with database.transaction() as conn:
        await conn.execute(text(statement), params)


async def signed_log(database: Database, ledger: Ledger, clock: FrozenClock, n: int = 12) -> None:
    await fill(database, clock, n)
    await ledger.sign_tree_head()
    report = await ledger.verify_log()
    assert report.ok, report.issues
    assert report.tree_heads_checked == 1


def kinds(issues: Sequence[Any]) -> set[IssueKind]:
    return {issue.kind for issue in issues}


async def test_verify_detects_a_changed_entry(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await signed_log(database, ledger, clock)
    leaf = (await ledger.get_entry(index=4)).leaf
    forged = leaf.replace("审判长 王芳".encode(), "审判长 李四".encode())
    await tampered(
        database, "UPDATE ledger_entries SET leaf = :leaf WHERE leaf_index = 4", leaf=forged
    )
    report = await ledger.verify_log()
    assert {IssueKind.ALTERED_ENTRY, IssueKind.TREE_HEAD_MISMATCH} <= kinds(report.issues)
    assert any(i.kind is IssueKind.ALTERED_ENTRY and i.index == 4 for i in report.issues)


async def test_verify_detects_a_consistent_rewrite_of_an_entry(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    """A forger who also fixes the leaf hash and the columns still cannot match the signed root."""
    await signed_log(database, ledger, clock)
    forged = new_entry(5, clock)
    forged_leaf = NewEntry(
        kind=forged.kind,
        subject_id=forged.subject_id,
        content_sha256=sha(500),
        event=forged.event,
        at=forged.at,
    ).leaf(5)
    await tampered(
        database,
        "UPDATE ledger_entries SET leaf = :leaf, leaf_hash = :hash, content_sha256 = :sha "
        "WHERE leaf_index = 5",
        leaf=forged_leaf,
        hash=merkle.leaf_hash(forged_leaf),
        sha=sha(500),
    )
    report = await ledger.verify_log()
    assert IssueKind.TREE_HEAD_MISMATCH in kinds(report.issues)
    assert IssueKind.ALTERED_ENTRY not in kinds(report.issues)  # the row itself is coherent


async def test_verify_detects_a_changed_column(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await signed_log(database, ledger, clock)
    await tampered(
        database,
        "UPDATE ledger_entries SET content_sha256 = :sha WHERE leaf_index = 7",
        sha=sha(777),
    )
    report = await ledger.verify_log()
    assert [(i.kind, i.index) for i in report.issues] == [(IssueKind.ALTERED_ENTRY, 7)]


async def test_verify_detects_a_removed_entry(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await signed_log(database, ledger, clock)
    await tampered(database, "DELETE FROM ledger_entries WHERE leaf_index = 3")
    report = await ledger.verify_log()
    assert [(i.kind, i.index) for i in report.issues] == [
        (IssueKind.MISSING_ENTRY, 3),  # the gap
        (IssueKind.MISSING_ENTRY, 11),  # the signed head covers 12 entries, 11 remain
        (IssueKind.HEAD_MISMATCH, None),
    ]


async def test_verify_detects_removed_newest_entries(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await signed_log(database, ledger, clock)
    await tampered(database, "DELETE FROM ledger_entries WHERE leaf_index >= 10")
    report = await ledger.verify_log()
    assert IssueKind.MISSING_ENTRY in kinds(report.issues)
    assert IssueKind.HEAD_MISMATCH in kinds(report.issues)


async def test_verify_detects_reordered_entries(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await signed_log(database, ledger, clock)
    async with database.read() as conn:
        two = await repository.get_entry(conn, 2)
        six = await repository.get_entry(conn, 6)
    assert two is not None
    assert six is not None
    swap = (
        "UPDATE ledger_entries SET leaf = :leaf, leaf_hash = :hash, content_sha256 = :sha, "
        "subject_id = :subject, at = :at WHERE leaf_index = :index"
    )
    async with database.transaction() as conn:
        for target, source in ((2, six), (6, two)):
            await conn.execute(
                text(swap),
                {
                    "leaf": source.leaf,
                    "hash": source.leaf_hash,
                    "sha": source.content_sha256,
                    "subject": source.subject_id,
                    "at": source.at,
                    "index": target,
                },
            )
    report = await ledger.verify_log()
    misplaced = {i.index for i in report.issues if i.kind is IssueKind.MISPLACED_ENTRY}
    assert misplaced == {2, 6}
    assert IssueKind.TREE_HEAD_MISMATCH in kinds(report.issues)


async def test_verify_detects_a_tampered_subtree_cache(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await signed_log(database, ledger, clock)
    await tampered(
        database, "UPDATE ledger_entries SET subtree_hashes = :h WHERE leaf_index = 7", h=bytes(96)
    )
    report = await ledger.verify_log()
    assert [(i.kind, i.index) for i in report.issues] == [(IssueKind.ALTERED_SUBTREE, 7)]


async def test_verify_detects_a_forged_tree_head(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await signed_log(database, ledger, clock)
    await tampered(database, "UPDATE ledger_tree_heads SET timestamp_ms = timestamp_ms + 1")
    report = await ledger.verify_log()
    assert kinds(report.issues) == {IssueKind.BAD_SIGNATURE}


# --- evidence bundles -----------------------------------------------------------------------


async def test_export_a_case_and_verify_the_bundle(
    database: Database, ledger: Ledger, clock: FrozenClock
) -> None:
    await append_many(
        database,
        entries=[new_entry(n, clock, CASE_A if n % 3 == 0 else CASE_B) for n in range(10)],
    )
    data = await ledger.export_case(case_id=CASE_A)
    report = verify_bundle(data, trusted_key=ledger.signer.public_key)
    assert report.ok, report.lines()
    assert [item.index for item in report.items] == [0, 3, 6, 9]
    assert report.tree_head is not None
    assert report.tree_head.tree_size == 10

    # One byte of one item changed: the report names exactly that item.
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    item = bytearray(files[item_path(6)])
    item[len(item) // 2] ^= 0x04
    files[item_path(6)] = bytes(item)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    report = verify_bundle(buffer.getvalue(), trusted_key=ledger.signer.public_key)
    assert [r.item for r in report.failed_items] == [item_path(6)]


async def test_build_ledger_creates_and_reuses_the_key(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, ledger_signing_key=SecretStr(""))
    first = build_ledger(settings, database, clock)
    second = build_ledger(settings, database, clock)
    assert first.signer.key_id == second.signer.key_id
    assert (tmp_path / "ledger" / "ed25519.key").exists()


# --- HTTP -------------------------------------------------------------------------------------


async def test_http_api_serves_heads_proofs_and_lookups(api: Api) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from yunting.infra.ledger.model import SignedTreeHead, unb64

    db: Database = api.app.state.db
    clock: FrozenClock = FrozenClock(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))
    await append_many(db, entries=[new_entry(n, clock, CASE_A) for n in range(9)])
    client = api.client

    key_doc = (await client.get("/api/ledger/public-key")).json()
    public = Ed25519PublicKey.from_public_bytes(unb64(key_doc["raw_base64"]))
    pem = await client.get("/api/ledger/public-key.pem")
    assert pem.status_code == 200
    assert pem.text == key_doc["pem"]
    assert pem.headers["content-type"].startswith("application/x-pem-file")

    r = await client.get("/api/ledger/sth")
    assert r.status_code == 200, r.text
    sth = SignedTreeHead.from_json(r.json())
    assert sth.tree_size == 9
    assert verify_tree_head(sth, public)
    assert (await client.get("/api/ledger/sth/9")).json() == r.json()
    assert (await client.get("/api/ledger/sth/4")).status_code == 422

    r = await client.get("/api/ledger/entries/4/inclusion-proof")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tree_size"] == 9
    assert merkle.verify_inclusion(
        index=4,
        size=9,
        leaf=unb64(body["leaf_hash"]),
        proof=[unb64(h) for h in body["audit_path"]],
        root=sth.root_hash,
    )

    await append_many(db, entries=[new_entry(n, clock) for n in range(9, 14)])
    newer = SignedTreeHead.from_json((await client.get("/api/ledger/sth")).json())
    r = await client.get("/api/ledger/consistency-proof", params={"first": 9, "second": 14})
    assert r.status_code == 200, r.text
    assert merkle.verify_consistency(
        first=9,
        second=14,
        first_root=sth.root_hash,
        second_root=newer.root_hash,
        proof=[unb64(h) for h in r.json()["consistency"]],
    )

    r = await client.get(f"/api/ledger/lookup/{sha(3).upper()}")
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["found"] is True
    (match,) = found["matches"]
    leaf = unb64(match["entry"]["leaf_input"])
    assert Entry.from_leaf(leaf).content_sha256 == sha(3)
    assert merkle.verify_inclusion(
        index=3,
        size=14,
        leaf=merkle.leaf_hash(leaf),
        proof=[unb64(h) for h in match["inclusion_proof"]["audit_path"]],
        root=unb64(found["tree_head"]["sha256_root_hash"]),
    )
    missing = (await client.get(f"/api/ledger/lookup/{sha(999)}")).json()
    assert missing["found"] is False
    assert missing["matches"] == []
    assert (await client.get("/api/ledger/lookup/not-a-hash")).status_code == 422

    r = await client.get("/api/ledger/entries/20/inclusion-proof", params={"tree_size": 30})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid"


async def test_entries_by_index_are_for_staff(api: Api) -> None:
    db: Database = api.app.state.db
    clock = FrozenClock(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))
    await append_many(db, entries=[new_entry(n, clock) for n in range(3)])
    assert (await api.client.get("/api/ledger/entries/1")).status_code == 401
    session = await api.sign_in("clerk", "clerk-password")
    r = await api.client.get("/api/ledger/entries/1", headers=bearer(session))
    assert r.status_code == 200, r.text
    assert r.json()["index"] == 1
    assert r.json()["content_sha256"] == sha(1)
    missing = await api.client.get("/api/ledger/entries/7", headers=bearer(session))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_openapi_describes_the_ledger(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    for path in (
        "/api/ledger/sth",
        "/api/ledger/entries/{index}",
        "/api/ledger/entries/{index}/inclusion-proof",
        "/api/ledger/consistency-proof",
        "/api/ledger/lookup/{content_sha256}",
        "/api/ledger/public-key",
    ):
        (operation,) = spec["paths"][path].values()
        assert operation["tags"] == ["ledger"]
        assert operation["summary"]
        assert operation.get("description") or path.endswith("public-key.pem")


@pytest.mark.parametrize(
    ("language", "found_text", "proof_text"),
    [
        ("en", "Recorded in the evidence ledger", "The inclusion proof holds"),
        ("zh-CN", "已记入证据账本", "包含证明成立"),
    ],
)
async def test_verify_page_in_both_languages(
    api: Api, language: str, found_text: str, proof_text: str
) -> None:
    db: Database = api.app.state.db
    clock = FrozenClock(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))
    await append_many(db, entries=[new_entry(n, clock) for n in range(5)])
    headers = {"Accept-Language": language}

    page = await api.client.get("/verify", headers=headers)
    assert page.status_code == 200
    assert 'name="sha256"' in page.text
    assert "/static/js/ledger-verify.js" in page.text

    page = await api.client.get("/verify", params={"sha256": sha(2)}, headers=headers)
    assert page.status_code == 200
    assert found_text in page.text
    assert proof_text in page.text
    assert 'id="ledger-data"' in page.text

    page = await api.client.get("/verify", params={"sha256": sha(77)}, headers=headers)
    assert page.status_code == 200
    assert found_text not in page.text
    assert 'id="ledger-data"' not in page.text

    page = await api.client.get("/verify", params={"sha256": "xyz"}, headers=headers)
    assert page.status_code == 422


async def test_verify_page_data_cannot_break_out_of_its_script(api: Api) -> None:
    db: Database = api.app.state.db
    await append(
        db,
        kind="note",
        subject_id="</script><script>alert(1)</script>",
        content_sha256=sha(5),
        event={"x": "</script>"},
        at=datetime(2026, 11, 24, tzinfo=UTC),
    )
    page = await api.client.get("/verify", params={"sha256": sha(5)})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text


# --- the command line -------------------------------------------------------------------------

YUNTING = str(Path(sys.executable).with_name("yunting"))


async def yunting(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        YUNTING,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_cli_export_verify_and_verify_bundle(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNTING_")}
    env.update(YUNTING_DATA_DIR=str(tmp_path / "data"), YUNTING_DATABASE_URL=database.url)

    code, out = await yunting("migrate", env=env, cwd=tmp_path)
    assert code == 0, out
    key_id = re.search(r"ledger signing key id: ([0-9a-f]{64})", out)
    assert key_id is not None, out
    await append_many(
        database, entries=[new_entry(n, clock, CASE_A if n % 2 else None) for n in range(7)]
    )

    code, out = await yunting("ledger", "export", "--case", str(CASE_A), env=env, cwd=tmp_path)
    assert code == 0, out
    bundle = tmp_path / f"evidence-{CASE_A}-7.zip"
    assert "3 item(s)" in out
    assert bundle.exists()

    code, out = await yunting("ledger", "verify", env=env, cwd=tmp_path)
    assert code == 0, out
    assert "7 entries" in out
    assert "ledger verified" in out

    code, out = await yunting(
        "ledger", "verify-bundle", str(bundle), "--key-id", key_id.group(1), env=env, cwd=tmp_path
    )
    assert code == 0, out
    assert "bundle verified: 3/3 items proven" in out
    code, out = await yunting(
        "ledger", "verify-bundle", str(bundle), "--key-id", "ab" * 32, env=env, cwd=tmp_path
    )
    assert code == 1, out

    await tampered(database, "DELETE FROM ledger_entries WHERE leaf_index = 2")
    code, out = await yunting("ledger", "verify", env=env, cwd=tmp_path)
    assert code == 1, out
    assert "missing_entry at index 2" in out


async def test_verify_pages_through_many_entries_and_heads(
    database: Database, ledger: Ledger, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yunting.infra.ledger import service

    monkeypatch.setattr(service, "VERIFY_PAGE", 3)  # many pages of entries and of heads
    for n in range(10):
        await fill(database, clock, 1, start=n)
        clock.advance(1)
        await ledger.sign_tree_head()
    report = await ledger.verify_log()
    assert report.ok, report.issues
    assert (report.size, report.tree_heads_checked) == (10, 10)

    await tampered(
        database, "UPDATE ledger_tree_heads SET timestamp_ms = timestamp_ms + 1 WHERE tree_size = 7"
    )
    report = await ledger.verify_log()
    assert [(i.kind, i.detail) for i in report.issues] == [
        (IssueKind.BAD_SIGNATURE, "signature of the tree head for 7 entries does not verify")
    ]
