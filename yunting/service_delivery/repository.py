"""SQL of electronic service. Functions take a connection; the caller owns the transaction, so a
status change and its evidence event (and ledger entry) are committed together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.service_delivery.id_check import IdCheckState
from yunting.service_delivery.model import AttemptStatus
from yunting.service_delivery.tables import (
    delivery_receipts,
    inbound_replies,
    service_attempts,
    service_documents,
    service_events,
    service_orders,
    service_recipients,
)

R = TypeVar("R")


class _Keyed(Protocol):
    @property
    def id(self) -> UUID: ...


K = TypeVar("K", bound=_Keyed)


def _row(cls: type[R], row: Any) -> R:
    """A row as its dataclass. Every datetime column is a ``UtcDateTime`` (aware UTC out), and
    the tables list their columns in the dataclasses' field order (a unit test holds both), so
    a row of a whole table maps by position."""
    if row._fields == _field_names(cls):
        return cls(*row)
    return cls(**{name: getattr(row, name) for name in _field_names(cls)})


def _rows(cls: type[R], result: Any) -> list[R]:
    """Every row of ``result`` as its dataclass (``_row``), its columns compared once: this runs
    for every row the worker reads, and a row's ``_fields`` is built anew on each access."""
    names = _field_names(cls)
    if tuple(result.keys()) == names:
        return [cls(*r) for r in result]
    return [cls(**{name: getattr(r, name) for name in names}) for r in result]


def _field_names(cls: Any) -> tuple[str, ...]:
    return tuple(cls.__dataclass_fields__)  # in declaration order


def _columns(table: Table, cls: Any) -> list[Any]:
    """The columns of ``table`` a row dataclass holds, in its field order (all of them for the
    whole-row classes; a projection such as ``RuleInput`` reads only what it names)."""
    return [table.c[name] for name in _field_names(cls)]


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: UUID
    case_id: UUID
    kind: str
    title: str
    filename: str
    media_type: str
    size: int
    sha256: str
    storage_key: str
    uploaded_by: UUID | None
    uploaded_at: datetime
    ledger_index: int


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: UUID
    court_id: UUID
    case_id: UUID
    document_id: UUID
    legal_basis: str
    deadline_kind: str
    created_by: UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RecipientRow:
    id: UUID
    order_id: UUID
    person_id: UUID | None
    name: str
    role: str
    phone: str | None
    email: str | None
    id_last4: str | None
    consent_tier: str
    consent_source: str
    abroad: bool
    served_at: datetime | None
    rule_id: str | None
    ruleset_version: str | None
    decision_reason: str | None
    presumption: bool
    deadline_on: str | None
    postal_requested_at: datetime | None
    id_check_failures: int
    locked_until: datetime | None
    id_check_lockouts: int
    created_at: datetime

    def id_check(self) -> IdCheckState:
        return IdCheckState(self.id_check_failures, self.id_check_lockouts, self.locked_until)


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: UUID
    recipient_id: UUID
    order_id: UUID
    channel: str
    address: str
    status: str
    try_no: int
    retry_of: UUID | None
    not_before: datetime
    message_id: str
    provider_id: str | None
    queued_at: datetime | None
    sending_since: datetime | None
    sent_at: datetime | None
    final_at: datetime | None
    error_code: str
    error: str
    sends: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    order_id: UUID
    recipient_id: UUID | None
    attempt_id: UUID | None
    kind: str
    at: datetime
    channel: str | None
    receipt_status: str | None
    reached_recipient_system: bool
    detail: str
    summary: str
    raw: str
    sha256: str
    ledger_index: int


@dataclass(frozen=True, slots=True)
class DecisionState:
    """What deciding a recipient's service reads of its row: the rule set's input (the consent
    tier), what the deadline needs, and the decision stored last (to tell whether it changed)."""

    id: UUID
    order_id: UUID
    consent_tier: str
    abroad: bool
    served_at: datetime | None
    rule_id: str | None
    decision_reason: str | None


@dataclass(frozen=True, slots=True)
class RuleInput:
    """An evidence event as the rule set reads it (``proof.rule_event``): its row without the
    verbatim evidence, the summary and the hashes."""

    id: int
    recipient_id: UUID
    kind: str
    at: datetime
    channel: str | None
    receipt_status: str | None
    reached_recipient_system: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    id: int
    channel: str
    provider_id: str
    status: str
    error_code: str
    raw: str
    received_at: datetime
    happened_at: datetime | None
    attempt_id: UUID | None
    applied_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplyRow:
    id: int
    channel: str
    sender: str
    text: str
    part: str
    raw: str
    sha256: str
    received_at: datetime
    attempt_id: UUID | None
    recipient_id: UUID | None


# Documents and orders --------------------------------------------------------------------------


async def insert_document(conn: AsyncConnection, document: DocumentRow) -> None:
    await conn.execute(insert(service_documents).values(**_values(document)))


async def get_document(conn: AsyncConnection, document_id: UUID) -> DocumentRow | None:
    row = (
        await conn.execute(select(service_documents).where(service_documents.c.id == document_id))
    ).first()
    return _row(DocumentRow, row) if row is not None else None


async def list_documents(conn: AsyncConnection, case_id: UUID) -> list[DocumentRow]:
    rows = await conn.execute(
        select(service_documents)
        .where(service_documents.c.case_id == case_id)
        .order_by(service_documents.c.uploaded_at.desc())
    )
    return _rows(DocumentRow, rows)


async def insert_order(conn: AsyncConnection, order: OrderRow) -> None:
    await conn.execute(insert(service_orders).values(**_values(order)))


async def get_order(conn: AsyncConnection, order_id: UUID) -> OrderRow | None:
    row = (
        await conn.execute(select(service_orders).where(service_orders.c.id == order_id))
    ).first()
    return _row(OrderRow, row) if row is not None else None


async def list_orders(
    conn: AsyncConnection, court_id: UUID, *, case_id: UUID | None = None, limit: int = 200
) -> list[OrderRow]:
    query = select(service_orders).where(service_orders.c.court_id == court_id)
    if case_id is not None:
        query = query.where(service_orders.c.case_id == case_id)
    rows = await conn.execute(query.order_by(service_orders.c.created_at.desc()).limit(limit))
    return _rows(OrderRow, rows)


# Recipients -----------------------------------------------------------------------------------


async def insert_recipients(conn: AsyncConnection, recipients: list[RecipientRow]) -> None:
    if recipients:
        await conn.execute(insert(service_recipients), [_values(r) for r in recipients])


async def get_recipient(
    conn: AsyncConnection, recipient_id: UUID, *, for_update: bool = False
) -> RecipientRow | None:
    return (await _by_ids(conn, service_recipients, RecipientRow, [recipient_id], for_update)).get(
        recipient_id
    )


async def get_recipients(
    conn: AsyncConnection, recipient_ids: list[UUID], *, for_update: bool = False
) -> dict[UUID, RecipientRow]:
    """By id; ``for_update`` locks them in id order (every batch locks in one order, so two
    batches cannot deadlock)."""
    return await _by_ids(conn, service_recipients, RecipientRow, recipient_ids, for_update)


async def _by_ids(
    conn: AsyncConnection, table: Table, cls: type[K], ids: list[UUID], for_update: bool
) -> dict[UUID, K]:
    if not ids:
        return {}
    query = (
        select(*_columns(table, cls)).where(table.c.id.in_(sorted(set(ids)))).order_by(table.c.id)
    )
    if for_update:
        query = query.with_for_update()
    return {r.id: r for r in _rows(cls, await conn.execute(query))}


async def decision_states(
    conn: AsyncConnection, recipient_ids: list[UUID]
) -> dict[UUID, DecisionState]:
    """By id, locked in id order (``get_recipients`` with ``for_update``)."""
    return await _by_ids(conn, service_recipients, DecisionState, recipient_ids, True)


async def lock_recipients(conn: AsyncConnection, recipient_ids: list[UUID]) -> None:
    """Lock recipients in id order, reading nothing (a no-op on SQLite, whose write
    transaction holds the whole database)."""
    if recipient_ids and conn.dialect.name != "sqlite":
        await conn.execute(
            select(service_recipients.c.id)
            .where(service_recipients.c.id.in_(sorted(set(recipient_ids))))
            .order_by(service_recipients.c.id)
            .with_for_update()
        )


async def update_recipients(
    conn: AsyncConnection, changes: list[tuple[UUID, dict[str, Any]]]
) -> None:
    """Several recipients, each with its own values (one statement per set of columns)."""
    await _update_many(conn, service_recipients, changes)


async def list_recipients(conn: AsyncConnection, order_ids: list[UUID]) -> list[RecipientRow]:
    if not order_ids:
        return []
    rows = await conn.execute(
        select(service_recipients)
        .where(service_recipients.c.order_id.in_(order_ids))
        .order_by(service_recipients.c.created_at, service_recipients.c.name)
    )
    return _rows(RecipientRow, rows)


async def update_recipient(conn: AsyncConnection, recipient_id: UUID, **values: Any) -> None:
    await conn.execute(
        update(service_recipients).where(service_recipients.c.id == recipient_id).values(**values)
    )


# Attempts -------------------------------------------------------------------------------------


async def insert_attempts(conn: AsyncConnection, attempts: list[AttemptRow]) -> None:
    if attempts:
        await conn.execute(insert(service_attempts), [_values(a) for a in attempts])


async def get_attempt(
    conn: AsyncConnection, attempt_id: UUID, *, for_update: bool = False
) -> AttemptRow | None:
    return (await _by_ids(conn, service_attempts, AttemptRow, [attempt_id], for_update)).get(
        attempt_id
    )


async def get_attempts(
    conn: AsyncConnection, attempt_ids: list[UUID], *, for_update: bool = False
) -> dict[UUID, AttemptRow]:
    """By id; ``for_update`` locks them in id order."""
    return await _by_ids(conn, service_attempts, AttemptRow, attempt_ids, for_update)


async def lock_attempt_statuses(conn: AsyncConnection, attempt_ids: list[UUID]) -> dict[UUID, str]:
    """Each attempt's status, the attempts locked in id order (``get_attempts`` with
    ``for_update``, reading only what changes after the claim)."""
    if not attempt_ids:
        return {}
    table = service_attempts
    rows = await conn.execute(
        select(table.c.id, table.c.status)
        .where(table.c.id.in_(sorted(set(attempt_ids))))
        .order_by(table.c.id)
        .with_for_update()
    )
    return {attempt_id: status for attempt_id, status in rows}


async def list_attempts(conn: AsyncConnection, recipient_ids: list[UUID]) -> list[AttemptRow]:
    if not recipient_ids:
        return []
    rows = await conn.execute(
        select(service_attempts)
        .where(service_attempts.c.recipient_id.in_(recipient_ids))
        .order_by(service_attempts.c.created_at, service_attempts.c.try_no)
    )
    return _rows(AttemptRow, rows)


async def attempts_by_provider_ids(
    conn: AsyncConnection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], AttemptRow]:
    """The attempts the providers know by these (channel, provider id) pairs."""
    if not keys:
        return {}
    rows = await conn.execute(
        select(service_attempts).where(_by_provider_ids(service_attempts, keys))
    )
    return {(a.channel, a.provider_id): a for a in _rows(AttemptRow, rows) if a.provider_id}


def _by_provider_ids(table: Table, keys: list[tuple[str, str]]) -> Any:
    # Per channel, so the (channel, provider_id) index serves each part.
    by_channel: dict[str, set[str]] = {}
    for channel, provider_id in keys:
        by_channel.setdefault(channel, set()).add(provider_id)
    return or_(
        *(
            and_(table.c.channel == channel, table.c.provider_id.in_(sorted(ids)))
            for channel, ids in sorted(by_channel.items())
        )
    )


async def claim_attempts(
    conn: AsyncConnection, attempt_ids: list[UUID], *, now: datetime
) -> list[AttemptRow]:
    """The compare-and-set that guards every send: created → sending, only when due, in one
    statement for a batch. Exactly one worker wins each attempt, however many got it from the
    queue; returns the attempts won, as they are now."""
    if not attempt_ids:
        return []
    rows = await conn.execute(
        update(service_attempts)
        .where(
            service_attempts.c.id.in_(sorted(set(attempt_ids))),
            service_attempts.c.status == AttemptStatus.CREATED.value,
            service_attempts.c.not_before <= now,
        )
        .values(
            status=AttemptStatus.SENDING.value,
            sending_since=now,
            sends=service_attempts.c.sends + 1,
            updated_at=now,
        )
        .returning(*service_attempts.c)
    )
    return _rows(AttemptRow, rows)


async def update_attempt(conn: AsyncConnection, attempt_id: UUID, **values: Any) -> None:
    await conn.execute(
        update(service_attempts).where(service_attempts.c.id == attempt_id).values(**values)
    )


async def update_attempts(
    conn: AsyncConnection, changes: list[tuple[UUID, dict[str, Any]]]
) -> None:
    """Several attempts, each with its own values (one statement per set of columns)."""
    await _update_many(conn, service_attempts, changes)


async def _update_many(
    conn: AsyncConnection, table: Table, changes: Sequence[tuple[UUID | int, dict[str, Any]]]
) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in changes:
        if values:
            columns = tuple(sorted(values))
            groups.setdefault(columns, []).append(
                {"row_id": row_id, **{f"new_{k}": v for k, v in values.items()}}
            )
    for columns, params in groups.items():
        # Bound names differ from the columns': SQLAlchemy reserves a column's own name in SET.
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        await conn.execute(statement, params)


async def mark_queued(conn: AsyncConnection, attempt_ids: list[UUID], *, now: datetime) -> None:
    if attempt_ids:
        await conn.execute(
            update(service_attempts)
            .where(service_attempts.c.id.in_(attempt_ids))
            .values(queued_at=now)
        )


async def attempts_to_queue(
    conn: AsyncConnection, *, now: datetime, lost_before: datetime, limit: int
) -> list[UUID]:
    """Due attempts no queue holds: never queued (retries whose backoff ended) or queued so long
    ago that the queue must have lost them."""
    rows = await conn.execute(
        select(service_attempts.c.id)
        .where(
            service_attempts.c.status == AttemptStatus.CREATED.value,
            service_attempts.c.not_before <= now,
            or_(
                service_attempts.c.queued_at.is_(None),
                service_attempts.c.queued_at < lost_before,
            ),
        )
        .order_by(service_attempts.c.not_before)
        .limit(limit)
    )
    return [r.id for r in rows]


async def stuck_sending(conn: AsyncConnection, *, since_before: datetime, limit: int) -> list[UUID]:
    rows = await conn.execute(
        select(service_attempts.c.id)
        .where(
            service_attempts.c.status == AttemptStatus.SENDING.value,
            service_attempts.c.sending_since < since_before,
        )
        .limit(limit)
    )
    return [r.id for r in rows]


async def release_stuck(
    conn: AsyncConnection, attempt_id: UUID, *, since_before: datetime, now: datetime
) -> int:
    """sending → created for an attempt whose worker died mid-send (still stuck: a worker that
    finished meanwhile wins). Returns 1 if released."""
    result = await conn.execute(
        update(service_attempts)
        .where(
            service_attempts.c.id == attempt_id,
            service_attempts.c.status == AttemptStatus.SENDING.value,
            service_attempts.c.sending_since < since_before,
        )
        .values(
            status=AttemptStatus.CREATED.value,
            queued_at=None,
            sending_since=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


async def sent_without_receipt(
    conn: AsyncConnection, *, channels: list[str], sent_before: datetime, limit: int
) -> list[UUID]:
    rows = await conn.execute(
        select(service_attempts.c.id)
        .where(
            service_attempts.c.status == AttemptStatus.SENT.value,
            service_attempts.c.channel.in_(channels),
            service_attempts.c.sent_at < sent_before,
        )
        .limit(limit)
    )
    return [r.id for r in rows]


async def status_counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(service_attempts.c.status, func.count()).group_by(service_attempts.c.status)
    )
    return {r[0]: int(r[1]) for r in rows}


# Evidence events and receipts -----------------------------------------------------------------


async def insert_events(conn: AsyncConnection, events: list[dict[str, Any]]) -> None:
    if events:
        await conn.execute(insert(service_events), events)


async def list_events(
    conn: AsyncConnection, *, order_id: UUID, recipient_id: UUID | None = None
) -> list[EventRow]:
    query = select(service_events).where(service_events.c.order_id == order_id)
    if recipient_id is not None:
        query = query.where(
            or_(
                service_events.c.recipient_id == recipient_id,
                service_events.c.recipient_id.is_(None),
            )
        )
    rows = await conn.execute(query.order_by(service_events.c.id))
    return _rows(EventRow, rows)


async def recipient_events(conn: AsyncConnection, recipient_id: UUID) -> list[EventRow]:
    return (await events_of_recipients(conn, [recipient_id])).get(recipient_id, [])


async def events_of_recipients(
    conn: AsyncConnection, recipient_ids: list[UUID]
) -> dict[UUID, list[EventRow]]:
    """Each recipient's events, in the order they were stored."""
    return await _events_by_recipient(conn, EventRow, recipient_ids)


async def rule_inputs(
    conn: AsyncConnection, recipient_ids: list[UUID], *, leave_out: str
) -> dict[UUID, list[RuleInput]]:
    """Each recipient's events as the rule set reads them, in the order they were stored,
    without those of kind ``leave_out`` (the decisions themselves)."""
    return await _events_by_recipient(
        conn, RuleInput, recipient_ids, service_events.c.kind != leave_out
    )


E = TypeVar("E", EventRow, RuleInput)


async def _events_by_recipient(
    conn: AsyncConnection, cls: type[E], recipient_ids: list[UUID], *conditions: Any
) -> dict[UUID, list[E]]:
    if not recipient_ids:
        return {}
    table = service_events
    rows = await conn.execute(
        select(*_columns(table, cls))
        .where(table.c.recipient_id.in_(sorted(set(recipient_ids))), *conditions)
        .order_by(table.c.id)
    )
    found: dict[UUID, list[E]] = {}
    for event in _rows(cls, rows):
        assert event.recipient_id is not None  # the query's condition
        found.setdefault(event.recipient_id, []).append(event)
    return found


async def insert_receipts(
    conn: AsyncConnection, receipts: list[dict[str, Any]]
) -> list[ReceiptRow]:
    """Store receipts; returns them as stored (with their ids), in the order given."""
    if not receipts:
        return []
    rows = await conn.execute(
        insert(delivery_receipts).returning(*delivery_receipts.c, sort_by_parameter_order=True),
        receipts,
    )
    return _rows(ReceiptRow, rows)


async def unapplied_receipts(conn: AsyncConnection, *, limit: int = 500) -> list[ReceiptRow]:
    """Stored receipts not applied yet whose attempt is known by now, oldest first. One that no
    attempt answers to (a message id never recorded, or none) stays stored as evidence and out
    of the way: it would otherwise be read again on every sweep, and enough of them would keep
    the sweeper from ever reaching the receipts it can apply."""
    receipts, attempts = delivery_receipts, service_attempts
    known = (
        select(attempts.c.id)
        .where(
            attempts.c.channel == receipts.c.channel,
            attempts.c.provider_id == receipts.c.provider_id,
        )
        .exists()
    )
    rows = await conn.execute(
        select(receipts)
        .where(receipts.c.applied_at.is_(None), known)
        .order_by(receipts.c.id)
        .limit(limit)
    )
    return _rows(ReceiptRow, rows)


async def unapplied_receipts_for(
    conn: AsyncConnection, keys: list[tuple[str, str]]
) -> list[ReceiptRow]:
    """Stored receipts not yet applied for these (channel, provider id) pairs, oldest first."""
    if not keys:
        return []
    rows = await conn.execute(
        select(delivery_receipts)
        .where(
            delivery_receipts.c.applied_at.is_(None),
            _by_provider_ids(delivery_receipts, keys),
        )
        .order_by(delivery_receipts.c.id)
    )
    return _rows(ReceiptRow, rows)


async def update_receipts(conn: AsyncConnection, changes: list[tuple[int, dict[str, Any]]]) -> None:
    """Several receipts, each with its own values (marking them applied)."""
    await _update_many(conn, delivery_receipts, changes)


# Replies ---------------------------------------------------------------------------------------


async def insert_reply(conn: AsyncConnection, values: dict[str, Any]) -> ReplyRow:
    rows = await conn.execute(insert(inbound_replies).returning(*inbound_replies.c), [values])
    return _rows(ReplyRow, rows)[0]


async def latest_attempt_to(
    conn: AsyncConnection, *, channel: str, address: str
) -> AttemptRow | None:
    """The attempt last handed to a provider for ``address`` on ``channel``: what a reply from
    that address answers."""
    table = service_attempts
    row = (
        await conn.execute(
            select(table)
            .where(
                table.c.channel == channel,
                table.c.address == address,
                table.c.sent_at.is_not(None),
            )
            .order_by(table.c.sent_at.desc(), table.c.id)
            .limit(1)
        )
    ).first()
    return None if row is None else _row(AttemptRow, row)


async def get_reply(conn: AsyncConnection, reply_id: int) -> ReplyRow | None:
    row = (
        await conn.execute(select(inbound_replies).where(inbound_replies.c.id == reply_id))
    ).first()
    return None if row is None else _row(ReplyRow, row)


async def replies_of_recipients(conn: AsyncConnection, recipient_ids: list[UUID]) -> list[ReplyRow]:
    """The replies matched to these recipients, in the order stored."""
    if not recipient_ids:
        return []
    rows = await conn.execute(
        select(inbound_replies)
        .where(inbound_replies.c.recipient_id.in_(sorted(set(recipient_ids))))
        .order_by(inbound_replies.c.id)
    )
    return _rows(ReplyRow, rows)


async def unmatched_replies(conn: AsyncConnection, *, limit: int) -> list[ReplyRow]:
    """Replies no attempt answers to (a number we never sent to), newest first."""
    rows = await conn.execute(
        select(inbound_replies)
        .where(inbound_replies.c.recipient_id.is_(None))
        .order_by(inbound_replies.c.id.desc())
        .limit(limit)
    )
    return _rows(ReplyRow, rows)


def _values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}
