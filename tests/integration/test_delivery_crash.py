"""Delivery workers as separate processes (``yunting worker``) on real Redis and PostgreSQL,
sending to a real SMTP server in this process: a worker killed with a batch in flight loses
nothing and doubles only what it had in flight; a worker told to stop finishes the sends it is
in and leaves the rest to the others.

The SMTP server answers slowly, and can hold its answer to DATA for every message from one
worker (each worker has its own envelope sender, ``YUNTING_SMTP_FROM``). Held, a message is
whole on the server's side, but the worker has not heard so: the moment where a crash leaves
the worst doubt (RFC 5321 §4.5.3.2.6), made certain instead of hoping the kill lands there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from redis.asyncio import Redis
from sqlalchemy import func, select

from tests.integration.conftest import fast_hasher
from tests.smtp_server import RecordingHandler, SmtpTestServer
from yunting.hearing.model import Actor, StaffRole
from yunting.hearing.service import HearingService
from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.ledger.evidence import LedgerEvidence
from yunting.infra.settings import Settings
from yunting.infra.storage import LocalBlobStore
from yunting.service_delivery import repository as repo
from yunting.service_delivery.build import Delivery, build_delivery
from yunting.service_delivery.documents import DocumentKind
from yunting.service_delivery.model import ConsentTier, EvidenceKind
from yunting.service_delivery.ports import Channel
from yunting.service_delivery.queue import RedisStreamQueue
from yunting.service_delivery.service import RecipientSpec
from yunting.service_delivery.tables import service_attempts, service_events
from yunting.staff.service import StaffService

YUNTING = str(Path(sys.executable).with_name("yunting"))
REDIS_URL = os.environ.get("YUNTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "crash-test-secret-0123456789abcdef-0123456789"
PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
ATTEMPTS = 200

# Short enough that recovery takes seconds: a stream entry a dead worker took is claimed by
# another after send_timeout / 2 idle (XAUTOCLAIM); an attempt it left in ``sending`` is handed
# back by a sweeper after send_timeout. Long enough that no live worker's send is mistaken for a
# dead one's, even on a busy machine: an SMTP answer takes REPLY_DELAY_S, and a send the test
# holds on purpose is released within a second or two.
CONCURRENCY = 4
BATCH = 8  # attempts a consumer claims together
SEND_TIMEOUT_S = 8.0
REQUEUE_S = 5.0
SWEEP_INTERVAL_S = 0.5
REPLY_DELAY_S = 0.05


@dataclass
class SlowCountingHandler(RecordingHandler):
    """Answers DATA after ``reply_delay``, counts every Message-ID it received, and holds the
    answer for ``held_sender``'s messages once that sender has had ``hold_after`` accepted.
    Runs in the server's thread; the test reads it through ``snapshot``."""

    reply_delay: float = REPLY_DELAY_S
    held_sender: str = ""
    hold_after: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    received: Counter[str] = field(default_factory=Counter)  # Message-ID -> copies received
    accepted: Counter[str] = field(default_factory=Counter)  # sender -> DATA answered 250
    held: list[str] = field(default_factory=list)  # Message-IDs whose answer was held

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        message_id = str(BytesHeaderParser(policy=default_policy).parsebytes(content)["Message-ID"])
        sender = envelope.mail_from or ""
        with self.lock:
            # From here the server has the whole message, whatever becomes of the answer.
            self.received[message_id] += 1
            hold = bool(self.held_sender) and sender == self.held_sender
            hold = hold and self.accepted[sender] >= self.hold_after
            if hold:
                self.held.append(message_id)
        # A thread-safe flag: the test sets it from its own thread and loop.
        while hold and not self.released.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # cancelled when the client's connection drops
        await asyncio.sleep(self.reply_delay)
        with self.lock:
            self.accepted[sender] += 1
        return "250 2.0.0 Ok: queued"

    def snapshot(self) -> tuple[Counter[str], Counter[str], list[str]]:
        with self.lock:
            return Counter(self.received), Counter(self.accepted), list(self.held)


@dataclass
class Worker:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Deployment:
    """What the workers share, and the web app's side of it (order, queue) in this process."""

    database: Database
    smtp: SmtpTestServer
    handler: SlowCountingHandler
    redis: Redis
    prefix: str
    tmp_path: Path
    delivery: Delivery
    clerk: Actor
    case_id: UUID
    workers: dict[str, Worker] = field(default_factory=dict)

    def sender(self, name: str) -> str:
        return f"{name}@court.example.cn"

    def env(self, name: str, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("YUNTING_")}
        return {
            **base,
            **settings_env(self.database.url, self.tmp_path / name, self.prefix),
            "YUNTING_NODE_ID": name,
            "YUNTING_SMTP_HOST": self.smtp.host,
            "YUNTING_SMTP_PORT": str(self.smtp.port),
            "YUNTING_SMTP_FROM": self.sender(name),
            **extra,
        }

    async def start_worker(self, name: str, **extra: str) -> Worker:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                YUNTING,
                "worker",
                env=self.env(name, **extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        worker = Worker(name, proc, log)
        self.workers[name] = worker
        await eventually(
            lambda: _running(worker), within=30, what=f"{name} to start", logs=self.logs
        )
        return worker

    async def order(self, count: int) -> list[UUID]:
        """One order serving a judgment on ``count`` parties by email, queued as the web app
        queues it: committed first, then put on the stream."""
        source = self.tmp_path / "judgment.pdf"
        source.write_bytes(PDF)
        service = self.delivery.service
        document = await service.upload_document(
            actor=self.clerk,
            case_id=self.case_id,
            kind=DocumentKind.JUDGMENT,
            title="民事判决书",
            filename="judgment.pdf",
            source=source,
        )
        _, attempts = await service.create_order(
            actor=self.clerk,
            case_id=self.case_id,
            document_id=document.id,
            legal_basis="民事诉讼法第九十条",
            deadline_kind="appeal_judgment",
            recipients=[
                RecipientSpec(
                    name=f"当事人{i}",
                    role="defendant",
                    channels=(Channel.EMAIL,),
                    consent_tier=ConsentTier.TIER1,
                    consent_source="答辩状中确认的送达地址",
                    email=f"party{i:03d}@example.com",
                )
                for i in range(count)
            ],
        )
        await self.delivery.queue.put(attempts)
        return attempts

    async def attempts(self) -> list[repo.AttemptRow]:
        async with self.database.read() as conn:
            rows = await conn.execute(select(service_attempts))
            return [repo.AttemptRow(**r._mapping) for r in rows]

    async def statuses(self) -> Counter[str]:
        async with self.database.read() as conn:
            return Counter(await repo.status_counts(conn))

    async def pending(self) -> dict[str, int]:
        """Stream entries taken and not acknowledged, per consumer (XPENDING)."""
        queue = self.delivery.queue
        assert isinstance(queue, RedisStreamQueue)
        summary: dict[str, Any] = await self.redis.xpending(queue.stream, queue.GROUP)
        return {
            (c["name"].decode() if isinstance(c["name"], bytes) else c["name"]): int(c["pending"])
            for c in summary.get("consumers") or []
        }

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.text()[-6000:]}" for w in self.workers.values())


def settings_env(database_url: str, data_dir: Path, prefix: str) -> dict[str, str]:
    return {
        "YUNTING_DATABASE_URL": database_url,
        "YUNTING_DATA_DIR": str(data_dir),
        "YUNTING_SECRET_KEY": SECRET,
        "YUNTING_PUBLIC_BASE_URL": "http://court.test",
        "YUNTING_REDIS_URL": REDIS_URL,
        "YUNTING_REDIS_PREFIX": prefix,
        "YUNTING_SMTP_TLS": "none",
        # Fewer connections than claimed attempts: a batch waits for them, as in production.
        "YUNTING_SMTP_POOL": str(CONCURRENCY),
        "YUNTING_DELIVERY_BATCH": str(BATCH),
        "YUNTING_SMTP_TIMEOUT_S": "30",
        "YUNTING_DELIVERY_CONCURRENCY": str(CONCURRENCY),
        "YUNTING_DELIVERY_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
        "YUNTING_DELIVERY_REQUEUE_S": str(REQUEUE_S),
        "YUNTING_DELIVERY_SWEEP_INTERVAL_S": str(SWEEP_INTERVAL_S),
        "YUNTING_LOG_LEVEL": "INFO",
    }


def _running(worker: Worker) -> bool:
    if worker.proc.returncode is not None:
        raise AssertionError(f"{worker.name} exited ({worker.proc.returncode}):\n{worker.text()}")
    return "delivery worker " in worker.text() and " running: " in worker.text()


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    within: float,
    what: str,
    logs: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``check`` until it holds; a bounded wait, never a timing assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"waited in vain for {what}\n{logs()}")
        await asyncio.sleep(0.1)


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpTestServer, SlowCountingHandler]]:
    handler = SlowCountingHandler(keep=False)
    server = SmtpTestServer(handler=handler)
    server.start()
    try:
        yield server, handler
    finally:
        handler.released.set()
        server.stop()


@pytest.fixture
async def deployment(
    database: Database, tmp_path: Path, smtp: tuple[SmtpTestServer, SlowCountingHandler]
) -> AsyncIterator[Deployment]:
    clock = SystemClock()  # the workers run on real time; so must the orders
    hearings = HearingService(
        db=database,
        clock=clock,
        secret_key=SECRET,
        public_base_url="http://court.test",
        join_token_ttl=timedelta(days=1),
        court_timezone=ZoneInfo("Asia/Shanghai"),
        evidence=LedgerEvidence(),
    )
    staff = StaffService(
        db=database, clock=clock, session_ttl=timedelta(hours=1), hasher=fast_hasher()
    )
    court = await hearings.ensure_court(name="杭州互联网法院", code="ZJ0192")
    clerk = await staff.create_user(
        court_id=court.id,
        username="clerk",
        display_name="李静",
        role=StaffRole.CLERK,
        password="clerk-password",
    )
    case = await hearings.create_case(
        actor=clerk.actor(), number="(2026)浙0192民初1234号", title="张伟诉某公司", cause="合同纠纷"
    )
    prefix = f"yunting-test-{uuid.uuid4().hex[:8]}:"
    server, handler = smtp
    redis = Redis.from_url(REDIS_URL)
    # The web app's side: the same builder, no worker in this process.
    values: dict[str, Any] = {
        k.removeprefix("YUNTING_").lower(): v
        for k, v in settings_env(database.url, tmp_path / "web", prefix).items()
    }
    settings = Settings(**values, smtp_host=server.host, smtp_port=server.port)
    delivery = build_delivery(
        settings,
        db=database,
        clock=clock,
        store=LocalBlobStore(tmp_path / "web" / "blobs"),
        redis=redis,
        with_worker=False,
    )
    found = Deployment(
        database=database,
        smtp=server,
        handler=handler,
        redis=redis,
        prefix=prefix,
        tmp_path=tmp_path,
        delivery=delivery,
        clerk=clerk.actor(),
        case_id=case.id,
    )
    try:
        yield found
    finally:
        handler.released.set()
        for worker in found.workers.values():
            if worker.proc.returncode is None:
                worker.proc.kill()
                await worker.proc.wait()
        try:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
@pytest.mark.postgres
@pytest.mark.redis
async def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_only_its_sends_in_flight(
    deployment: Deployment,
) -> None:
    handler = deployment.handler
    # Worker A's messages are answered until it has had 5 accepted; then its answers are held,
    # so each of its consumers ends up inside a DATA the server has and A has no answer to.
    handler.held_sender = deployment.sender("worker-a")
    handler.hold_after = 5
    a = await deployment.start_worker("worker-a")
    b = await deployment.start_worker("worker-b")
    for worker in (a, b):
        # The start-up line says where each channel goes and which stream it shares.
        line = next(ln for ln in worker.text().splitlines() if " running: " in ln)
        assert f"delivery worker {worker.name} running: " in line
        assert f"email via SMTP {deployment.smtp.host}:{deployment.smtp.port} (tls=none)" in line
        assert "sms via the local outbox" in line
        assert f"queue Redis stream {deployment.prefix}delivery:attempts" in line
    attempts = await deployment.order(ATTEMPTS)

    def a_stuck() -> bool:
        return len(handler.snapshot()[2]) == CONCURRENCY

    await eventually(
        a_stuck,
        within=30,
        what="every consumer of worker A inside a held DATA",
        logs=deployment.logs,
    )
    _, accepted, held = handler.snapshot()
    assert accepted[deployment.sender("worker-a")] >= 5
    pending_at_kill = await deployment.pending()
    # A batch was in flight: what A held, and the rest of its batches, taken but not acknowledged.
    assert pending_at_kill.get("worker-a", 0) >= len(held)
    a.proc.send_signal(signal.SIGKILL)
    assert await a.proc.wait() == -signal.SIGKILL

    async def all_sent() -> bool:
        statuses = await deployment.statuses()
        return (
            statuses == Counter({"sent": ATTEMPTS})
            and sum((await deployment.pending()).values()) == 0
        )

    await eventually(all_sent, within=45, what="every attempt sent", logs=deployment.logs)
    assert b.proc.returncode is None  # the survivor did it all

    rows = await deployment.attempts()
    by_message = {r.message_id: r for r in rows}
    # None lost, none added: the 200 attempts of the order, each sent, each still try 1.
    assert sorted(r.id for r in rows) == sorted(attempts)
    assert {(r.status, r.try_no, r.provider_id == r.message_id) for r in rows} == {
        ("sent", 1, True)
    }
    received, _, _ = handler.snapshot()
    assert set(received) == set(by_message)  # the server got every message at least once

    # Duplicates. A consumer claims its batch (created -> sending) in one statement, so a worker
    # has at most YUNTING_DELIVERY_CONCURRENCY x YUNTING_DELIVERY_BATCH attempts claimed and not
    # yet recorded: only those go back to ``created`` (the sweeper hands them back after the send
    # timeout; ``sends`` counts the claims) and only those can reach the server twice: the DATA
    # it held, and any answered whose outcome was still waiting for its (group) commit when the
    # worker died. Entries taken but not claimed meet the compare-and-set unclaimed (sent once);
    # entries whose outcome was recorded meet it as sent (not sent again).
    doubled_mail = {m for m, n in received.items() if n > 1}
    resent = {r.message_id for r in rows if r.sends > 1}
    assert set(held) <= doubled_mail <= resent
    assert len(resent) <= CONCURRENCY * BATCH
    assert max(received.values()) == 2
    assert max(r.sends for r in rows) == 2

    # One acceptance on record per attempt: A never heard the answers to what it had in flight.
    async with deployment.database.read() as conn:
        handed = (
            await conn.execute(
                select(service_events.c.attempt_id, func.count())
                .where(service_events.c.kind == EvidenceKind.HANDED_TO_PROVIDER.value)
                .group_by(service_events.c.attempt_id)
            )
        ).all()
    assert sorted(r[0] for r in handed) == sorted(attempts)
    assert {r[1] for r in handed} == {1}
    # A's stream entries went to B (XAUTOCLAIM) and were acknowledged there.
    assert "worker-a" not in {c for c, n in (await deployment.pending()).items() if n}
    assert "pending delivery entries" in b.text()  # queue.py logs each XAUTOCLAIM that got some

    b.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(b.proc.wait(), timeout=30) == 0, b.text()


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
@pytest.mark.postgres
@pytest.mark.redis
async def test_a_stopped_worker_finishes_its_send_and_leaves_the_rest_to_another(
    deployment: Deployment,
) -> None:
    handler = deployment.handler
    handler.held_sender = deployment.sender("worker-t")
    first, second, third = await deployment.order(3)  # queued before any worker runs
    # One consumer with batches of two: it claims the first two together and sends both (the
    # SMTP pool has room), and the server holds both; the third waits on the stream.
    t = await deployment.start_worker(
        "worker-t", YUNTING_DELIVERY_CONCURRENCY="1", YUNTING_DELIVERY_BATCH="2"
    )
    await eventually(lambda: len(handler.snapshot()[2]) == 2, within=30, what="two held DATA")
    assert (await deployment.pending()) == {"worker-t": 2}

    t.proc.send_signal(signal.SIGTERM)
    await eventually(
        lambda: "waiting up to" in t.text(), within=15, what="the drain", logs=deployment.logs
    )
    handler.released.set()
    assert await asyncio.wait_for(t.proc.wait(), timeout=30) == 0, t.text()

    rows = {r.id: r for r in await deployment.attempts()}
    # The sends in flight finished and were recorded: no resend waits for the sweeper.
    assert [(rows[i].status, rows[i].sends) for i in (first, second)] == [("sent", 1)] * 2
    # The one it had not taken is untouched, and acknowledged by nobody.
    assert (rows[third].status, rows[third].sends) == ("created", 0)
    assert sum((await deployment.pending()).values()) == 0

    # Another worker takes the third from the stream and sends it: each sent once.
    handler.held_sender = ""
    u = await deployment.start_worker("worker-u", YUNTING_DELIVERY_CONCURRENCY="1")

    async def done() -> bool:
        return await deployment.statuses() == Counter({"sent": 3})

    await eventually(done, within=30, what="the rest sent", logs=deployment.logs)
    rows = {r.id: r for r in await deployment.attempts()}
    assert {rows[i].sends for i in rows} == {1}
    received, _, _ = handler.snapshot()
    assert sorted(received.values()) == [1, 1, 1]
    assert set(received) == {r.message_id for r in rows.values()}
    u.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(u.proc.wait(), timeout=30) == 0, u.text()


def test_the_worker_refuses_to_run_without_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNTING_")}
    env["YUNTING_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [YUNTING, "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "YUNTING_REDIS_URL" in result.stderr
    assert "yunting serve" in result.stderr  # and what to do instead
    assert not (tmp_path / "yunting.sqlite3").exists()  # refused before touching anything
