"""Electronic service end to end, built as production builds it (``build_delivery`` from
``Settings``): the service and its worker, the SMTP provider talking to a real SMTP server
(aiosmtpd) and the SMPP provider bound to a real SMSC peer, on SQLite and PostgreSQL.

Each test follows attempts from the order to their final status through the worker (queue,
compare-and-set, provider, receipts) and checks what the court relies on: the attempt rows, the
receipts table and the evidence events, whose raw text is the provider's words verbatim (the
SMTP reply; the SMPP PDU, read out and as hex, which must decode back to itself), hashed, and
entered in the ledger. The sweeper runs when a test calls it, with the frozen clock advanced, so
retries and timeouts happen exactly when the policy says (the worker's own sweep interval is set
out of the way).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select

from tests.integration.conftest import CourtWorld
from tests.smpp_peer import Behaviour, SmppPeer, mobile_originated
from tests.smtp_server import SmtpTestServer
from yunting.hearing.errors import PermissionDeniedError
from yunting.infra.clock import FrozenClock
from yunting.infra.db import Database
from yunting.infra.ledger.tables import ledger_entries
from yunting.infra.settings import Settings
from yunting.infra.storage import LocalBlobStore
from yunting.service_delivery import repository as repo
from yunting.service_delivery.build import Delivery, build_delivery, smpp_config
from yunting.service_delivery.deadlines import (
    CN_MAINLAND,
    AppealKind,
    appeal_deadline,
    service_date,
)
from yunting.service_delivery.documents import DocumentKind
from yunting.service_delivery.errors import ServiceConflictError, ServiceNotFoundError
from yunting.service_delivery.model import (
    FINAL_ATTEMPT_STATUSES,
    AttemptStatus,
    ConsentTier,
    EvidenceKind,
)
from yunting.service_delivery.ports import Channel
from yunting.service_delivery.providers.smpp import SmppProvider
from yunting.service_delivery.providers.smpp_pdu import (
    ESM_CLASS_DELIVERY_RECEIPT,
    CommandId,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    MessageState,
    Pdu,
    SubmitSmResp,
    Tlv,
    TlvTag,
    UnknownPdu,
    decode,
    describe,
    encode,
    receipt_text,
)
from yunting.service_delivery.providers.smtp import SmtpProvider
from yunting.service_delivery.queue import RedisStreamQueue
from yunting.service_delivery.service import RecipientSpec, ServiceDeliveryService
from yunting.service_delivery.tables import delivery_receipts, inbound_replies, service_events

PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
SECRET = "pipeline-test-secret-0123456789abcdef-012345"
SENDER = "service@court.example.cn"
EMAIL = "zhang.wei@example.com"
PHONE = "+8613800138000"
TZ = ZoneInfo("Asia/Shanghai")
BACKOFF_S = 30.0
RECEIPT_TIMEOUT_S = 7200.0


class ErrorLog(logging.Handler):
    """Errors the service, worker and providers log: in these tests there should be none, and a
    test fails as soon as one is logged rather than waiting for an attempt that cannot settle."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def check(self) -> None:
        if not self.records:
            return
        text = "\n".join(logging.Formatter().format(r) for r in self.records)
        raise AssertionError(f"the delivery pipeline logged errors:\n{text}")


@dataclass
class Pipeline:
    """The service, its worker and both real peers, for one test."""

    delivery: Delivery
    db: Database
    clock: FrozenClock
    world: CourtWorld
    smtp: SmtpTestServer
    smsc: SmppPeer
    settings: Settings
    tmp_path: Path
    errors: ErrorLog

    @property
    def service(self) -> ServiceDeliveryService:
        return self.delivery.service

    async def order(self, *specs: RecipientSpec) -> tuple[UUID, list[UUID]]:
        """Upload a judgment, order its service and queue the attempts, as the web app does."""
        source = self.tmp_path / "judgment.pdf"
        source.write_bytes(PDF)
        document = await self.service.upload_document(
            actor=self.world.clerk_actor,
            case_id=self.world.case_id,
            kind=DocumentKind.JUDGMENT,
            title="民事判决书",
            filename="judgment.pdf",
            source=source,
        )
        order_id, attempts = await self.service.create_order(
            actor=self.world.clerk_actor,
            case_id=self.world.case_id,
            document_id=document.id,
            legal_basis="民事诉讼法第九十条",
            deadline_kind=AppealKind.JUDGMENT.value,
            recipients=list(specs),
        )
        await self.delivery.queue.put(attempts)
        return order_id, attempts

    async def attempt(self, attempt_id: UUID) -> repo.AttemptRow:
        async with self.db.read() as conn:
            row = await repo.get_attempt(conn, attempt_id)
        assert row is not None
        return row

    async def attempts_of(self, recipient_id: UUID) -> list[repo.AttemptRow]:
        async with self.db.read() as conn:
            return await repo.list_attempts(conn, [recipient_id])

    async def until(
        self,
        attempt_id: UUID,
        check: Callable[[repo.AttemptRow], bool],
        timeout: float = 15.0,  # noqa: ASYNC109 - a polling deadline, not an I/O timeout
    ) -> repo.AttemptRow:
        """Poll the attempt's row until ``check`` holds (the worker runs in the background)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.errors.check()
            row = await self.attempt(attempt_id)
            if check(row):
                return row
            if loop.time() > deadline:
                raise AssertionError(f"attempt never got there; now {row}")
            await asyncio.sleep(0.02)

    async def receipts_acked(self, count: int, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Wait until the SMSC has had ``count`` receipts acknowledged (stored by the service)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.smsc.receipts_acked < count:
            self.errors.check()
            if loop.time() > deadline:
                raise AssertionError(f"{self.smsc.receipts_acked} receipts acknowledged")
            await asyncio.sleep(0.02)

    async def settled(self, attempt_id: UUID, status: AttemptStatus) -> repo.AttemptRow:
        """Wait for the attempt to reach ``status``; fail at once if it ends somewhere else."""
        row = await self.until(
            attempt_id,
            lambda a: a.status == status.value or AttemptStatus(a.status) in FINAL_ATTEMPT_STATUSES,
        )
        assert row.status == status.value, row
        return row

    async def events(self, order_id: UUID) -> list[repo.EventRow]:
        async with self.db.read() as conn:
            return await repo.list_events(conn, order_id=order_id)

    async def receipts(self, provider_id: str) -> list[repo.ReceiptRow]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(delivery_receipts)
                .where(delivery_receipts.c.provider_id == provider_id)
                .order_by(delivery_receipts.c.id)
            )
            return [repo.ReceiptRow(**r._mapping) for r in rows]

    async def receipts_in(self, attempt_id: UUID, acked: int = 1) -> dict[str, int]:
        """Wait until the SMSC has had ``acked`` receipts acknowledged in all (each is stored
        before its deliver_sm_resp goes out) and the attempt's submit_sm_resp is recorded, then
        run the sweeper once. A receipt is applied at once when the attempt is known by its
        message id; one that overtook the recording of the submit_sm_resp (on PostgreSQL the two
        transactions overlap, neither sees the other) is applied by the sweeper, as the worker's
        does within its interval. Returns the sweep's counts."""
        await self.receipts_acked(acked)
        await self.until(attempt_id, lambda a: a.provider_id is not None)
        _, counts = await self.sweep()
        return counts

    async def recipient(self, recipient_id: UUID) -> repo.RecipientRow:
        async with self.db.read() as conn:
            row = await repo.get_recipient(conn, recipient_id)
        assert row is not None
        return row

    async def sweep(self) -> tuple[list[UUID], dict[str, int]]:
        """One round of the worker's sweeper, now: what it finds due goes on the queue."""
        due, counts = await self.service.sweep()
        await self.delivery.queue.put(due)
        return due, counts

    async def assert_in_ledger(self, events: list[repo.EventRow]) -> None:
        """Each event's hash is of its raw text, and the ledger entry at its index has it."""
        async with self.db.read() as conn:
            for event in events:
                assert event.sha256 == hashlib.sha256(event.raw.encode()).hexdigest()
                entry = (
                    await conn.execute(
                        select(ledger_entries).where(
                            ledger_entries.c.leaf_index == event.ledger_index
                        )
                    )
                ).one()
                assert entry.content_sha256 == event.sha256
                assert entry.kind == f"service.{event.kind.lower()}"
                assert entry.case_id == self.world.case_id
        assert len({e.ledger_index for e in events}) == len(events)


def person(*channels: Channel, tier: ConsentTier = ConsentTier.TIER1) -> RecipientSpec:
    return RecipientSpec(
        name="张伟",
        role="plaintiff",
        channels=channels,
        consent_tier=tier,
        consent_source="起诉状中填写并确认的送达地址",
        phone=PHONE,
        email=EMAIL,
        id_last4="123X",
    )


def settings_for(
    database: Database, tmp_path: Path, smtp: SmtpTestServer, smsc: SmppPeer, **changes: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database.url,
        "data_dir": tmp_path,
        "secret_key": SECRET,
        "public_base_url": "http://court.test",
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_tls": "none",
        "smtp_from": SENDER,
        "smtp_timeout_s": 10.0,
        "smpp_host": "127.0.0.1",
        "smpp_port": smsc.port,
        "smpp_system_id": smsc.system_id,
        "smpp_password": smsc.password,
        "smpp_source_addr": "106900001",
        "delivery_concurrency": 4,
        "delivery_backoff_s": BACKOFF_S,
        "delivery_receipt_timeout_s": RECEIPT_TIMEOUT_S,
        # The tests run the sweeper themselves, with the clock where they want it.
        "delivery_sweep_interval_s": 600.0,
    }
    values.update(changes)
    return Settings(**values)


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
async def smsc() -> AsyncIterator[SmppPeer]:
    # The SMSC writes receipt dates on the court's clock, as Settings tells the provider.
    async with SmppPeer(receipt_timezone=TZ) as peer:
        yield peer


@asynccontextmanager
async def running(
    database: Database,
    clock: FrozenClock,
    world: CourtWorld,
    smtp: SmtpTestServer,
    smsc: SmppPeer,
    tmp_path: Path,
    redis: Redis | None = None,
    **changes: Any,
) -> AsyncIterator[Pipeline]:
    settings = settings_for(database, tmp_path, smtp, smsc, **changes)
    delivery = build_delivery(
        settings,
        db=database,
        clock=clock,
        store=LocalBlobStore(tmp_path / "blobs"),
        redis=redis,
        with_worker=True,
    )
    # Production's choice from Settings: the real channels, not the outbox.
    assert isinstance(delivery.providers[Channel.EMAIL], SmtpProvider)
    assert isinstance(delivery.providers[Channel.SMS], SmppProvider)
    errors = ErrorLog()
    watched = logging.getLogger("yunting.service_delivery")
    watched.addHandler(errors)
    await delivery.start()
    try:
        yield Pipeline(delivery, database, clock, world, smtp, smsc, settings, tmp_path, errors)
        errors.check()  # nothing went wrong unseen after the test's last wait
    finally:
        await delivery.stop()
        watched.removeHandler(errors)


@pytest.fixture
async def pipeline(
    database: Database,
    clock: FrozenClock,
    world: CourtWorld,
    smtp: SmtpTestServer,
    smsc: SmppPeer,
    tmp_path: Path,
) -> AsyncIterator[Pipeline]:
    async with running(database, clock, world, smtp, smsc, tmp_path) as p:
        yield p


def received_mail(smtp: SmtpTestServer) -> list[EmailMessage]:
    out = []
    for message in smtp.handler.messages:
        parsed = message_from_bytes(message.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        out.append(parsed)
    return out


def pdu_of(raw: str) -> Pdu:
    """The PDU an evidence text carries: it is read out, then given as hex; the hex must decode
    to a PDU whose reading is exactly the text before it (verbatim, not a paraphrase)."""
    reading, _, hexed = raw.rpartition(" pdu=")
    pdu = decode(bytes.fromhex(hexed))
    assert reading == describe(pdu)
    return pdu


def of_kind(events: list[repo.EventRow], kind: EvidenceKind) -> list[repo.EventRow]:
    return [e for e in events if e.kind == kind.value]


def receipt_pdu(message_id: str, stat: str, state: MessageState | None, seq: int) -> DeliverSm:
    """A delivery receipt as an SMSC writes it (appendix B text, and the TLVs when ``state``)."""
    now = datetime.now(TZ)
    tlvs: tuple[Tlv, ...] = ()
    if state is not None:
        tlvs = (
            Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, message_id),
            Tlv.u8(TlvTag.MESSAGE_STATE, state),
        )
    return DeliverSm(
        sequence_number=seq,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=PHONE[1:],
        destination_addr="106900001",
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        short_message=receipt_text(
            message_id=message_id, stat=stat, submitted_at=now, done_at=now, text="x"
        ).encode("ascii"),
        tlvs=tlvs,
    )


async def smsc_sends(smsc: SmppPeer, build: Callable[[int], Pdu]) -> tuple[Pdu, Pdu]:
    """The SMSC sends a PDU of the test's making; returns it (as the wire has it) and the
    provider's answer."""
    sent: list[Pdu] = []

    def make(seq: int) -> Pdu:
        sent.append(build(seq))
        return sent[-1]

    answer = await smsc.request(make)
    return decode(encode(sent[0])), answer


def verbatim(pdu: Pdu) -> str:
    return f"{describe(pdu)} pdu={pdu.raw.hex()}"


# Email ----------------------------------------------------------------------------------------


async def test_an_email_a_relay_accepts_is_sent_but_not_yet_served(pipeline: Pipeline) -> None:
    order_id, (attempt_id,) = await pipeline.order(person(Channel.EMAIL))
    attempt = await pipeline.settled(attempt_id, AttemptStatus.SENT)
    now = pipeline.clock.now()
    assert (attempt.provider_id, attempt.sends) == (attempt.message_id, 1)
    assert (attempt.sent_at, attempt.final_at) == (now, None)

    # The server got the message, once, under the attempt's own Message-ID.
    (mail,) = received_mail(pipeline.smtp)
    assert mail["Message-ID"] == attempt.message_id
    assert mail["X-Yunting-Attempt"] == str(attempt_id)
    assert pipeline.smtp.handler.messages[0].rcpt_tos == [EMAIL]
    assert pipeline.smtp.handler.messages[0].mail_from == SENDER
    body = mail.get_content()
    assert "http://court.test/s/" in body
    assert "(2026)浙0192民初1234号" in body

    events = await pipeline.events(order_id)
    (handed,) = of_kind(events, EvidenceKind.HANDED_TO_PROVIDER)
    # The server's replies to DATA and RCPT, verbatim.
    assert handed.raw == "DATA: 250 2.0.0 Ok: queued as Q1\nRCPT: 250 2.1.5 OK"
    assert (handed.attempt_id, handed.channel, handed.summary) == (
        attempt_id,
        "email",
        attempt.message_id,
    )
    assert handed.reached_recipient_system is False
    # A relay's acceptance is not arrival at the recipient's system (rules.py): not served.
    assert of_kind(events, EvidenceKind.DEEMED_SERVED) == []
    recipient = await pipeline.recipient(attempt.recipient_id)
    assert recipient.served_at is None
    assert recipient.decision_reason == "not_served_awaiting_receipt"
    await pipeline.assert_in_ledger(events)


async def test_the_recipients_own_server_accepting_serves_a_tier1_recipient(
    database: Database,
    clock: FrozenClock,
    world: CourtWorld,
    smtp: SmtpTestServer,
    smsc: SmppPeer,
    tmp_path: Path,
) -> None:
    async with running(
        database, clock, world, smtp, smsc, tmp_path, smtp_final_hop=True
    ) as pipeline:
        order_id, (attempt_id,) = await pipeline.order(person(Channel.EMAIL))
        attempt = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    now = clock.now()
    assert (attempt.sent_at, attempt.final_at, attempt.sends) == (now, now, 1)
    assert len(smtp.handler.messages) == 1

    events = await pipeline.events(order_id)
    (handed,) = of_kind(events, EvidenceKind.HANDED_TO_PROVIDER)
    assert handed.raw == "DATA: 250 2.0.0 Ok: queued as Q1\nRCPT: 250 2.1.5 OK"
    assert handed.reached_recipient_system is True
    assert handed.detail == "reached_recipient_system"
    (served,) = of_kind(events, EvidenceKind.DEEMED_SERVED)
    assert served.detail == "CN-OLR-31-1"  # 在线诉讼规则 第三十一条第一款
    assert json.loads(served.raw) == {
        "served_at": now.isoformat(),
        "rule": "CN-OLR-31-1",
        "ruleset": "cn-2024.1",
        "basis": [str(handed.id)],
        "presumption": False,
    }
    recipient = await pipeline.recipient(attempt.recipient_id)
    assert recipient.served_at == now
    assert (recipient.rule_id, recipient.ruleset_version) == ("CN-OLR-31-1", "cn-2024.1")
    assert recipient.decision_reason == "tier1_reached_system"
    assert recipient.presumption is False
    expected = appeal_deadline(
        served_on=service_date(now, TZ),
        kind=AppealKind.JUDGMENT,
        calendar=CN_MAINLAND,
        domiciled_in_china=True,
    )
    assert recipient.deadline_on == expected.last_day.isoformat()
    await pipeline.assert_in_ledger(events)


async def test_a_mailbox_the_server_refuses_is_a_permanent_failure(pipeline: Pipeline) -> None:
    reply = "550 5.1.1 <zhang.wei@example.com>: Recipient address rejected: User unknown"
    pipeline.smtp.handler.rcpt_replies[EMAIL] = reply
    order_id, (attempt_id,) = await pipeline.order(person(Channel.EMAIL))
    attempt = await pipeline.settled(attempt_id, AttemptStatus.PERMANENT_FAILURE)
    assert attempt.error_code == "550 5.1.1"
    assert (attempt.final_at, attempt.sent_at, attempt.provider_id) == (
        pipeline.clock.now(),
        None,
        None,
    )
    assert pipeline.smtp.handler.message_count == 0

    events = await pipeline.events(order_id)
    (failed,) = of_kind(events, EvidenceKind.DELIVERY_FAILED)
    assert failed.raw == f"RCPT: {reply}"
    assert failed.detail == "550 5.1.1"
    assert of_kind(events, EvidenceKind.HANDED_TO_PROVIDER) == []
    # The address is no good: no retry on it (a clerk falls back to another channel).
    assert [a.id for a in await pipeline.attempts_of(attempt.recipient_id)] == [attempt_id]
    recipient = await pipeline.recipient(attempt.recipient_id)
    assert (recipient.served_at, recipient.decision_reason) == (None, "not_served_delivery_failed")
    await pipeline.assert_in_ledger(events)


async def test_a_temporary_refusal_is_retried_after_the_backoff(pipeline: Pipeline) -> None:
    pipeline.smtp.handler.script("RCPT", "451 4.3.0 Mailbox busy, try again later")
    order_id, (first_id,) = await pipeline.order(person(Channel.EMAIL))
    first = await pipeline.settled(first_id, AttemptStatus.TEMPORARY_FAILURE)
    failed_at = pipeline.clock.now()
    assert (first.error_code, first.final_at) == ("451 4.3.0", failed_at)

    # Try 2 is in the database, due after the backoff, and on no queue yet.
    (_, retry) = await pipeline.attempts_of(first.recipient_id)
    assert (retry.try_no, retry.retry_of, retry.status) == (2, first_id, "created")
    assert retry.not_before == failed_at + timedelta(seconds=BACKOFF_S)
    assert retry.queued_at is None
    assert retry.message_id != first.message_id
    due, _ = await pipeline.sweep()
    assert due == []  # not before the backoff has passed

    pipeline.clock.advance(BACKOFF_S)
    due, counts = await pipeline.sweep()
    assert (due, counts["requeued"]) == ([retry.id], 1)
    retry = await pipeline.settled(retry.id, AttemptStatus.SENT)
    assert (retry.sent_at, retry.sends) == (pipeline.clock.now(), 1)
    assert (await pipeline.attempt(first_id)).status == "temporary_failure"  # final stays final

    # The server refused the first transaction, then took try 2's message.
    (mail,) = received_mail(pipeline.smtp)
    assert mail["Message-ID"] == retry.message_id
    events = await pipeline.events(order_id)
    (failed,) = of_kind(events, EvidenceKind.DELIVERY_FAILED)
    assert failed.raw == "RCPT: 451 4.3.0 Mailbox busy, try again later"
    assert failed.attempt_id == first_id
    (handed,) = of_kind(events, EvidenceKind.HANDED_TO_PROVIDER)
    assert handed.attempt_id == retry.id
    assert handed.raw == "DATA: 250 2.0.0 Ok: queued as Q1\nRCPT: 250 2.1.5 OK"
    await pipeline.assert_in_ledger(events)


# SMS ------------------------------------------------------------------------------------------


async def test_an_sms_delivery_receipt_serves_a_tier1_recipient(pipeline: Pipeline) -> None:
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    await pipeline.receipts_in(attempt_id)
    attempt = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    now = pipeline.clock.now()
    (submitted,) = pipeline.smsc.submits
    assert submitted.destination == PHONE[1:]
    assert submitted.registered_delivery == 1  # a receipt was asked for
    assert "http://court.test/s/" in submitted.text
    assert attempt.provider_id == submitted.message_id
    assert (attempt.sent_at, attempt.final_at, attempt.sends) == (now, now, 1)

    events = await pipeline.events(order_id)
    (handed,) = of_kind(events, EvidenceKind.HANDED_TO_PROVIDER)
    resp = pdu_of(handed.raw)
    assert isinstance(resp, SubmitSmResp)
    assert (resp.message_id, resp.command_status) == (submitted.message_id, CommandStatus.ESME_ROK)
    assert handed.reached_recipient_system is False  # the SMSC took it; the handset had not

    (receipt,) = await pipeline.receipts(submitted.message_id)
    assert (receipt.channel, receipt.status, receipt.error_code) == ("sms", "delivered", "000")
    assert (receipt.attempt_id, receipt.applied_at, receipt.received_at) == (attempt_id, now, now)
    dlr = pdu_of(receipt.raw)
    assert isinstance(dlr, DeliverSm)
    assert dlr.esm_class == ESM_CLASS_DELIVERY_RECEIPT
    assert f"id:{submitted.message_id} ".encode() in dlr.short_message
    assert b"stat:DELIVRD" in dlr.short_message
    # The SMSC's "done date" (to the minute, court time) is when it reached the handset.
    assert receipt.happened_at is not None
    assert receipt.happened_at.second == 0

    (reported,) = of_kind(events, EvidenceKind.DELIVERY_RECEIPT)
    assert reported.raw == receipt.raw
    assert (reported.receipt_status, reported.attempt_id) == ("delivered", attempt_id)
    assert (reported.at, reported.detail) == (receipt.happened_at, "")
    (served,) = of_kind(events, EvidenceKind.DEEMED_SERVED)
    assert json.loads(served.raw)["basis"] == [str(reported.id)]
    recipient = await pipeline.recipient(attempt.recipient_id)
    assert recipient.served_at == receipt.happened_at
    assert (recipient.rule_id, recipient.decision_reason) == ("CN-OLR-31-1", "tier1_reached_system")
    await pipeline.assert_in_ledger(events)


async def test_an_undeliverable_sms_is_a_permanent_failure(pipeline: Pipeline) -> None:
    pipeline.smsc.configure(PHONE, Behaviour.UNDELIVERABLE)
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    await pipeline.receipts_in(attempt_id)
    attempt = await pipeline.settled(attempt_id, AttemptStatus.PERMANENT_FAILURE)
    assert (attempt.error_code, attempt.error) == ("001", "receipt: permanent_failure")
    assert attempt.final_at == pipeline.clock.now()

    (receipt,) = await pipeline.receipts(attempt.provider_id or "")
    assert (receipt.status, receipt.attempt_id) == ("permanent_failure", attempt_id)
    events = await pipeline.events(order_id)
    (reported,) = of_kind(events, EvidenceKind.DELIVERY_RECEIPT)
    assert reported.raw == receipt.raw
    dlr = pdu_of(reported.raw)
    assert isinstance(dlr, DeliverSm)
    assert b"stat:UNDELIV" in dlr.short_message
    assert (reported.receipt_status, reported.reached_recipient_system) == (
        "permanent_failure",
        False,
    )
    # The number cannot be reached: no retry on it (a clerk falls back to another channel).
    assert [a.id for a in await pipeline.attempts_of(attempt.recipient_id)] == [attempt_id]
    recipient = await pipeline.recipient(attempt.recipient_id)
    assert (recipient.served_at, recipient.decision_reason) == (None, "not_served_delivery_failed")
    await pipeline.assert_in_ledger(events)


async def test_a_receipt_that_comes_later_is_applied_when_it_comes(pipeline: Pipeline) -> None:
    delay = 4.0  # ample for "sent" to be recorded and seen first, even on a busy machine
    pipeline.smsc.configure(PHONE, Behaviour.DELAYED, delay=delay)
    _, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    sent = await pipeline.settled(attempt_id, AttemptStatus.SENT)
    # Sent, and the SMSC has not written the receipt yet. (It runs on this event loop: nothing
    # happens between this check and the clock's move.)
    assert pipeline.smsc.receipts_sent == 0
    pipeline.clock.advance(600)
    delivered = await pipeline.until(
        attempt_id, lambda a: a.status == AttemptStatus.DELIVERED.value, timeout=delay + 15
    )
    later = pipeline.clock.now()
    assert delivered.sent_at == sent.sent_at == later - timedelta(seconds=600)
    assert delivered.final_at == later
    (receipt,) = await pipeline.receipts(sent.provider_id or "")
    assert (receipt.received_at, receipt.applied_at) == (later, later)
    # Applied on arrival, by the service's receipt sink: nothing was left for the sweeper.
    _, counts = await pipeline.sweep()
    assert counts["receipts"] == 0
    assert (await pipeline.recipient(sent.recipient_id)).served_at == receipt.happened_at


async def test_a_duplicate_receipt_is_kept_as_evidence_and_changes_nothing(
    pipeline: Pipeline,
) -> None:
    pipeline.smsc.configure(PHONE, Behaviour.DUPLICATED)
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    await pipeline.receipts_in(attempt_id, acked=2)
    attempt = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)

    first, second = await pipeline.receipts(attempt.provider_id or "")
    # The SMSC sent the same receipt twice (two deliver_sm, one text).
    one, two = pdu_of(first.raw), pdu_of(second.raw)
    assert isinstance(one, DeliverSm)
    assert isinstance(two, DeliverSm)
    assert one.short_message == two.short_message
    assert (first.attempt_id, second.attempt_id) == (attempt_id, attempt_id)
    assert first.applied_at is not None
    assert second.applied_at is not None
    events = await pipeline.events(order_id)
    reported = of_kind(events, EvidenceKind.DELIVERY_RECEIPT)
    assert [(e.raw, e.receipt_status) for e in reported] == [
        (first.raw, "delivered"),
        (second.raw, "delivered"),
    ]
    # The first moved the attempt; the second found it final and moved nothing.
    assert [e.detail for e in reported] == ["", "duplicate_or_late"]
    assert attempt.final_at == pipeline.clock.now()
    assert len(of_kind(events, EvidenceKind.DEEMED_SERVED)) == 1
    await pipeline.assert_in_ledger(events)


async def test_a_late_intermediate_receipt_leaves_the_final_status(pipeline: Pipeline) -> None:
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    await pipeline.receipts_in(attempt_id)
    delivered = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    served_at = (await pipeline.recipient(delivered.recipient_id)).served_at
    provider_id = delivered.provider_id or ""

    # The SMSC reports ENROUTE after it reported DELIVRD (its queues keep no order).
    pipeline.clock.advance(60)
    late, answer = await smsc_sends(
        pipeline.smsc, lambda seq: receipt_pdu(provider_id, "ENROUTE", MessageState.ENROUTE, seq)
    )
    assert isinstance(answer, DeliverSmResp)
    assert answer.command_status == CommandStatus.ESME_ROK

    after = await pipeline.attempt(attempt_id)
    assert (after.status, after.final_at, after.updated_at) == (
        "delivered",
        delivered.final_at,
        delivered.updated_at,
    )
    first, stored = await pipeline.receipts(provider_id)
    assert stored.raw == verbatim(late)
    assert (stored.status, stored.attempt_id, stored.applied_at) == (
        "accepted",
        attempt_id,
        pipeline.clock.now(),
    )
    events = await pipeline.events(order_id)
    reported = of_kind(events, EvidenceKind.DELIVERY_RECEIPT)
    assert [(e.raw, e.receipt_status) for e in reported] == [
        (first.raw, "delivered"),
        (stored.raw, "accepted"),
    ]
    assert reported[1].reached_recipient_system is False
    assert len(of_kind(events, EvidenceKind.DEEMED_SERVED)) == 1
    assert (await pipeline.recipient(delivered.recipient_id)).served_at == served_at
    await pipeline.assert_in_ledger(events)


async def test_a_receipt_that_overtakes_the_submit_response_is_applied(
    pipeline: Pipeline,
) -> None:
    pipeline.smsc.configure(PHONE, Behaviour.OUT_OF_ORDER)
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    counts = await pipeline.receipts_in(attempt_id)
    attempt = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    assert counts["receipts"] in (0, 1)  # by the provider's answer, or by the sweeper
    (receipt,) = await pipeline.receipts(attempt.provider_id or "")
    assert (receipt.attempt_id, receipt.status) == (attempt_id, "delivered")
    events = await pipeline.events(order_id)
    # Whichever way it was applied, the evidence reads in the order things happened.
    assert [e.kind for e in events if e.attempt_id == attempt_id] == [
        "SUBMISSION_ACCEPTED",
        "HANDED_TO_PROVIDER",
        "DELIVERY_RECEIPT",
    ]
    assert len(of_kind(events, EvidenceKind.DEEMED_SERVED)) == 1
    await pipeline.assert_in_ledger(events)


async def test_a_throttled_smsc_slows_sending_down_and_the_sms_still_goes(
    pipeline: Pipeline,
) -> None:
    pipeline.smsc.configure(PHONE, Behaviour.THROTTLED, count=2)
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    await pipeline.receipts_in(attempt_id)
    attempt = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    tries = pipeline.smsc.submits
    assert [s.status for s in tries] == [
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_ROK,
    ]
    # The provider waited out its pause before each resubmission (a lower bound: it cannot
    # have been faster), and it was the provider that retried: one send of the attempt.
    pause = smpp_config(pipeline.settings).throttle_pause
    assert tries[1].at - tries[0].at >= pause * 0.95
    assert tries[2].at - tries[1].at >= pause * 0.95
    assert (attempt.sends, attempt.try_no, attempt.provider_id) == (1, 1, tries[2].message_id)
    events = await pipeline.events(order_id)
    assert of_kind(events, EvidenceKind.DELIVERY_FAILED) == []
    (handed,) = of_kind(events, EvidenceKind.HANDED_TO_PROVIDER)
    resp = pdu_of(handed.raw)
    assert isinstance(resp, SubmitSmResp)
    assert resp.message_id == tries[2].message_id


async def test_an_sms_without_a_receipt_times_out_and_is_sent_again(pipeline: Pipeline) -> None:
    pipeline.smsc.configure(PHONE, Behaviour.NO_RECEIPT)
    order_id, (first_id,) = await pipeline.order(person(Channel.SMS))
    first = await pipeline.settled(first_id, AttemptStatus.SENT)
    _, counts = await pipeline.sweep()
    assert counts["timed_out"] == 0

    pipeline.clock.advance(RECEIPT_TIMEOUT_S + 1)
    timed_out_at = pipeline.clock.now()
    due, counts = await pipeline.sweep()
    assert (due, counts["timed_out"]) == ([], 1)
    first = await pipeline.attempt(first_id)
    assert (first.status, first.error_code, first.final_at) == (
        "temporary_failure",
        "no_receipt",
        timed_out_at,
    )
    (_, retry) = await pipeline.attempts_of(first.recipient_id)
    assert (retry.try_no, retry.retry_of) == (2, first_id)
    assert retry.not_before == timed_out_at + timedelta(seconds=BACKOFF_S)

    pipeline.smsc.configure(PHONE, Behaviour.DELIVERED)
    pipeline.clock.advance(BACKOFF_S)
    due, _ = await pipeline.sweep()
    assert due == [retry.id]
    await pipeline.receipts_in(retry.id)
    retry = await pipeline.settled(retry.id, AttemptStatus.DELIVERED)
    assert [s.destination for s in pipeline.smsc.submits] == [PHONE[1:]] * 2
    assert retry.provider_id == pipeline.smsc.submits[1].message_id
    assert (await pipeline.attempt(first_id)).status == "temporary_failure"

    events = await pipeline.events(order_id)
    (failed,) = of_kind(events, EvidenceKind.DELIVERY_FAILED)
    assert (failed.attempt_id, failed.detail, failed.at) == (first_id, "no_receipt", timed_out_at)
    assert failed.raw == f"no receipt since {first.sent_at}"
    (reported,) = of_kind(events, EvidenceKind.DELIVERY_RECEIPT)
    assert reported.attempt_id == retry.id
    assert len(of_kind(events, EvidenceKind.DEEMED_SERVED)) == 1
    await pipeline.assert_in_ledger(events)


async def test_receipts_the_service_cannot_match_do_not_break_the_channel(
    pipeline: Pipeline,
) -> None:
    # A receipt for a message id we never had: stored verbatim, unmatched, acknowledged.
    unknown, answer = await smsc_sends(
        pipeline.smsc, lambda seq: receipt_pdu("ffff0000", "DELIVRD", MessageState.DELIVERED, seq)
    )
    assert isinstance(answer, DeliverSmResp)
    assert answer.command_status == CommandStatus.ESME_ROK
    (stored,) = await pipeline.receipts("ffff0000")
    assert stored.raw == verbatim(unknown)
    assert (stored.status, stored.attempt_id, stored.applied_at) == ("delivered", None, None)
    _, counts = await pipeline.sweep()
    assert counts["receipts"] == 0
    assert (await pipeline.receipts("ffff0000"))[0].applied_at is None

    # A deliver_sm whose body is cut short: answered with generic_nack, the session goes on.
    truncated = encode(receipt_pdu("ffff0001", "DELIVRD", None, 1))[16:60]
    _, nack = await smsc_sends(
        pipeline.smsc,
        lambda seq: UnknownPdu(
            command_id=CommandId.DELIVER_SM, sequence_number=seq, body=truncated
        ),
    )
    assert isinstance(nack, GenericNack)
    assert nack.command_status != CommandStatus.ESME_ROK
    # A receipt without any message id: acknowledged (redelivery would not help) and stored
    # verbatim all the same, matched to nothing.
    idless, answer = await smsc_sends(
        pipeline.smsc, lambda seq: receipt_pdu("", "DELIVRD", None, seq)
    )
    assert isinstance(answer, DeliverSmResp)
    assert answer.command_status == CommandStatus.ESME_ROK
    (kept,) = await pipeline.receipts("")
    assert kept.raw == verbatim(idless)
    assert (kept.status, kept.attempt_id, kept.applied_at) == ("delivered", None, None)
    async with pipeline.db.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(delivery_receipts))).scalar()
        events = (await conn.execute(select(func.count()).select_from(service_events))).scalar()
    assert (count, events) == (2, 0)

    # The same bind still carries service and its receipts.
    _, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    await pipeline.receipts_in(attempt_id)
    await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    assert [b[2] for b in pipeline.smsc.binds] == [CommandStatus.ESME_ROK]


async def test_receipts_nothing_answers_to_do_not_keep_the_sweeper_from_the_others(
    pipeline: Pipeline,
) -> None:
    # Older receipts no attempt answers to, then one whose attempt is known but that was never
    # applied (its worker stopped between storing it and applying it): the sweeper, reading one
    # receipt a time, still reaches it.
    for message_id in ("ffff0010", "ffff0011"):
        await smsc_sends(
            pipeline.smsc,
            lambda seq, m=message_id: receipt_pdu(m, "DELIVRD", MessageState.DELIVERED, seq),
        )
    pipeline.smsc.configure(PHONE, Behaviour.NO_RECEIPT)
    _, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    sent = await pipeline.settled(attempt_id, AttemptStatus.SENT)
    async with pipeline.db.transaction() as conn:
        await repo.insert_receipts(
            conn,
            [
                {
                    "channel": Channel.SMS.value,
                    "provider_id": sent.provider_id,
                    "status": "delivered",
                    "error_code": "",
                    "raw": "deliver_sm stored before a crash",
                    "received_at": pipeline.clock.now(),
                    "happened_at": None,
                }
            ],
        )
    _, counts = await pipeline.service.sweep(limit=1)
    assert counts["receipts"] == 1
    assert (await pipeline.attempt(attempt_id)).status == AttemptStatus.DELIVERED.value
    for message_id in ("ffff0010", "ffff0011"):
        (orphan,) = await pipeline.receipts(message_id)
        assert (orphan.attempt_id, orphan.applied_at) == (None, None)


async def test_two_copies_of_a_receipt_arriving_together_apply_once(pipeline: Pipeline) -> None:
    pipeline.smsc.configure(PHONE, Behaviour.NO_RECEIPT)
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    sent = await pipeline.settled(attempt_id, AttemptStatus.SENT)
    provider_id = sent.provider_id or ""
    # The SMSC sends the same receipt on two deliver_sm in one write: the provider stores them
    # concurrently (two transactions at once).
    answers = await asyncio.gather(
        *(
            smsc_sends(
                pipeline.smsc,
                lambda seq: receipt_pdu(provider_id, "DELIVRD", MessageState.DELIVERED, seq),
            )
            for _ in range(2)
        )
    )
    pipeline.errors.check()
    assert [a.command_status for _, a in answers] == [CommandStatus.ESME_ROK] * 2
    attempt = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    events = await pipeline.events(order_id)
    reported = of_kind(events, EvidenceKind.DELIVERY_RECEIPT)
    assert sorted(e.detail for e in reported) == ["", "duplicate_or_late"]
    assert attempt.final_at == pipeline.clock.now()
    assert len(of_kind(events, EvidenceKind.DEEMED_SERVED)) == 1


# The Redis queue ------------------------------------------------------------------------------


async def test_the_worker_goes_on_when_the_queue_stream_is_lost_or_broken(
    database: Database,
    clock: FrozenClock,
    world: CourtWorld,
    smtp: SmtpTestServer,
    smsc: SmppPeer,
    tmp_path: Path,
    redis: tuple[Redis, str],
) -> None:
    """The stream deleted under the workers (an operator, eviction, a Redis without persistence
    restarted): the group is made again and the next order goes out. The key turned into
    something else: every take fails, the consumers log it and keep trying, and once the key
    is cleared the next order goes out too."""
    client, prefix = redis
    async with running(
        database, clock, world, smtp, smsc, tmp_path, redis=client, redis_prefix=prefix
    ) as pipeline:
        queue = pipeline.delivery.queue
        assert isinstance(queue, RedisStreamQueue)
        _, (first,) = await pipeline.order(person(Channel.EMAIL))
        await pipeline.settled(first, AttemptStatus.SENT)

        await client.delete(queue.stream)
        _, (second,) = await pipeline.order(person(Channel.EMAIL))
        await pipeline.settled(second, AttemptStatus.SENT)

        await client.delete(queue.stream)
        await client.set(queue.stream, "not a stream")
        async with asyncio.timeout(10):
            while not pipeline.errors.records:  # noqa: ASYNC110 - a log handler, no event
                await asyncio.sleep(0.05)
        assert all(
            "taking from the queue failed" in r.getMessage() for r in pipeline.errors.records
        )
        assert all(
            r.exc_info and isinstance(r.exc_info[1], ResponseError) for r in pipeline.errors.records
        )
        await client.delete(queue.stream)
        await asyncio.sleep(1.5)  # the consumers' pause after a failure
        pipeline.errors.records.clear()
        _, (third,) = await pipeline.order(person(Channel.EMAIL))
        await pipeline.settled(third, AttemptStatus.SENT)
        assert len(received_mail(smtp)) == 3


# Replies from handsets ---------------------------------------------------------------------------


def reply_pdu(
    seq: int, text: str, *, sender: str = PHONE[1:], ton: int = 1, udh: bytes = b""
) -> DeliverSm:
    """What the recipient's handset (or ``sender``) wrote back."""
    return mobile_originated(seq, text, sender=sender, ton=ton, udh=udh)


async def stored_replies(pipeline: Pipeline) -> list[repo.ReplyRow]:
    async with pipeline.db.read() as conn:
        rows = await conn.execute(select(inbound_replies).order_by(inbound_replies.c.id))
        return [repo.ReplyRow(**r._mapping) for r in rows]


async def test_an_sms_reply_is_evidence_and_a_clerk_s_confirmation_serves_a_tier2_recipient(
    pipeline: Pipeline,
) -> None:
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS, tier=ConsentTier.TIER2))
    await pipeline.receipts_in(attempt_id)
    attempt = await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)
    recipient_id = attempt.recipient_id
    # Tier 2: a number the court found serves on the recipient's confirmation, not on arrival.
    assert (await pipeline.recipient(recipient_id)).served_at is None

    pipeline.clock.advance(600)
    replied_at = pipeline.clock.now()
    sent, answer = await smsc_sends(pipeline.smsc, lambda seq: reply_pdu(seq, "已收到判决书，谢谢"))
    # Acknowledged only once stored: the SMSC would otherwise send it again.
    assert isinstance(answer, DeliverSmResp)
    assert answer.command_status == CommandStatus.ESME_ROK
    (reply,) = await stored_replies(pipeline)
    assert (reply.channel, reply.sender, reply.text, reply.part) == (
        "sms",
        PHONE,
        "已收到判决书，谢谢",
        "",
    )
    assert (reply.attempt_id, reply.recipient_id, reply.received_at) == (
        attempt_id,
        recipient_id,
        replied_at,
    )
    assert reply.raw == verbatim(sent)
    assert reply.sha256 == hashlib.sha256(reply.raw.encode()).hexdigest()

    (replied,) = of_kind(await pipeline.events(order_id), EvidenceKind.REPLY_RECEIVED)
    assert (replied.raw, replied.summary, replied.detail) == (
        reply.raw,
        "已收到判决书，谢谢",
        f"reply:{reply.id}",
    )
    assert (replied.at, replied.attempt_id, replied.channel) == (replied_at, attempt_id, "sms")
    # A reply alone does not serve: whether it confirms receipt is for the clerk to read.
    assert (await pipeline.recipient(recipient_id)).served_at is None

    pipeline.clock.advance(7200)
    clerk = pipeline.world.clerk_actor
    # Another court's clerk does not learn the recipient exists; a judge does not serve.
    with pytest.raises(ServiceNotFoundError):
        await pipeline.service.confirm_reply(
            actor=pipeline.world.other_clerk.actor(),
            recipient_id=recipient_id,
            reply_id=reply.id,
            note="",
        )
    with pytest.raises(PermissionDeniedError):
        await pipeline.service.confirm_reply(
            actor=pipeline.world.judge_actor, recipient_id=recipient_id, reply_id=reply.id, note=""
        )
    with pytest.raises(ServiceNotFoundError):
        await pipeline.service.confirm_reply(
            actor=clerk, recipient_id=recipient_id, reply_id=reply.id + 1, note=""
        )
    served = await pipeline.service.confirm_reply(
        actor=clerk, recipient_id=recipient_id, reply_id=reply.id, note="回复称已收到"
    )
    # Served when the recipient replied, not when the clerk read it.
    assert served.served_at == replied_at
    assert (served.rule_id, served.decision_reason) == ("CN-OLR-31-2-1", "tier2_acknowledged")
    assert served.deadline_on is not None

    events = await pipeline.events(order_id)
    (confirmed,) = of_kind(events, EvidenceKind.ACKNOWLEDGED)
    assert (confirmed.at, confirmed.detail, confirmed.attempt_id) == (
        replied_at,
        f"reply:{reply.id}",
        attempt_id,
    )
    record = json.loads(confirmed.raw)
    assert record == {
        "confirms_reply": reply.id,
        "reply_sha256": reply.sha256,
        "reply_text": "已收到判决书，谢谢",
        "confirmed_by": str(clerk.id),
        "confirmed_at": pipeline.clock.now().isoformat(),
        "note": "回复称已收到",
    }
    (decision,) = of_kind(events, EvidenceKind.DEEMED_SERVED)
    assert json.loads(decision.raw)["basis"] == [str(confirmed.id)]
    await pipeline.assert_in_ledger([replied, confirmed, decision])

    with pytest.raises(ServiceConflictError):
        await pipeline.service.confirm_reply(
            actor=clerk, recipient_id=recipient_id, reply_id=reply.id, note=""
        )
    assert len(of_kind(await pipeline.events(order_id), EvidenceKind.ACKNOWLEDGED)) == 1


async def test_replies_match_national_numbers_and_keep_parts_and_strangers(
    pipeline: Pipeline,
) -> None:
    order_id, (attempt_id,) = await pipeline.order(person(Channel.SMS))
    await pipeline.receipts_in(attempt_id)
    await pipeline.settled(attempt_id, AttemptStatus.DELIVERED)

    # The number as a national one (TON unknown), in two concatenated UCS-2 parts.
    first = bytes((0x05, 0x00, 0x03, 0x2A, 0x02, 0x01))
    second = bytes((0x05, 0x00, 0x03, 0x2A, 0x02, 0x02))
    national = PHONE.removeprefix("+86")
    await smsc_sends(
        pipeline.smsc, lambda seq: reply_pdu(seq, "请问", sender=national, ton=0, udh=first)
    )
    await smsc_sends(
        pipeline.smsc, lambda seq: reply_pdu(seq, "这是什么", sender=national, ton=0, udh=second)
    )
    # A number nothing was sent to, and an alphanumeric sender: kept, matched to nobody.
    _, stranger = await smsc_sends(
        pipeline.smsc, lambda seq: reply_pdu(seq, "hello", sender="8613900000000")
    )
    _, named = await smsc_sends(
        pipeline.smsc, lambda seq: reply_pdu(seq, "STOP", sender="Operator", ton=5)
    )
    for answer in (stranger, named):
        assert isinstance(answer, DeliverSmResp)
        assert answer.command_status == CommandStatus.ESME_ROK

    replies = await stored_replies(pipeline)
    assert [(r.sender, r.text, r.part, r.attempt_id is not None) for r in replies] == [
        (PHONE, "请问", "42/1/2", True),
        (PHONE, "这是什么", "42/2/2", True),
        ("+8613900000000", "hello", "", False),
        ("Operator", "STOP", "", False),
    ]
    events = of_kind(await pipeline.events(order_id), EvidenceKind.REPLY_RECEIVED)
    assert [e.summary for e in events] == ["[1/2] 请问", "[2/2] 这是什么"]
    await pipeline.assert_in_ledger(events)
    async with pipeline.db.read() as conn:
        assert [r.text for r in await repo.unmatched_replies(conn, limit=10)] == ["STOP", "hello"]
    # A reply stored unmatched is nobody's to confirm: not this recipient's.
    with pytest.raises(ServiceNotFoundError):
        await pipeline.service.confirm_reply(
            actor=pipeline.world.clerk_actor,
            recipient_id=replies[0].recipient_id,  # type: ignore[arg-type]
            reply_id=replies[2].id,
            note="",
        )
