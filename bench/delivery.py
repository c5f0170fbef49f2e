"""Electronic-service benchmark: the whole delivery pipeline, email to a local SMTP server and
SMS to a local SMPP peer with delivery receipts, against a bare aiosmtplib loop to the same server.

Prints one JSON line (everything else goes to stderr). Never asserts times.

    python bench/delivery.py [--quick] [--recipients N] [--both-channels] [--email-recipients E]
                             [--storm-receipts S] [--order-size K] [--rounds R]
                             [--concurrency C] [--batch B] [--smtp-pool P] [--smpp-window W]
                             [--database-url URL] [--profile]

Everything runs in this process, on loopback. The SMTP server is ``tests/smtp_server.py``
(aiosmtpd in its own thread; DSN not advertised), the SMSC ``tests/smpp_peer.py`` (on the bench's
event loop; DELIVRD with a deliver_sm receipt right after each submit_sm_resp). The pipeline is
wired as ``yunting serve`` wires it (``service_delivery/build.py``): ``Settings`` with both hosts
set give ``build_providers`` (a real ``SmtpProvider`` with its pool of persistent connections, a
real ``SmppProvider`` bound as a transceiver), ``policy_of`` and ``lookup_case``; then a
``ServiceDeliveryService`` on a migrated database (a SQLite file in a temporary directory, as
embedded; ``--database-url``: an empty, dedicated database, e.g. PostgreSQL), a ``LocalQueue``
and a ``DeliveryWorker`` (``C`` consumers, default the settings' 8, each sending batches of up
to ``B`` attempts, default the settings' 64, and its sweeper) that starts the providers with
the service's receipt sink. The database holds a real court, clerk and case;
one PDF judgment is uploaded, and a clerk's orders of ``K`` recipients (100) serve it on tier-1
recipients. The service is subclassed only to note when each send's outcome was committed and
when each receipt arrived and was stored. ``--profile`` prints the profile; with
``BENCH_PROFILE_DUMP=<file>`` it is also saved for pstats. uvloop when installed (``yunting
serve`` runs on it), and the collector tuned as the commands tune it (``infra/runtime.py``).

Phases (a warm-up order of 20 recipients, email and SMS, comes first: checked, not counted):

1. Email, ours vs aiosmtplib: ``R`` rounds (4; quick 2) of ``E/R`` recipients (``E`` 2,000;
   quick 500), email only. Ours: the orders are placed one after another (``create_order``,
   then its attempts queued) while the worker drains the queue; timed from before the first
   order to the last outcome committed. The SMTP server keeps what it receives meanwhile, and
   right after, the baseline sends exactly those mails again (the same MIME bytes, envelope and
   MAIL/RCPT parameters) with ``aiosmtplib.SMTP.sendmail`` on ``P`` persistent connections (the
   provider's pool size; connected before the clock starts), MAIL, RCPT and DATA one by one as
   the provider issues them. ``email_sends_per_s`` and ``baseline_mails_per_s`` are totals over
   the rounds, ``ratio_vs_aiosmtplib`` their ratio (target >= 0.5). The provider composes each
   mail and QUITs and reconnects every 100 messages; the baseline does neither. Only this
   phase is profiled (``--profile``) and broken down (CPU by thread, SQL statements per mail).
2. The burst: ``N`` recipients (10,000; quick 1,000), alternately email and SMS (one attempt
   each; ``--both-channels``: both, ``2N`` attempts), placed as in 1 with both providers busy
   and receipts flowing in. ``sends_per_s``: attempts whose outcome was committed (email: sent,
   SMS: sent or already delivered) per second, from before the first order to the last outcome;
   ``combined_email_sends_per_s``/``sms_sends_per_s`` split it by channel (each from the first
   order to its channel's last outcome). ``receipts_in_flow_per_s``: the receipts stored per
   second meanwhile (they come as fast as SMS go out, so it follows ``sms_sends_per_s``).
   ``p50_ms``/``p99_ms``: from the moment ``create_order`` returned and the attempts were queued
   to the moment ``send_attempt`` returned with the outcome committed ("sent" as a clerk sees
   it), over every attempt of the burst, so mostly time queued behind earlier orders (10,000
   recipients at once); ``sms_delivered_*``: to the receipt applied (``final_at``, the row's).
   ``queue_repeats``: attempts the worker took from the queue again after they had been sent
   (the sweeper re-queues attempts queued longer than ``delivery_requeue_s``, 60 s; the claim
   refuses them); what the queue still holds after the burst is worked off (``queue_drain_s``).
3. Lone orders: 3 orders of ``K`` recipients, one at a time on the idle pipeline:
   ``lone_order_p50_ms``/``p99_ms``, the same latency without a backlog.
4. A receipt storm: ``S`` SMS recipients (1,000; quick 200) whose numbers the SMSC sends no
   receipt for; once they are all sent, the bench sends their DELIVRD receipts through the SMSC
   as fast as the pipeline answers them (``deliver_sm``, at most as many unanswered as the
   provider stores at once, 32). ``receipts_per_s``: receipts stored and applied per second, from
   the first deliver_sm to the last receipt applied (the provider answers each after storing it);
   ``receipt_ingest_p50_ms``/``p99``: sink call to return; ``receipts_late``: answered after the
   test SMSC's 5 s (a real SMSC would send them again: duplicates, kept as evidence only).

Correctness, checked in the run (a failure: the JSON carries ``error``, exit status 1): every
attempt ended ``sent`` (email) or ``delivered`` (SMS), ``sends`` = 1 (``duplicates``: more),
no other attempt appeared (a retry); the SMTP server received exactly one mail per email attempt
plus the baseline's, and in phase 1 exactly to the addresses ordered; the SMSC took exactly one
submit_sm per SMS attempt, to the numbers ordered, and every receipt it sent was acknowledged
with ESME_ROK; one receipt stored per SMS, every one applied; nothing logged at ERROR. A run
that stops making progress fails with what the product logged (``ERROR_STALL_S`` after an
error, ``STALL_S`` otherwise). Everything the bench made is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import io
import json
import logging
import os
import pstats
import resource
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo

import aiosmtplib
from argon2 import PasswordHasher
from pydantic import SecretStr
from sqlalchemy import event, func, select

from yunting.hearing.model import Actor, StaffRole
from yunting.hearing.service import HearingService
from yunting.hearing.tokens import derive_key
from yunting.infra.clock import SystemClock
from yunting.infra.db import Database
from yunting.infra.migrate import upgrade_async
from yunting.infra.runtime import tune_gc
from yunting.infra.settings import Settings
from yunting.infra.storage import LocalBlobStore
from yunting.service_delivery.build import build_providers, lookup_case, policy_of
from yunting.service_delivery.documents import DocumentKind
from yunting.service_delivery.model import AttemptStatus, ConsentTier
from yunting.service_delivery.ports import Channel, Receipt
from yunting.service_delivery.providers.smpp_pdu import (
    ESM_CLASS_DELIVERY_RECEIPT,
    CommandStatus,
    DataCoding,
    DeliverSm,
    MessageState,
    Tlv,
    TlvTag,
    receipt_text,
)
from yunting.service_delivery.queue import LocalQueue
from yunting.service_delivery.service import RecipientSpec, ServiceDeliveryService
from yunting.service_delivery.tables import delivery_receipts, service_attempts, service_orders
from yunting.service_delivery.worker import DeliveryWorker
from yunting.staff.service import StaffService

# The test peers live in tests/ (shared with the integration tests): import from the repo root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.smpp_peer import Behaviour, SmppPeer, SubmitRecord
from tests.smtp_server import RecordingHandler, SmtpTestServer

TARGET_RATIO = 0.5
HOST = "127.0.0.1"
SMSC_SYSTEM_ID = "court"
SMSC_PASSWORD = "bench42"  # noqa: S105 - a loopback test SMSC's (SMPP: 8 characters at most)
COURT_TZ = "Asia/Shanghai"
WARMUP_RECIPIENTS = 20
LONE_ORDERS = 3
# deliver_sm unanswered at most in the storm: as many as the provider stores at once (more
# would only queue in front of it, and the test SMSC gives up on an answer after 5 s).
STORM_WINDOW = 32  # SmppConfig.receipt_concurrency's default
STALL_S = 60.0  # no outcome for this long: the pipeline is stuck, give up
ERROR_STALL_S = 5.0  # the same once the product has logged an error
# A valid (tiny) PDF: a judgment must be a PDF by its content.
PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
DEFAULTS = Settings.model_fields

# Which channels recipient number n is served on.
Plan = Callable[[int], tuple[Channel, ...]]


def email_only(n: int) -> tuple[Channel, ...]:
    return (Channel.EMAIL,)


def sms_only(n: int) -> tuple[Channel, ...]:
    return (Channel.SMS,)


def alternating(n: int) -> tuple[Channel, ...]:
    return (Channel.EMAIL,) if n % 2 == 0 else (Channel.SMS,)


def both(n: int) -> tuple[Channel, ...]:
    return (Channel.EMAIL, Channel.SMS)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: ``yunting serve`` (uvicorn, loop "auto") runs on it too."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The run cannot go on (a stall, a peer that refused): reported as the JSON's error."""


class ErrorLog(logging.Handler):
    """Counts what the product logs at ERROR (a failed send, a receipt it could not store, a
    failed sweep) and keeps the first of each kind, with its exception, for the JSON."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: dict[tuple[str, str], str] = {}  # (logger, exception type) -> message

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        error = record.exc_info[1] if record.exc_info else None
        key = (record.name, type(error).__name__ if error is not None else "")
        if len(self.first) < 3 and key not in self.first:
            text = f"{record.name}: {record.getMessage()}"
            self.first[key] = text if error is None else f"{text} ({key[1]}: {error})"

    def summary(self) -> str:
        if not self.count:
            return ""
        return f"; the product logged {self.count} errors, first: " + " | ".join(
            self.first.values()
        )


# The pipeline, timed ------------------------------------------------------------------------------


class TimedService(ServiceDeliveryService):
    """The real service; it only notes when each send's outcome was committed and when each
    receipt arrived and was stored, for the ``Block`` being waited on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.finished: dict[UUID, float] = {}  # attempt id -> perf_counter, outcome committed
        self.receipt_times: list[tuple[float, float]] = []  # (arrived, stored)
        self.not_claimed = 0  # taken from the queue again after its send (the sweeper's)
        self.block: Block | None = None

    async def send_attempts(self, attempt_ids: Sequence[UUID]) -> dict[UUID, AttemptStatus]:
        statuses = await super().send_attempts(attempt_ids)
        # Not this worker's to send: claimed already (or not due).
        self.not_claimed += len(attempt_ids) - len(statuses)
        now = time.perf_counter()
        for attempt_id in statuses:
            self.finished[attempt_id] = now
            if self.block is not None:
                self.block.finished(attempt_id)
        return statuses

    async def ingest_receipt(self, receipt: Receipt) -> None:
        arrived = time.perf_counter()
        await super().ingest_receipt(receipt)
        self.receipt_times.append((arrived, time.perf_counter()))


class Block:
    """One burst of orders: the attempts they queued and which still wait for an outcome."""

    def __init__(self, name: str, *, bench_sends_receipts: bool = False) -> None:
        self.name = name
        self.bench_sends_receipts = bench_sends_receipts  # the storm: not the SMSC's own
        self.queued: dict[UUID, float] = {}  # attempt id -> perf_counter when queued
        self.channel: dict[UUID, Channel] = {}
        self.orders: list[UUID] = []
        self.emails: list[str] = []
        self.phones: list[str] = []  # as the SMSC sees them: digits, no "+"
        self.placed = False
        self.started = 0.0  # perf_counter before its first order
        self.create_s = 0.0  # spent in create_order
        self.finished_count = 0
        self.changed = asyncio.Event()
        self._waiting: set[UUID] = set()

    def add(self, attempt_ids: Sequence[UUID], channels: Sequence[Channel], at: float) -> None:
        for attempt_id, channel in zip(attempt_ids, channels, strict=True):
            self.queued[attempt_id] = at
            self.channel[attempt_id] = channel
            self._waiting.add(attempt_id)

    def finished(self, attempt_id: UUID) -> None:
        if attempt_id in self._waiting:
            self._waiting.discard(attempt_id)
            self.finished_count += 1
            self.changed.set()

    def count(self, channel: Channel) -> int:
        return sum(1 for c in self.channel.values() if c is channel)

    @property
    def done(self) -> bool:
        return self.placed and not self._waiting

    @property
    def waiting(self) -> int:
        return len(self._waiting)


class SqlCounter:
    """Statements sent to the database, and how many open a write transaction (``BEGIN
    IMMEDIATE``, SQLite only: PostgreSQL transactions begin implicitly)."""

    def __init__(self, db: Database) -> None:
        self.statements = 0
        self.write_transactions = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.statements += 1
        statement = args[2]
        if isinstance(statement, str) and statement.startswith("BEGIN IMMEDIATE"):
            self.write_transactions += 1


@dataclass
class World:
    db: Database
    service: TimedService
    queue: LocalQueue
    worker: DeliveryWorker
    actor: Actor
    case_id: UUID
    document_id: UUID
    server: SmtpTestServer
    handler: RecordingHandler
    peer: SmppPeer
    pool_size: int
    errors: ErrorLog
    sql: SqlCounter
    next_recipient: int = 0
    blocks: list[Block] = field(default_factory=list)


def email_of(n: int) -> str:
    return f"party{n:06d}@example.com"


def phone_of(n: int) -> str:
    return f"+86138{n:08d}"


def recipient(n: int, channels: tuple[Channel, ...]) -> RecipientSpec:
    return RecipientSpec(
        name=f"当事人{n}",
        role="defendant",
        channels=channels,
        consent_tier=ConsentTier.TIER1,
        consent_source="当事人在答辩状中填写并确认的送达地址",
        phone=phone_of(n),
        email=email_of(n),
        id_last4="123X",
    )


async def burst(
    world: World, name: str, count: int, plan: Plan, order_size: int, **kwargs: bool
) -> tuple[Block, float]:
    """Place orders for ``count`` new recipients, ``order_size`` a time, while the worker runs,
    and wait until every attempt has its outcome. The block and its seconds."""
    block = Block(name, **kwargs)
    world.blocks.append(block)
    world.service.block = block
    first = world.next_recipient
    world.next_recipient += count
    started = block.started = time.perf_counter()
    waiter = asyncio.create_task(wait_for(block, world.errors))
    try:
        for start in range(first, first + count, order_size):
            numbers = range(start, min(start + order_size, first + count))
            specs = [recipient(n, plan(n)) for n in numbers]
            creating = time.perf_counter()
            order_id, attempt_ids = await world.service.create_order(
                actor=world.actor,
                case_id=world.case_id,
                document_id=world.document_id,
                legal_basis="《中华人民共和国民事诉讼法》第九十条",
                deadline_kind="appeal_judgment",
                recipients=specs,
            )
            # One attempt per recipient and channel, in the order given.
            queued = time.perf_counter()
            block.create_s += queued - creating
            block.add(attempt_ids, [c for s in specs for c in s.channels], queued)
            block.orders.append(order_id)
            await world.queue.put(attempt_ids)
            for spec in specs:
                if Channel.EMAIL in spec.channels:
                    block.emails.append(spec.email or "")
                if Channel.SMS in spec.channels:
                    block.phones.append((spec.phone or "").removeprefix("+"))
        block.placed = True
        block.changed.set()
        await waiter
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        world.service.block = None
    return block, time.perf_counter() - started


async def wait_for(block: Block, errors: ErrorLog) -> None:
    """Until every attempt of ``block`` has an outcome; a ``BenchError`` when none comes for
    ``STALL_S`` (``ERROR_STALL_S`` once the product logged an error: say what it logged)."""
    progress, finished = time.monotonic(), block.finished_count
    while not block.done:
        block.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(block.changed.wait(), timeout=1.0)
        now = time.monotonic()
        if block.finished_count != finished:
            progress, finished = now, block.finished_count
            continue
        quiet = now - progress
        if quiet > STALL_S or (errors.count and quiet > ERROR_STALL_S):
            raise BenchError(
                f"{block.name}: stalled, {block.waiting} of {len(block.queued)} attempts "
                f"without an outcome for {quiet:.0f} s{errors.summary()}"
            )


async def wait_for_receipts(world: World, block: Block) -> None:
    """Until every SMS attempt of ``block`` is delivered in the database (a receipt that overtook
    its send is applied when the send is recorded, or by the sweeper)."""
    sms = block.count(Channel.SMS)
    progress, delivered = time.monotonic(), -1
    while True:
        async with world.db.read() as conn:
            now_delivered = (
                await conn.execute(
                    select(func.count())
                    .select_from(service_attempts)
                    .where(
                        service_attempts.c.order_id.in_(block.orders),
                        service_attempts.c.channel == Channel.SMS.value,
                        service_attempts.c.status == AttemptStatus.DELIVERED.value,
                    )
                )
            ).scalar_one()
        if now_delivered >= sms:
            return
        now = time.monotonic()
        if now_delivered != delivered:
            progress, delivered = now, now_delivered
        quiet = now - progress
        if quiet > STALL_S or (world.errors.count and quiet > ERROR_STALL_S):
            peer = world.peer
            raise BenchError(
                f"{block.name}: receipts stalled, {sms - now_delivered} of {sms} SMS not "
                f"delivered for {quiet:.0f} s (the SMSC sent {peer.receipts_sent} receipts, "
                f"{peer.receipts_acked} acknowledged, {peer.receipts_nacked} refused)"
                f"{world.errors.summary()}"
            )
        await asyncio.sleep(0.05)


async def drain(queue: LocalQueue) -> int:
    """Until the worker has taken everything from ``queue``; how much there was."""
    left = queue.qsize()
    while True:
        if not queue.qsize():
            return left
        await asyncio.sleep(0.05)  # the queue has no "empty" event to wait on


# The baseline -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    content: bytes
    mail_options: list[str]
    rcpt_options: list[str]


def taken_mails(handler: RecordingHandler) -> list[Mail]:
    """What the server kept, as the baseline sends it again (aiosmtplib adds SIZE itself)."""
    mails = [
        Mail(
            sender=m.mail_from,
            recipients=list(m.rcpt_tos),
            content=m.content,
            # aiosmtpd's envelope lists the parameters twice (its own copy and the handler's).
            mail_options=[o for o in dict.fromkeys(m.mail_options) if not o.startswith("SIZE=")],
            rcpt_options=list(dict.fromkeys(m.rcpt_options)),
        )
        for m in handler.messages
    ]
    handler.messages.clear()
    return mails


async def bare_aiosmtplib(port: int, mails: Sequence[Mail], connections: int) -> float:
    """Send ``mails`` on ``connections`` persistent connections (opened before the clock
    starts), one transaction at a time on each; the seconds it took."""
    hostname = await asyncio.to_thread(socket.getfqdn)  # the provider's EHLO name too
    clients = [
        aiosmtplib.SMTP(hostname=HOST, port=port, local_hostname=hostname, timeout=30)
        for _ in range(connections)
    ]
    for client in clients:
        await client.connect()
        await client.ehlo()
    todo: Iterator[Mail] = iter(mails)

    async def loop(client: aiosmtplib.SMTP) -> None:
        for mail in todo:  # shared: each connection takes the next mail when it is free
            await client.sendmail(
                mail.sender,
                mail.recipients,
                mail.content,
                mail_options=mail.mail_options,
                rcpt_options=mail.rcpt_options,
            )

    started = time.perf_counter()
    await asyncio.gather(*(loop(client) for client in clients))
    seconds = time.perf_counter() - started
    for client in clients:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()
    return seconds


# The receipt storm --------------------------------------------------------------------------------


@dataclass
class Storm:
    block: Block
    seconds: float = 0.0
    late: int = 0  # deliver_sm not answered within the SMSC's 5 s
    refused: Counter[int] = field(default_factory=Counter)
    times: list[tuple[float, float]] = field(default_factory=list)  # (arrived, stored)


def delivered_receipt(record: SubmitRecord, sequence_number: int) -> DeliverSm:
    """A DELIVRD receipt for ``record``, as ``SmppPeer`` writes its own (appendix B text, with
    the receipted_message_id and message_state TLVs)."""
    now = datetime.now(ZoneInfo(COURT_TZ))  # the SMSC writes dates on the court's clock
    text = receipt_text(
        message_id=record.message_id,
        stat="DELIVRD",
        submitted_at=now,
        done_at=now,
        error="000",
        delivered=True,
        text=record.text.encode("ascii", "replace").decode("ascii"),
    )
    return DeliverSm(
        sequence_number=sequence_number,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=record.destination,
        destination_addr=record.source,
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        data_coding=DataCoding.DEFAULT,
        short_message=text.encode("ascii"),
        tlvs=(
            Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, record.message_id),
            Tlv.u8(TlvTag.MESSAGE_STATE, MessageState.DELIVERED),
        ),
    )


async def receipt_storm(world: World, count: int, order_size: int) -> Storm:
    """``count`` SMS recipients without receipts, sent; then all their receipts at once, at most
    ``STORM_WINDOW`` unanswered; timed until every one is applied."""
    first = world.next_recipient
    for n in range(first, first + count):
        world.peer.configure(phone_of(n), Behaviour.NO_RECEIPT)
    submitted = len(world.peer.submits)
    block, _ = await burst(world, "storm", count, sms_only, order_size, bench_sends_receipts=True)
    records = world.peer.submits[submitted:]
    if len(records) != count:
        raise BenchError(f"storm: the SMSC took {len(records)} submit_sm, expected {count}")
    window = asyncio.Semaphore(STORM_WINDOW)
    storm = Storm(block)
    stored = len(world.service.receipt_times)

    async def deliver(record: SubmitRecord) -> None:
        async with window:
            try:
                resp = await world.peer.request(lambda seq: delivered_receipt(record, seq))
            except TimeoutError:
                # The test SMSC waits 5 s for a deliver_sm_resp (a real one would send the
                # receipt again later); the receipt is still being stored: counted, waited for.
                storm.late += 1
                return
        if resp.command_status != CommandStatus.ESME_ROK:
            storm.refused[resp.command_status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(deliver(r) for r in records))
    if storm.refused:
        raise BenchError(
            f"storm: the pipeline refused receipts: {dict(storm.refused)}{world.errors.summary()}"
        )
    await wait_for_receipts(world, block)
    storm.seconds = time.perf_counter() - started
    storm.times = world.service.receipt_times[stored:]
    return storm


# Set-up -------------------------------------------------------------------------------------------


async def open_database(url: str | None, workdir: Path) -> Database:
    url = url or f"sqlite+aiosqlite:///{workdir / 'yunting.sqlite3'}"
    await upgrade_async(url)
    db = Database(url)
    await db.start()
    async with db.read() as conn:
        orders = (await conn.execute(select(func.count()).select_from(service_orders))).scalar_one()
    if orders:
        await db.stop()
        raise BenchError(f"{url}: service_orders is not empty; use an empty, dedicated database")
    return db


async def build_world(
    args: argparse.Namespace,
    workdir: Path,
    server: SmtpTestServer,
    peer: SmppPeer,
    errors: ErrorLog,
) -> World:
    """The database, court, clerk, case and judgment; the service, queue and worker as
    ``build.py`` makes them for ``yunting serve`` (not started)."""
    db = await open_database(args.database_url or None, workdir)
    clock = SystemClock()
    settings = Settings(
        data_dir=workdir,
        database_url=db.url,
        public_base_url="https://court.example",
        court_timezone=COURT_TZ,
        smtp_host=HOST,
        smtp_port=server.port,
        smtp_pool=args.smtp_pool,
        smpp_host=HOST,
        smpp_port=peer.port,
        smpp_system_id=SMSC_SYSTEM_ID,
        smpp_password=SecretStr(SMSC_PASSWORD),
        smpp_window=args.smpp_window,
        delivery_concurrency=args.concurrency,
        delivery_batch=args.batch,
    )
    hearings = HearingService(
        db=db,
        clock=clock,
        secret_key="bench-" + os.urandom(16).hex(),
        public_base_url=settings.public_base_url,
        join_token_ttl=timedelta(days=1),
        court_timezone=ZoneInfo(COURT_TZ),
    )
    staff = StaffService(
        db=db,
        clock=clock,
        session_ttl=timedelta(hours=1),
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    court = await hearings.ensure_court(name="杭州互联网法院", code="BENCH01")
    clerk = await staff.create_user(
        court_id=court.id,
        username="bench-clerk",
        display_name="书记员",
        role=StaffRole.CLERK,
        password=os.urandom(16).hex(),
    )
    actor = clerk.actor()
    case = await hearings.create_case(
        actor=actor, number="(2026)浙0192民初9001号", title="基准诉某公司", cause="合同纠纷"
    )
    providers = build_providers(settings, db=db, clock=clock)
    service = TimedService(
        db=db,
        clock=clock,
        store=LocalBlobStore(workdir / "blobs"),
        providers=providers,
        link_key=derive_key(os.urandom(32).hex(), "service-link"),
        public_base_url=settings.public_base_url,
        court_timezone=ZoneInfo(COURT_TZ),
        max_document_bytes=settings.max_upload_bytes,
        policy=policy_of(settings),
        lookup_case=lookup_case,
    )
    source = workdir / "judgment.pdf"
    source.write_bytes(PDF)
    document = await service.upload_document(
        actor=actor,
        case_id=case.id,
        kind=DocumentKind.JUDGMENT,
        title="民事判决书",
        filename="judgment.pdf",
        source=source,
    )
    queue = LocalQueue()
    worker = DeliveryWorker(
        service=service,
        queue=queue,
        providers=providers,
        concurrency=settings.delivery_concurrency,
        batch=settings.delivery_batch,
        sweep_interval_s=settings.delivery_sweep_interval_s,
    )
    return World(
        db=db,
        service=service,
        queue=queue,
        worker=worker,
        actor=actor,
        case_id=case.id,
        document_id=document.id,
        server=server,
        handler=server.handler,
        peer=peer,
        pool_size=settings.smtp_pool,
        errors=errors,
        sql=SqlCounter(db),
    )


# Figures ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least the first
    return round(ordered[int(rank) - 1], 1)


def latencies_ms(world: World, blocks: Sequence[Block]) -> list[float]:
    """Queued to outcome committed, every attempt of ``blocks``."""
    finished = world.service.finished
    return [1000 * (finished[a] - at) for b in blocks for a, at in b.queued.items()]


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 and count else None


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's live threads by what they run: the event loop (the
    pipeline, the baseline's client and the SMSC), SQLite (aiosqlite's thread per pooled
    connection), the SMTP server (aiosmtpd's thread), others (``asyncio.to_thread``)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if thread is threading.main_thread():
            kind = "event_loop"
        elif thread.name.endswith("(_connection_worker_thread)"):
            kind = "sqlite"
        elif thread.name.endswith("(_run)"):
            kind = "smtp_server"
        else:
            kind = "other"
        totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def add_since(totals: dict[str, float], before: dict[str, float]) -> None:
    """Add to ``totals`` what each kind of thread used since ``before``."""
    for kind, seconds in thread_cpu().items():
        totals[kind] = totals.get(kind, 0.0) + seconds - before.get(kind, 0.0)


def per_mail_ms(totals: dict[str, float], mails: int) -> dict[str, float]:
    return {k: round(1000 * v / mails, 3) for k, v in sorted(totals.items()) if v > 0}


class Profiling:
    """cProfile of the event loop thread, on while the bench says so."""

    def __init__(self, on: bool) -> None:
        self.profiler = cProfile.Profile() if on else None

    def set(self, on: bool) -> None:
        if self.profiler is not None:
            if on:
                self.profiler.enable()
            else:
                self.profiler.disable()

    def print(self, top: int = 40) -> None:
        if self.profiler is None:
            return
        out = io.StringIO()
        stats = pstats.Stats(self.profiler, stream=out)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        print(out.getvalue(), file=sys.stderr)
        if dump := os.environ.get("BENCH_PROFILE_DUMP"):
            stats.dump_stats(dump)


# Checks -------------------------------------------------------------------------------------------


@dataclass
class Checked:
    problems: list[str] = field(default_factory=list)
    attempts: int = 0
    duplicates: int = 0
    failures: int = 0
    receipts: int = 0
    final_at: dict[UUID, datetime] = field(default_factory=dict)


async def check_database(world: World) -> Checked:
    """Every attempt of every block as the database has it, and every receipt."""
    checked = Checked()
    orders = [o for block in world.blocks for o in block.orders]
    expected = {a: block.channel[a] for block in world.blocks for a in block.queued}
    rows: list[Any] = []
    async with world.db.read() as conn:
        for start in range(0, len(orders), 200):
            rows += list(
                await conn.execute(
                    select(
                        service_attempts.c.id,
                        service_attempts.c.channel,
                        service_attempts.c.status,
                        service_attempts.c.sends,
                        service_attempts.c.sent_at,
                        service_attempts.c.final_at,
                        service_attempts.c.error_code,
                    ).where(service_attempts.c.order_id.in_(orders[start : start + 200]))
                )
            )
        receipts = list(
            await conn.execute(
                select(delivery_receipts.c.attempt_id, delivery_receipts.c.applied_at)
            )
        )
    checked.attempts = len(rows)
    unexpected = sum(1 for row in rows if row.id not in expected)
    if len(rows) - unexpected != len(expected) or unexpected:
        checked.problems.append(
            f"{len(rows)} attempts in the database ({unexpected} not ordered by the bench: "
            f"retries?), expected {len(expected)}"
        )
    wanted = {
        Channel.EMAIL.value: AttemptStatus.SENT.value,
        Channel.SMS.value: AttemptStatus.DELIVERED.value,
    }
    wrong: Counter[str] = Counter()
    for row in rows:
        if row.sends > 1:
            checked.duplicates += 1
        if row.status != wanted[row.channel]:
            wrong[f"{row.channel} {row.status} {row.error_code}".strip()] += 1
            if row.status not in wanted.values():
                checked.failures += 1
        if row.sent_at is None:
            wrong[f"{row.channel} without sent_at"] += 1
        if row.final_at is not None:
            checked.final_at[row.id] = row.final_at
    if wrong:
        checked.problems.append(f"attempts not as expected: {dict(wrong)}")
    if checked.duplicates:
        checked.problems.append(f"{checked.duplicates} attempts were sent more than once")
    checked.receipts = len(receipts)
    sms = sum(1 for c in expected.values() if c is Channel.SMS)
    if checked.receipts != sms:
        checked.problems.append(f"{checked.receipts} receipts stored, expected {sms}")
    if unapplied := sum(1 for r in receipts if r.applied_at is None):
        checked.problems.append(f"{unapplied} receipts never applied")
    return checked


def check_peers(world: World, baseline_mails: int) -> list[str]:
    """What the SMTP server and the SMSC saw, against what was ordered."""
    problems = []
    emails = sum(b.count(Channel.EMAIL) for b in world.blocks)
    if world.handler.message_count != emails + baseline_mails:
        problems.append(
            f"the SMTP server received {world.handler.message_count} mails, expected {emails} "
            f"from the pipeline + {baseline_mails} from the baseline"
        )
    peer = world.peer
    phones = Counter(p for block in world.blocks for p in block.phones)
    if Counter(s.destination for s in peer.submits) != phones:
        problems.append(
            f"the SMSC took {len(peer.submits)} submit_sm, expected {phones.total()} (one to "
            f"each number ordered)"
        )
    if refused := sum(1 for s in peer.submits if s.status != CommandStatus.ESME_ROK):
        problems.append(f"the SMSC refused {refused} submit_sm")
    own = sum(b.count(Channel.SMS) for b in world.blocks if not b.bench_sends_receipts)
    if peer.receipts_sent != own or peer.receipts_acked != own:
        problems.append(
            f"the SMSC sent {peer.receipts_sent} receipts, {peer.receipts_acked} acknowledged, "
            f"{peer.receipts_nacked} refused; expected {own}"
        )
    return problems


# Phase 1: email, ours and the baseline ------------------------------------------------------------


@dataclass
class EmailRounds:
    ours_s: float = 0.0
    ours_cpu_s: float = 0.0
    ours_threads: dict[str, float] = field(default_factory=dict)
    baseline_s: float = 0.0
    baseline_cpu_s: float = 0.0
    baseline_threads: dict[str, float] = field(default_factory=dict)
    sent: int = 0
    baseline_mails: int = 0
    statements: int = 0
    write_transactions: int = 0
    blocks: list[Block] = field(default_factory=list)
    per_round: list[dict[str, float | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def email_rounds(
    world: World, *, recipients: int, rounds: int, order_size: int, profiling: Profiling
) -> EmailRounds:
    result = EmailRounds()
    handler = world.handler
    for r in range(rounds):
        count = recipients // rounds + (1 if r < recipients % rounds else 0)
        handler.messages.clear()
        before = handler.message_count
        handler.keep = True
        cpu, threads = time.process_time(), thread_cpu()
        statements, writes = world.sql.statements, world.sql.write_transactions
        profiling.set(True)
        block, seconds = await burst(world, f"email round {r + 1}", count, email_only, order_size)
        profiling.set(False)
        result.ours_cpu_s += time.process_time() - cpu
        add_since(result.ours_threads, threads)
        result.statements += world.sql.statements - statements
        result.write_transactions += world.sql.write_transactions - writes
        handler.keep = False
        mails = taken_mails(handler)
        got = handler.message_count - before
        to = Counter(address for m in mails for address in m.recipients)
        if got != count or to != Counter(block.emails):
            result.problems.append(
                f"email round {r + 1}: the server received {got} mails to {len(to)} addresses, "
                f"expected {count}, one to each address ordered"
            )
        before = handler.message_count
        cpu, threads = time.process_time(), thread_cpu()
        baseline_s = await bare_aiosmtplib(world.server.port, mails, world.pool_size)
        result.baseline_cpu_s += time.process_time() - cpu
        add_since(result.baseline_threads, threads)
        if handler.message_count - before != len(mails):
            result.problems.append(
                f"email round {r + 1}: the baseline sent {len(mails)} mails, the server "
                f"received {handler.message_count - before}"
            )
        result.ours_s += seconds
        result.baseline_s += baseline_s
        result.sent += count
        result.baseline_mails += len(mails)
        result.blocks.append(block)
        result.per_round.append(
            {
                "email_sends_per_s": rate(count, seconds),
                "baseline_mails_per_s": rate(len(mails), baseline_s),
            }
        )
        log(
            f"email round {r + 1}/{rounds}: ours {count / seconds:.0f}/s, "
            f"aiosmtplib {len(mails) / baseline_s:.0f}/s"
        )
    return result


# The run ------------------------------------------------------------------------------------------


@dataclass
class Sizes:
    recipients: int
    email_recipients: int
    storm_receipts: int
    rounds: int
    plan: Plan


def sizes(args: argparse.Namespace) -> Sizes:
    recipients = args.recipients or (1_000 if args.quick else 10_000)
    return Sizes(
        recipients=recipients,
        email_recipients=args.email_recipients or (500 if args.quick else 2_000),
        storm_receipts=args.storm_receipts or (200 if args.quick else 1_000),
        rounds=args.rounds or (2 if args.quick else 4),
        plan=both if args.both_channels else alternating,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    wall = time.perf_counter()
    size = sizes(args)
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 2)
        mark = now

    profiling = Profiling(args.profile)
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    server = SmtpTestServer(handler=RecordingHandler(keep=False))
    try:
        with tempfile.TemporaryDirectory(prefix="yunting-bench-delivery-") as tmp:
            server.start()
            async with SmppPeer(
                system_id=SMSC_SYSTEM_ID,
                password=SMSC_PASSWORD,
                receipt_timezone=ZoneInfo(COURT_TZ),
            ) as peer:
                world = await build_world(args, Path(tmp), server, peer, errors)
                try:
                    await world.worker.start()
                    try:
                        phase("setup_s")
                        warmup, _ = await burst(world, "warm-up", WARMUP_RECIPIENTS, both, 100)
                        await wait_for_receipts(world, warmup)
                        phase("warmup_s")

                        email = await email_rounds(
                            world,
                            recipients=size.email_recipients,
                            rounds=size.rounds,
                            order_size=args.order_size,
                            profiling=profiling,
                        )
                        phase("email_rounds_s")

                        log(f"the burst: {size.recipients} recipients")
                        stored = len(world.service.receipt_times)
                        flood, flood_s = await burst(
                            world, "burst", size.recipients, size.plan, args.order_size
                        )
                        await wait_for_receipts(world, flood)
                        in_flow = world.service.receipt_times[stored:]
                        phase("burst_s")

                        # What the queue still holds: attempts the sweeper put there again
                        # while they waited (all sent by now); worked off before the lone orders.
                        left_in_queue = await drain(world.queue)
                        phase("queue_drain_s")

                        lone = []
                        for n in range(LONE_ORDERS):
                            block, _ = await burst(
                                world,
                                f"lone order {n + 1}",
                                args.order_size,
                                alternating,
                                args.order_size,
                            )
                            await wait_for_receipts(world, block)
                            lone.append(block)
                        phase("lone_orders_s")

                        log(f"the receipt storm: {size.storm_receipts} receipts")
                        storm = await receipt_storm(world, size.storm_receipts, args.order_size)
                        phase("storm_s")
                    finally:
                        await world.worker.stop()
                    checked = await check_database(world)
                finally:
                    await world.db.stop()
            peer_problems = check_peers(world, email.baseline_mails)
    finally:
        server.stop()
        logging.getLogger().removeHandler(errors)
    phase("checks_s")
    profiling.print()

    finished = world.service.finished
    start = flood.started

    def channel_rate(channel: Channel) -> float | None:
        ids = [a for a, c in flood.channel.items() if c is channel]
        return rate(len(ids), max((finished[a] for a in ids), default=start) - start)

    # SMS to delivered: queued (perf_counter) to final_at (wall clock), through one anchor.
    anchor_wall, anchor_perf = datetime.now(UTC), time.perf_counter()
    delivered_ms = [
        1000 * ((checked.final_at[a] - anchor_wall).total_seconds() - (at - anchor_perf))
        for a, at in flood.queued.items()
        if flood.channel[a] is Channel.SMS and a in checked.final_at
    ]
    burst_ms = latencies_ms(world, [flood])
    email_ms = latencies_ms(world, email.blocks)
    lone_ms = latencies_ms(world, lone)
    storm_ms = [1000 * (done - arrived) for arrived, done in storm.times]
    email_per_s = email.sent / email.ours_s
    baseline_per_s = email.baseline_mails / email.baseline_s
    ratio = email_per_s / baseline_per_s
    problems = email.problems + checked.problems + peer_problems
    if errors.count:
        problems.append(errors.summary().removeprefix("; "))
    in_flow_s = max((d for _, d in in_flow), default=0) - min((a for a, _ in in_flow), default=0)
    return {
        "bench": "delivery",
        "quick": args.quick,
        "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
        "recipients": size.recipients,
        "sends_per_s": rate(len(flood.queued), flood_s),
        "receipts_per_s": rate(size.storm_receipts, storm.seconds),
        "p50_ms": percentile(burst_ms, 50),
        "p99_ms": percentile(burst_ms, 99),
        "ratio_vs_aiosmtplib": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "email_sends_per_s": round(email_per_s, 1),
        "baseline_mails_per_s": round(baseline_per_s, 1),
        "combined_email_sends_per_s": channel_rate(Channel.EMAIL),
        "sms_sends_per_s": channel_rate(Channel.SMS),
        "receipts_in_flow_per_s": rate(len(in_flow), in_flow_s),
        "email_p50_ms": percentile(email_ms, 50),
        "email_p99_ms": percentile(email_ms, 99),
        "lone_order_p50_ms": percentile(lone_ms, 50),
        "lone_order_p99_ms": percentile(lone_ms, 99),
        "sms_delivered_p50_ms": percentile(delivered_ms, 50),
        "sms_delivered_p99_ms": percentile(delivered_ms, 99),
        "receipt_ingest_p50_ms": percentile(storm_ms, 50),
        "receipt_ingest_p99_ms": percentile(storm_ms, 99),
        "receipts_late": storm.late,
        # Phase 1 per mail: CPU of the whole process (the SMTP server's thread included, as
        # it is in the baseline's), by thread, and what the pipeline asked of the database
        # (placing the orders included; the sweeper's few statements too).
        "cpu_ms_per_mail": round(1000 * email.ours_cpu_s / email.sent, 3),
        "baseline_cpu_ms_per_mail": round(1000 * email.baseline_cpu_s / email.baseline_mails, 3),
        "cpu_ms_per_mail_by_thread": per_mail_ms(email.ours_threads, email.sent),
        "baseline_cpu_ms_per_mail_by_thread": per_mail_ms(
            email.baseline_threads, email.baseline_mails
        ),
        "sql_statements_per_mail": round(email.statements / email.sent, 1),
        "write_transactions_per_mail": round(email.write_transactions / email.sent, 2),
        "email_rounds": email.per_round,
        "attempts": {
            "email_rounds": email.sent,
            "burst": {"email": flood.count(Channel.EMAIL), "sms": flood.count(Channel.SMS)},
            "lone_orders": sum(len(b.queued) for b in lone),
            "storm": storm.block.count(Channel.SMS),
            "warmup": len(warmup.queued),
            "in_database": checked.attempts,
        },
        "smtp_mails_received": world.handler.message_count,
        "smpp_submits": len(world.peer.submits),
        "receipts_stored": checked.receipts,
        "duplicates": checked.duplicates,
        # Attempts the worker took from the queue after they had been sent: put there again by
        # the sweeper (queued longer than requeue_after); the claim refused them.
        "queue_repeats": world.service.not_claimed,
        "queue_left_after_burst": left_in_queue,
        # Phase 1: seconds inside create_order (the producer, overlapping the sends) per recipient.
        "create_order_ms_per_recipient": round(
            1000 * sum(b.create_s for b in email.blocks) / email.sent, 3
        ),
        "failures": checked.failures,
        "logged_errors": errors.count,
        "peak_rss_mib": round(rss_mib(), 1),
        "counted": {
            "sends_per_s": "burst attempts with their outcome committed / seconds from the "
            "first order placed to the last outcome",
            "receipts_per_s": "storm receipts stored and applied / seconds from the first "
            "deliver_sm sent to the last receipt applied",
            "p50_ms/p99_ms": "burst attempts, create_order returned and queued -> outcome "
            "committed",
            "ratio_vs_aiosmtplib": "email_sends_per_s / baseline_mails_per_s (phase 1)",
        },
        "settings": {
            "order_size": args.order_size,
            "channels": "email and sms" if args.both_channels else "alternately email or sms",
            "concurrency": args.concurrency,
            "batch": args.batch,
            "smtp_pool": args.smtp_pool,
            "smpp_window": args.smpp_window,
            "rounds": size.rounds,
            "event_loop": "uvloop" if loop_factory() is not None else "asyncio",
            "cores": os.cpu_count(),
            "profiled": args.profile,
        },
        "phases": phases,
        "wall_s": round(time.perf_counter() - wall, 2),
        "error": "; ".join(problems) or None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller, under a minute")
    parser.add_argument("--recipients", type=int, default=0, help="N (10,000; quick 1,000)")
    parser.add_argument(
        "--both-channels", action="store_true", help="every recipient email and SMS"
    )
    parser.add_argument(
        "--email-recipients", type=int, default=0, help="E, phase 1 (2,000; quick 500)"
    )
    parser.add_argument(
        "--storm-receipts", type=int, default=0, help="S, phase 4 (1,000; quick 200)"
    )
    parser.add_argument("--order-size", type=int, default=100, help="K, recipients per order")
    parser.add_argument("--rounds", type=int, default=0, help="R, phase 1 (4; quick 2)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULTS["delivery_concurrency"].default,
        help="worker consumers (default: the settings')",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULTS["delivery_batch"].default,
        help="attempts a consumer sends together (default: the settings')",
    )
    parser.add_argument(
        "--smtp-pool",
        type=int,
        default=DEFAULTS["smtp_pool"].default,
        help="SMTP connections, ours and the baseline's (default: the settings')",
    )
    parser.add_argument(
        "--smpp-window",
        type=int,
        default=DEFAULTS["smpp_window"].default,
        help="unanswered submit_sm at most (default: the settings')",
    )
    parser.add_argument("--database-url", default="", help="an empty, dedicated database")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile phase 1's event loop to stderr (its rates and CPU are then inflated)",
    )
    args = parser.parse_args(argv)
    for name in ("recipients", "email_recipients", "storm_receipts", "rounds"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')}: expected 0 (the default) or more")
    for name in ("order_size", "concurrency", "batch", "smtp_pool", "smpp_window"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected 1 or more")
    if sizes(args).email_recipients < sizes(args).rounds:
        parser.error("--email-recipients: expected at least one per round")
    # The product logs each attempt at INFO: stderr gets warnings and errors only.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tune_gc()  # as `yunting serve` and `yunting worker` do before serving
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            result = runner.run(run(args))
    except KeyboardInterrupt:
        log("interrupted; everything it started was cleaned up")
        return 1
    except Exception as e:  # set-up failed or the pipeline stalled: say so as JSON
        traceback.print_exc()
        error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        print(json.dumps({"bench": "delivery", "quick": args.quick, "error": error}), flush=True)
        return 1
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
