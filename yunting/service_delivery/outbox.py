"""The local outbox: the embedded default channel. Messages are stored, and shown at /dev/outbox."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select

from yunting.infra.clock import Clock, as_utc
from yunting.infra.db import Database
from yunting.service_delivery.ports import (
    Accepted,
    Channel,
    MessagePurpose,
    OutgoingMessage,
    ReceiptSink,
    ReplySink,
    SentMessage,
    Submission,
)
from yunting.service_delivery.tables import outbox_messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: UUID
    channel: Channel
    recipient: str
    subject: str
    body: str
    purpose: MessagePurpose
    reference: str
    created_at: datetime


class OutboxSender:
    """Implements ``MessageSender`` by storing the message in the database."""

    def __init__(self, *, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def send(self, message: OutgoingMessage) -> SentMessage:
        message_id = uuid.uuid4()
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(outbox_messages).values(
                    id=message_id,
                    channel=message.channel.value,
                    recipient=message.recipient,
                    subject=message.subject,
                    body=message.body,
                    purpose=message.purpose.value,
                    reference=message.reference,
                    created_at=self._clock.now(),
                )
            )
        logger.info(
            "outbox: stored %s message %s",
            message.channel,
            message_id,
            extra={"purpose": message.purpose.value, "reference": message.reference},
        )
        return SentMessage(id=message_id, channel=message.channel)

    async def list_recent(self, *, limit: int = 100) -> list[OutboxMessage]:
        query = (
            select(outbox_messages)
            .order_by(outbox_messages.c.created_at.desc(), outbox_messages.c.id)
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_message(row) for row in rows]

    async def get(self, message_id: UUID) -> OutboxMessage | None:
        async with self._db.read() as conn:
            query = select(outbox_messages).where(outbox_messages.c.id == message_id)
            row = (await conn.execute(query)).first()
        return None if row is None else _message(row)


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        channel=Channel(row.channel),
        recipient=row.recipient,
        subject=row.subject,
        body=row.body,
        purpose=MessagePurpose(row.purpose),
        reference=row.reference,
        created_at=as_utc(row.created_at),
    )


class OutboxProvider:
    """Electronic service into the local outbox (the embedded default, for both channels).

    The outbox stands for the recipient's own system: a message stored there has reached it, so
    a tier-1 recipient is served at once, as by an SMTP server that is the recipient's own. The
    dev outbox page shows the message with its link, so a newcomer can follow a whole service.
    """

    def __init__(self, *, channel: Channel, db: Database, clock: Clock) -> None:
        self.channel = channel
        self._sender = OutboxSender(db=db, clock=clock)

    async def start(self, receipts: ReceiptSink, replies: ReplySink | None = None) -> None:
        # The outbox sends no receipts (storing the message is the delivery) and no replies.
        del receipts, replies

    async def stop(self) -> None:
        return None

    async def submit(self, submission: Submission) -> Accepted:
        sent = await self._sender.send(
            OutgoingMessage(
                channel=submission.channel,
                recipient=submission.recipient,
                subject=submission.subject,
                body=submission.body,
                purpose=MessagePurpose.SERVICE,
                reference=str(submission.attempt_id),
            )
        )
        return Accepted(
            provider_id=str(sent.id),
            raw=f"250 stored in the local outbox as {sent.id} ({submission.message_id})",
            reached_recipient_system=True,
        )
