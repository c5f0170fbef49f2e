"""The local outbox: the embedded default channel. Messages are stored, and shown at /dev/outbox."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import insert, select

from yunting.infra.clock import Clock, as_utc
from yunting.infra.db import Database
from yunting.service_delivery.ports import (
    Channel,
    MessagePurpose,
    OutgoingMessage,
    SentMessage,
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
        return [
            OutboxMessage(
                id=row.id,
                channel=Channel(row.channel),
                recipient=row.recipient,
                subject=row.subject,
                body=row.body,
                purpose=MessagePurpose(row.purpose),
                reference=row.reference,
                created_at=as_utc(row.created_at),
            )
            for row in rows
        ]
