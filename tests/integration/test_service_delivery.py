"""Electronic service on the real databases with the embedded channel (the outbox): documents
checked by content, orders refused whole on a bad address, the compare-and-set that guards every
send, tier-1 and tier-2 service decided from the evidence, the recipient's identity check, and
the sweeper taking back what a dead worker held."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.integration.conftest import CourtWorld
from yunting.hearing.tokens import derive_key
from yunting.infra.clock import FrozenClock
from yunting.infra.db import Database
from yunting.infra.ledger.tables import ledger_entries
from yunting.infra.storage import LocalBlobStore
from yunting.service_delivery import repository as repo
from yunting.service_delivery.build import lookup_case
from yunting.service_delivery.documents import DocumentKind
from yunting.service_delivery.errors import (
    DocumentRejectedError,
    IdentityCheckError,
    InvalidAddressError,
    LinkInvalidError,
)
from yunting.service_delivery.model import AttemptStatus, ConsentTier, EvidenceKind
from yunting.service_delivery.outbox import OutboxProvider, OutboxSender
from yunting.service_delivery.ports import Channel
from yunting.service_delivery.service import RecipientSpec, ServiceDeliveryService
from yunting.service_delivery.tables import service_orders

PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.fixture
def service(database: Database, clock: FrozenClock, tmp_path: Path) -> ServiceDeliveryService:
    return ServiceDeliveryService(
        db=database,
        clock=clock,
        store=LocalBlobStore(tmp_path / "blobs"),
        providers={
            channel: OutboxProvider(channel=channel, db=database, clock=clock)
            for channel in Channel
        },
        link_key=derive_key("test-secret", "service-link"),
        public_base_url="http://court.test",
        court_timezone=ZoneInfo("Asia/Shanghai"),
        max_document_bytes=64 * 1024,
        lookup_case=lookup_case,
    )


async def upload(
    service: ServiceDeliveryService,
    world: CourtWorld,
    tmp_path: Path,
    data: bytes = PDF,
    kind: DocumentKind = DocumentKind.JUDGMENT,
) -> repo.DocumentRow:
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    return await service.upload_document(
        actor=world.clerk_actor,
        case_id=world.case_id,
        kind=kind,
        title="民事判决书",
        filename="judgment.pdf",
        source=source,
    )


def person(tier: ConsentTier, **changes: object) -> RecipientSpec:
    values: dict[str, object] = {
        "name": "张伟",
        "role": "plaintiff",
        "channels": (Channel.SMS, Channel.EMAIL),
        "consent_tier": tier,
        "consent_source": "起诉状中填写并确认的送达地址",
        "phone": "138 0013 8000",
        "email": "zhang.wei@example.com",
        "id_last4": "123X",
    }
    values.update(changes)
    return RecipientSpec(**values)  # type: ignore[arg-type]


async def order(
    service: ServiceDeliveryService, world: CourtWorld, tmp_path: Path, *specs: RecipientSpec
) -> tuple[object, list[object]]:
    document = await upload(service, world, tmp_path)
    return await service.create_order(
        actor=world.clerk_actor,
        case_id=world.case_id,
        document_id=document.id,
        legal_basis="民事诉讼法第九十条",
        deadline_kind="appeal_judgment",
        recipients=list(specs),
    )


async def test_documents_are_checked_by_content(
    service: ServiceDeliveryService, world: CourtWorld, tmp_path: Path, database: Database
) -> None:
    document = await upload(service, world, tmp_path)
    assert document.media_type == "application/pdf"
    assert document.sha256 == hashlib.sha256(PDF).hexdigest()
    assert (await service.document_path(document)).read_bytes() == PDF
    cases = [
        (b"", "empty"),
        (b"PK\x03\x04 a zip named judgment.pdf", "not_pdf"),
        (PDF[:-7], "truncated"),
        (PDF + b"x" * 70_000, "too_large"),
    ]
    for data, reason in cases:
        with pytest.raises(DocumentRejectedError) as caught:
            await upload(service, world, tmp_path, data)
        assert caught.value.reason == reason
    # A notice may be any file; a judgment may not.
    other = await upload(service, world, tmp_path, b"plain text", DocumentKind.NOTICE)
    assert other.media_type == "application/octet-stream"
    listed = await service.list_documents(actor=world.clerk_actor, case_id=world.case_id)
    assert {d.id for d in listed} == {other.id, document.id}


async def test_an_order_with_a_bad_address_is_refused_whole(
    service: ServiceDeliveryService, world: CourtWorld, tmp_path: Path, database: Database
) -> None:
    for bad in ({"phone": "12345"}, {"phone": "+86 123 4567 8901"}, {"email": "no-at-sign"}):
        with pytest.raises(InvalidAddressError):
            await order(
                service,
                world,
                tmp_path,
                person(ConsentTier.TIER1),
                person(ConsentTier.TIER1, **bad),
            )
    with pytest.raises(InvalidAddressError):
        await order(service, world, tmp_path, person(ConsentTier.TIER1, email=None))
    async with database.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(service_orders))).scalar() == 0


async def test_tier1_is_served_when_the_message_reaches_the_recipient_system(
    service: ServiceDeliveryService,
    world: CourtWorld,
    tmp_path: Path,
    database: Database,
    clock: FrozenClock,
) -> None:
    order_id, attempts = await order(service, world, tmp_path, person(ConsentTier.TIER1))
    assert len(attempts) == 2
    # Two workers got the same attempt: exactly one sends it.
    results = await asyncio.gather(*(service.send_attempt(attempts[0]) for _ in range(3)))  # type: ignore[arg-type]
    assert sorted(results, key=str) == [None, None, AttemptStatus.DELIVERED]
    assert await service.send_attempt(attempts[1]) is AttemptStatus.DELIVERED  # type: ignore[arg-type]
    outbox = await OutboxSender(db=database, clock=clock).list_recent()
    assert len(outbox) == 2
    sms = next(m for m in outbox if m.channel is Channel.SMS)
    assert sms.recipient == "+8613800138000"
    assert re.search(r"http://court\.test/s/[\w-]{22}\.[\w-]{22}", sms.body)

    view = await service.get_order(actor=world.clerk_actor, order_id=order_id)  # type: ignore[arg-type]
    (recipient,) = view.recipients
    assert recipient.served_at == clock.now()
    assert recipient.rule_id is not None
    assert recipient.deadline_on is not None
    events = await service.events(actor=world.clerk_actor, order_id=order_id)  # type: ignore[arg-type]
    kinds = [e.kind for e in events]
    assert kinds.count(EvidenceKind.HANDED_TO_PROVIDER) == 2
    assert kinds.count(EvidenceKind.DEEMED_SERVED) == 1  # once, though two channels arrived
    # Every event is in the ledger with the hash of what was recorded verbatim.
    async with database.read() as conn:
        for event in events:
            assert event.sha256 == hashlib.sha256(event.raw.encode()).hexdigest()
            row = (
                await conn.execute(
                    select(ledger_entries).where(ledger_entries.c.leaf_index == event.ledger_index)
                )
            ).one()
            assert row.content_sha256 == event.sha256


async def test_tier2_needs_the_recipient_to_acknowledge(
    service: ServiceDeliveryService,
    world: CourtWorld,
    tmp_path: Path,
    database: Database,
    clock: FrozenClock,
) -> None:
    order_id, attempts = await order(
        service, world, tmp_path, person(ConsentTier.TIER2, channels=(Channel.EMAIL,))
    )
    assert await service.send_attempt(attempts[0]) is AttemptStatus.DELIVERED  # type: ignore[arg-type]
    view = await service.get_order(actor=world.clerk_actor, order_id=order_id)  # type: ignore[arg-type]
    assert view.recipients[0].served_at is None  # arrival alone does not serve tier 2

    (mail,) = await OutboxSender(db=database, clock=clock).list_recent()
    token = re.search(r"/s/([\w.-]{45})", mail.body)
    assert token is not None
    access = await service.open_link(token=token.group(1))
    # One character of the MAC changed (not the last: its low bits are padding in base64).
    text = token.group(1)
    altered = text[:30] + ("A" if text[30] != "A" else "B") + text[31:]
    with pytest.raises(LinkInvalidError):
        await service.open_link(token=altered)
    # The identity check: wrong digits count down, then lock; nothing says what is on file.
    for left in (4, 3):
        with pytest.raises(IdentityCheckError) as caught:
            await service.check_id_digits(access=access, digits="0000")
        assert caught.value.attempts_left == left
    await service.check_id_digits(access=access, digits="123x")
    clock.advance(300)
    await service.record_recipient_event(
        access=access, kind=EvidenceKind.ACKNOWLEDGED, raw="本人已收到并阅读民事判决书"
    )
    view = await service.get_order(actor=world.clerk_actor, order_id=order_id)  # type: ignore[arg-type]
    assert view.recipients[0].served_at == clock.now()
    assert view.recipients[0].presumption is False


async def test_the_id_check_locks_after_five_wrong_tries(
    service: ServiceDeliveryService, world: CourtWorld, tmp_path: Path, clock: FrozenClock
) -> None:
    _, attempts = await order(service, world, tmp_path, person(ConsentTier.TIER2, id_last4=None))
    await service.send_attempt(attempts[0])  # type: ignore[arg-type]
    async with service._db.read() as conn:
        access = await service._access(conn, attempts[0])  # type: ignore[arg-type]
    # No ID number on file: the same answer as a wrong one (no oracle), then the lock.
    reasons = []
    for _ in range(6):
        with pytest.raises(IdentityCheckError) as caught:
            await service.check_id_digits(access=access, digits="1234")
        reasons.append(caught.value.reason)
    assert reasons == ["wrong"] * 4 + ["locked", "locked"]
    clock.advance(31 * 60)
    with pytest.raises(IdentityCheckError) as caught:
        await service.check_id_digits(access=access, digits="1234")
    assert caught.value.reason == "wrong"


async def test_the_sweeper_takes_back_an_attempt_a_dead_worker_held(
    service: ServiceDeliveryService,
    world: CourtWorld,
    tmp_path: Path,
    database: Database,
    clock: FrozenClock,
) -> None:
    _, attempts = await order(
        service, world, tmp_path, person(ConsentTier.TIER1, channels=(Channel.SMS,))
    )
    (attempt_id,) = attempts
    async with database.read() as conn:
        ordered = await repo.get_attempt(conn, attempt_id)  # type: ignore[arg-type]
    # Stored as queued with the order (the caller queues it): the sweeper leaves it alone
    # until the queue must have lost it.
    assert ordered is not None
    assert ordered.queued_at == clock.now()
    assert (await service.sweep())[0] == []
    async with database.transaction() as conn:
        assert await repo.claim_attempts(conn, [attempt_id], now=clock.now())  # type: ignore[list-item]
    # The worker died here. Nothing to do until the send timeout has passed.
    due, counts = await service.sweep()
    assert due == []
    assert counts["reclaimed"] == 0
    clock.advance(service.policy.send_timeout.total_seconds() + 1)
    due, counts = await service.sweep()
    assert counts["reclaimed"] == 1
    assert due == [attempt_id]
    assert await service.send_attempt(attempt_id) is AttemptStatus.DELIVERED  # type: ignore[arg-type]
    async with database.read() as conn:
        row = await repo.get_attempt(conn, attempt_id)  # type: ignore[arg-type]
    assert row is not None
    assert row.sends == 2
