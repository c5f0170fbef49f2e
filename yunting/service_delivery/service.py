"""Electronic service (送达) use cases: documents, service orders, sending attempts through the
providers, receipts, the recipient's page, and the deemed-served decision.

The database is the source of truth. An attempt is committed before it is queued; a worker sends
only after winning the compare-and-set created → sending; no transaction is held open across a
provider call; every event with legal weight is stored verbatim, hashed and entered in the
evidence ledger in the same transaction as the change it records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.hearing.errors import PermissionDeniedError
from yunting.hearing.model import Actor, ActorKind, Case, Court, Permission
from yunting.infra.clock import Clock
from yunting.infra.db import Database
from yunting.infra.ledger.canonical import canonical_json
from yunting.infra.ledger.model import NewEntry
from yunting.infra.ledger.service import append_many
from yunting.infra.storage import BlobStore, sha256_of_file
from yunting.service_delivery import id_check, replies
from yunting.service_delivery import repository as repo
from yunting.service_delivery.addresses import masked, normalize_email, normalize_phone
from yunting.service_delivery.deadlines import (
    CN_MAINLAND,
    AppealKind,
    appeal_deadline,
    service_date,
)
from yunting.service_delivery.documents import DocumentKind, check_document
from yunting.service_delivery.errors import (
    IdentityCheckError,
    InvalidAddressError,
    LinkInvalidError,
    ServiceConflictError,
    ServiceNotFoundError,
)
from yunting.service_delivery.group_commit import GroupCommit
from yunting.service_delivery.links import make_token, read_token
from yunting.service_delivery.model import (
    FINAL_ATTEMPT_STATUSES,
    AttemptStatus,
    AttemptTransitionError,
    ConsentTier,
    EvidenceKind,
    plan_attempt_transition,
)
from yunting.service_delivery.ports import (
    Accepted,
    Channel,
    FailureKind,
    Provider,
    ProviderError,
    Receipt,
    ReceiptStatus,
    Reply,
    Submission,
)
from yunting.service_delivery.proof import PROBLEM_REASONS, decision_for
from yunting.service_delivery.rules import (
    RULESET_VERSION,
)

logger = logging.getLogger(__name__)

# What a provider's failure makes of the attempt.
FAILURE_STATUS: Mapping[FailureKind, AttemptStatus] = {
    FailureKind.TEMPORARY: AttemptStatus.TEMPORARY_FAILURE,
    FailureKind.PERMANENT: AttemptStatus.PERMANENT_FAILURE,
    FailureKind.TECHNICAL: AttemptStatus.TECHNICAL_FAILURE,
}
RECEIPT_STATUS: Mapping[ReceiptStatus, AttemptStatus] = {
    ReceiptStatus.DELIVERED: AttemptStatus.DELIVERED,
    ReceiptStatus.TEMPORARY_FAILURE: AttemptStatus.TEMPORARY_FAILURE,
    ReceiptStatus.PERMANENT_FAILURE: AttemptStatus.PERMANENT_FAILURE,
}
# Failures worth another try of the same address (a permanent one needs another channel).
RETRYABLE: frozenset[AttemptStatus] = frozenset(
    {AttemptStatus.TEMPORARY_FAILURE, AttemptStatus.TECHNICAL_FAILURE}
)
# Receipts, or send outcomes, written in one transaction at most (group commit).
WRITE_BATCH = 200


# (conn, case_id) -> the case and its court, from the hearing area's tables (``build.lookup_case``):
# in the caller's transaction, so orders and their case are read together.
CaseLookup = Callable[[AsyncConnection, UUID], Awaitable[tuple[Case, Court] | None]]


# The recipient's field an address error names (as the order's JSON spells it).
_ADDRESS_FIELD = {Channel.SMS: "phone", Channel.EMAIL: "email"}


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Retries and timeouts (from ``Settings``)."""

    max_tries: int = 5
    backoff_first: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)
    # A "sent" SMS without a receipt after this long is a temporary failure (and retried).
    receipt_timeout: timedelta = timedelta(hours=2)
    receipt_channels: frozenset[Channel] = frozenset({Channel.SMS})
    # A worker that started a send this long ago and never finished died: hand it back.
    send_timeout: timedelta = timedelta(minutes=2)
    # A queued attempt not picked up for this long was lost by the queue.
    requeue_after: timedelta = timedelta(minutes=1)

    def backoff(self, try_no: int) -> timedelta:
        """Exponential: first, 2×, 4× … capped (try_no is the try that failed, from 1)."""
        factor: int = 2 ** max(0, try_no - 1)
        return min(self.backoff_first * factor, self.backoff_max)


@dataclass(frozen=True, slots=True)
class RecipientSpec:
    name: str
    role: str
    channels: tuple[Channel, ...]
    consent_tier: ConsentTier
    consent_source: str
    phone: str | None = None
    email: str | None = None
    id_last4: str | None = None
    person_id: UUID | None = None
    abroad: bool = False


@dataclass(frozen=True, slots=True)
class NewEvent:
    order_id: UUID
    case_id: UUID
    kind: EvidenceKind
    at: datetime
    raw: str
    summary: str = ""
    recipient_id: UUID | None = None
    attempt_id: UUID | None = None
    channel: str | None = None
    detail: str = ""
    receipt_status: str | None = None
    reached_recipient_system: bool = False


@dataclass(frozen=True, slots=True)
class OrderView:
    order: repo.OrderRow
    document: repo.DocumentRow
    case: Case
    recipients: list[repo.RecipientRow]
    attempts: dict[UUID, list[repo.AttemptRow]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProofInputs:
    """What a recipient's certificate is made from: the evidence of the recipient and of their
    order (SERVICE_ORDERED), in ledger order."""

    order: repo.OrderRow
    document: repo.DocumentRow
    case: Case
    court: Court
    recipient: repo.RecipientRow
    events: list[repo.EventRow]


@dataclass(frozen=True, slots=True)
class RecipientAccess:
    """What the recipient page knows after reading a link."""

    attempt: repo.AttemptRow
    recipient: repo.RecipientRow
    order: repo.OrderRow
    document: repo.DocumentRow
    case: Case
    court: Court


class ServiceDeliveryService:
    """Built once (app lifespan or a worker's ``main``) and passed down."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        store: BlobStore,
        providers: Mapping[Channel, Provider],
        link_key: bytes,
        public_base_url: str,
        court_timezone: ZoneInfo,
        max_document_bytes: int,
        policy: DeliveryPolicy | None = None,
        lookup_case: CaseLookup,
    ) -> None:
        self._db = db
        self._clock = clock
        self._store = store
        self._providers = dict(providers)
        self._link_key = link_key
        self._base_url = public_base_url.rstrip("/")
        self._tz = court_timezone
        self._max_bytes = max_document_bytes
        self.policy = policy or DeliveryPolicy()
        self._lookup_case = lookup_case
        self._receipt_writer = GroupCommit(
            self._store_receipts, max_batch=WRITE_BATCH, name="delivery-receipts"
        )
        self._outcome_writer = GroupCommit(
            self._record_outcomes, max_batch=WRITE_BATCH, name="delivery-outcomes"
        )

    # Documents ---------------------------------------------------------------------------------

    async def upload_document(
        self,
        *,
        actor: Actor,
        case_id: UUID,
        kind: DocumentKind,
        title: str,
        filename: str,
        source: Path,
    ) -> repo.DocumentRow:
        """Keep an uploaded file (already spooled to ``source``) as a document of the case,
        checked by content, hashed and entered in the ledger."""
        size, head, tail = await asyncio.to_thread(_ends_of, source)
        media_type = check_document(
            kind=kind, head=head, tail=tail, size=size, limit=self._max_bytes
        )
        async with self._db.read() as conn:
            case, _ = await self._case(conn, actor, case_id, Permission.SERVICE_ORDER)
        digest = await asyncio.to_thread(sha256_of_file, source)
        document_id = uuid.uuid4()
        suffix = ".pdf" if media_type == "application/pdf" else ".bin"
        key = f"documents/{case.id}/{document_id}{suffix}"
        await self._store.put_file(key, source, sha256=digest)
        now = self._clock.now()
        async with self._db.transaction() as conn:
            (index,) = await append_many(
                conn,
                entries=[
                    NewEntry(
                        kind="service.document",
                        subject_id=str(document_id),
                        content_sha256=digest,
                        event={"case": str(case.id), "kind": kind.value, "size": size},
                        at=now,
                        case_id=case.id,
                    )
                ],
            )
            document = repo.DocumentRow(
                id=document_id,
                case_id=case.id,
                kind=kind.value,
                title=title.strip()[:300] or filename,
                filename=filename[:300],
                media_type=media_type,
                size=size,
                sha256=digest,
                storage_key=key,
                uploaded_by=actor.id,
                uploaded_at=now,
                ledger_index=index,
            )
            await repo.insert_document(conn, document)
        logger.info("document %s stored (%d bytes)", document_id, size)
        return document

    async def list_documents(self, *, actor: Actor, case_id: UUID) -> list[repo.DocumentRow]:
        async with self._db.read() as conn:
            await self._case(conn, actor, case_id, Permission.CASE_VIEW)
            return await repo.list_documents(conn, case_id)

    async def document_path(self, document: repo.DocumentRow) -> Path:
        return await self._store.local_path(document.storage_key)

    # Orders ------------------------------------------------------------------------------------

    async def create_order(
        self,
        *,
        actor: Actor,
        case_id: UUID,
        document_id: UUID,
        legal_basis: str,
        deadline_kind: str,
        recipients: Sequence[RecipientSpec],
    ) -> tuple[UUID, list[UUID]]:
        """Order the service of a document on recipients. Addresses are checked before anything
        is stored; the order, recipients, attempts and their evidence (SERVICE_ORDERED,
        CONSENT_RECORDED, SUBMISSION_ACCEPTED) are committed together. Returns the order id and
        the attempts to queue (the caller queues them after this returns)."""
        if not recipients:
            raise InvalidAddressError("a service order needs at least one recipient", field="")
        if deadline_kind != "none" and deadline_kind not in set(AppealKind):
            raise InvalidAddressError(f"unknown deadline {deadline_kind!r}", field="deadline")
        now = self._clock.now()
        order_id = uuid.uuid4()
        recipient_rows: list[repo.RecipientRow] = []
        attempt_rows: list[repo.AttemptRow] = []
        for spec in recipients:
            phone = normalize_phone(spec.phone) if spec.phone else None
            email = normalize_email(spec.email) if spec.email else None
            if not spec.channels:
                raise InvalidAddressError(f"no channel chosen for {spec.name}", field="channels")
            recipient_id = uuid.uuid4()
            recipient_rows.append(
                repo.RecipientRow(
                    id=recipient_id,
                    order_id=order_id,
                    person_id=spec.person_id,
                    name=spec.name,
                    role=spec.role,
                    phone=phone,
                    email=email,
                    id_last4=spec.id_last4,
                    consent_tier=spec.consent_tier.value,
                    consent_source=spec.consent_source,
                    abroad=spec.abroad,
                    served_at=None,
                    rule_id=None,
                    ruleset_version=None,
                    decision_reason=None,
                    presumption=False,
                    deadline_on=None,
                    postal_requested_at=None,
                    id_check_failures=0,
                    locked_until=None,
                    id_check_lockouts=0,
                    created_at=now,
                )
            )
            for channel in dict.fromkeys(spec.channels):
                address = phone if channel is Channel.SMS else email
                if address is None:
                    raise InvalidAddressError(
                        f"{spec.name} has no {channel.value} address", field=_ADDRESS_FIELD[channel]
                    )
                attempt_rows.append(
                    self._new_attempt(recipient_id, order_id, channel, address, now, queued=True)
                )
        async with self._db.transaction() as conn:
            document = await repo.get_document(conn, document_id)
            if document is None or document.case_id != case_id:
                raise ServiceNotFoundError("no such document in this case")
            case, court = await self._case(conn, actor, case_id, Permission.SERVICE_ORDER)
            order = repo.OrderRow(
                id=order_id,
                court_id=court.id,
                case_id=case.id,
                document_id=document.id,
                legal_basis=legal_basis.strip(),
                deadline_kind=deadline_kind,
                created_by=actor.id,
                created_at=now,
            )
            await repo.insert_order(conn, order)
            await repo.insert_recipients(conn, recipient_rows)
            await repo.insert_attempts(conn, attempt_rows)
            events = [
                NewEvent(
                    order_id=order_id,
                    case_id=case.id,
                    kind=EvidenceKind.SERVICE_ORDERED,
                    at=now,
                    raw=canonical_json(
                        {
                            "case": case.number,
                            "document": document.sha256,
                            "legal_basis": order.legal_basis,
                            "recipients": len(recipient_rows),
                            "by": str(actor.id),
                        }
                    ).decode(),
                    summary=f"{document.title} · {len(recipient_rows)}",
                )
            ]
            events += [
                NewEvent(
                    order_id=order_id,
                    case_id=case.id,
                    kind=EvidenceKind.CONSENT_RECORDED,
                    at=now,
                    recipient_id=r.id,
                    detail=r.consent_tier,
                    raw=r.consent_source,
                    summary=r.consent_source,
                )
                for r in recipient_rows
            ]
            events += [
                NewEvent(
                    order_id=order_id,
                    case_id=case.id,
                    kind=EvidenceKind.SUBMISSION_ACCEPTED,
                    at=now,
                    recipient_id=a.recipient_id,
                    attempt_id=a.id,
                    channel=a.channel,
                    raw=canonical_json({"attempt": str(a.id), "message_id": a.message_id}).decode(),
                    summary=masked(a.channel, a.address),
                )
                for a in attempt_rows
            ]
            await self._record(conn, events)
        logger.info(
            "service order %s: %d recipients, %d attempts",
            order_id,
            len(recipient_rows),
            len(attempt_rows),
        )
        return order_id, [a.id for a in attempt_rows]

    def _new_attempt(
        self,
        recipient_id: UUID,
        order_id: UUID,
        channel: Channel,
        address: str,
        now: datetime,
        *,
        try_no: int = 1,
        retry_of: UUID | None = None,
        not_before: datetime | None = None,
        queued: bool = False,
    ) -> repo.AttemptRow:
        """A new attempt row. ``queued``: the caller puts it on the queue once the row is
        committed, so it is stored as queued now (the sweeper leaves it to the queue); a retry
        waiting for its backoff is not, and the sweeper queues it when due."""
        attempt_id = uuid.uuid4()
        return repo.AttemptRow(
            id=attempt_id,
            recipient_id=recipient_id,
            order_id=order_id,
            channel=channel.value,
            address=address,
            status=AttemptStatus.CREATED.value,
            try_no=try_no,
            retry_of=retry_of,
            not_before=not_before or now,
            message_id=f"<{attempt_id}@{self._message_domain()}>",
            provider_id=None,
            queued_at=now if queued else None,
            sending_since=None,
            sent_at=None,
            final_at=None,
            error_code="",
            error="",
            sends=0,
            created_at=now,
            updated_at=now,
        )

    def _message_domain(self) -> str:
        host = self._base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        return host or "yunting.invalid"

    async def get_order(self, *, actor: Actor, order_id: UUID) -> OrderView:
        async with self._db.read() as conn:
            order = await repo.get_order(conn, order_id)
            if order is None:
                raise ServiceNotFoundError("no such service order")
            case, _ = await self._case(conn, actor, order.case_id, Permission.CASE_VIEW)
            document = await repo.get_document(conn, order.document_id)
            if document is None:
                raise ServiceNotFoundError("the order's document is gone")
            recipients = await repo.list_recipients(conn, [order.id])
            attempts = await repo.list_attempts(conn, [r.id for r in recipients])
        by_recipient: dict[UUID, list[repo.AttemptRow]] = {r.id: [] for r in recipients}
        for attempt in attempts:
            by_recipient[attempt.recipient_id].append(attempt)
        return OrderView(order, document, case, recipients, by_recipient)

    async def list_orders(
        self, *, actor: Actor, case_id: UUID | None = None, limit: int = 200
    ) -> list[OrderView]:
        if actor.court_id is None:
            raise ServiceNotFoundError("only court staff see service orders")
        async with self._db.read() as conn:
            orders = await repo.list_orders(conn, actor.court_id, case_id=case_id, limit=limit)
            recipients = await repo.list_recipients(conn, [o.id for o in orders])
            attempts = await repo.list_attempts(conn, [r.id for r in recipients])
            views = []
            for order in orders:
                document = await repo.get_document(conn, order.document_id)
                case, _ = await self._case(conn, actor, order.case_id, Permission.CASE_VIEW)
                assert document is not None  # a foreign key: the row exists
                mine = [r for r in recipients if r.order_id == order.id]
                ids = {r.id for r in mine}
                by_recipient: dict[UUID, list[repo.AttemptRow]] = {r.id: [] for r in mine}
                for attempt in attempts:
                    if attempt.recipient_id in ids:
                        by_recipient[attempt.recipient_id].append(attempt)
                views.append(OrderView(order, document, case, mine, by_recipient))
        return views

    async def events(
        self, *, actor: Actor, order_id: UUID, recipient_id: UUID | None = None
    ) -> list[repo.EventRow]:
        async with self._db.read() as conn:
            order = await repo.get_order(conn, order_id)
            if order is None:
                raise ServiceNotFoundError("no such service order")
            await self._case(conn, actor, order.case_id, Permission.CASE_VIEW)
            return await repo.list_events(conn, order_id=order_id, recipient_id=recipient_id)

    async def reply_messages(self, *, actor: Actor, order_id: UUID) -> dict[int, replies.Message]:
        """Reply id → its message (``replies.messages``), for the replies of the order's
        recipients."""
        async with self._db.read() as conn:
            order = await repo.get_order(conn, order_id)
            if order is None:
                raise ServiceNotFoundError("no such service order")
            await self._case(conn, actor, order.case_id, Permission.CASE_VIEW)
            recipients = await repo.list_recipients(conn, [order_id])
            stored = await repo.replies_of_recipients(conn, [r.id for r in recipients])
        by_recipient: dict[UUID | None, list[repo.ReplyRow]] = {}
        for reply in stored:
            by_recipient.setdefault(reply.recipient_id, []).append(reply)
        found: dict[int, replies.Message] = {}
        for of_one in by_recipient.values():
            found |= replies.messages(of_one)
        return found

    async def order_of_recipient(self, *, actor: Actor, recipient_id: UUID) -> UUID:
        """The order a recipient belongs to, if ``actor`` may see it."""
        async with self._db.read() as conn:
            _, order, _, _ = await self._recipient_and_order(conn, actor, recipient_id)
        return order.id

    async def _recipient_and_order(
        self, conn: AsyncConnection, actor: Actor, recipient_id: UUID
    ) -> tuple[repo.RecipientRow, repo.OrderRow, Case, Court]:
        """A recipient, their order and its case, if ``actor`` may see the case."""
        recipient = await repo.get_recipient(conn, recipient_id)
        if recipient is None:
            raise ServiceNotFoundError("no such recipient")
        order = await repo.get_order(conn, recipient.order_id)
        assert order is not None  # a foreign key: the row exists
        case, court = await self._case(conn, actor, order.case_id, Permission.CASE_VIEW)
        return recipient, order, case, court

    async def proof_inputs(self, *, actor: Actor, recipient_id: UUID) -> ProofInputs:
        async with self._db.read() as conn:
            recipient, order, case, court = await self._recipient_and_order(
                conn, actor, recipient_id
            )
            document = await repo.get_document(conn, order.document_id)
            assert document is not None  # a foreign key: the row exists
            events = [
                e
                for e in await repo.list_events(conn, order_id=order.id)
                if e.recipient_id in (None, recipient.id)
            ]
        events.sort(key=lambda e: e.ledger_index)
        return ProofInputs(order, document, case, court, recipient, events)

    # Sending -----------------------------------------------------------------------------------

    def message_for(
        self, attempt: repo.AttemptRow, recipient: repo.RecipientRow, access: RecipientAccess
    ) -> Submission:
        """The SMS or email of an attempt, with its own link (rebuilt here, never stored)."""
        url = f"{self._base_url}/s/{make_token(self._link_key, attempt.id)}"
        court, case, document = access.court.name, access.case.number, access.document.title
        channel = Channel(attempt.channel)
        if channel is Channel.SMS:
            body = (
                f"【{court}】{recipient.name}：{case}案{document}已向您电子送达，"
                f"请点击 {url} 核验身份后查阅。"
            )
            subject = ""
        else:
            subject = f"电子送达 Electronic service: {case} {document}"
            body = (
                f"{recipient.name}：\n\n{court}向您电子送达{case}案的《{document}》。"
                f"请打开以下链接，核验身份后查阅、下载并确认收悉：\n{url}\n\n"
                f"送达依据：{access.order.legal_basis}\n"
                f"文书 SHA-256：{access.document.sha256}\n\n"
                f'{court} serves you the document "{document}" in case {case}. Open the link '
                f"above, verify your identity, then read, download and acknowledge it.\n"
            )
        return Submission(
            attempt_id=attempt.id,
            channel=channel,
            recipient=attempt.address,
            subject=subject,
            body=body,
            message_id=attempt.message_id,
        )

    async def send_attempt(self, attempt_id: UUID) -> AttemptStatus | None:
        """One attempt through ``send_attempts``: its status afterwards, or ``None`` if another
        worker has it or it is not due."""
        return (await self.send_attempts([attempt_id])).get(attempt_id)

    async def send_attempts(self, attempt_ids: Sequence[UUID]) -> dict[UUID, AttemptStatus]:
        """One worker step for a batch: claim the attempts (created → sending, one statement;
        those another worker has or that are not due are left alone), hand each to its provider
        with no transaction open (all at once: a provider bounds its own connections and
        window), and record each outcome as it comes, group-committed with the others that
        came meanwhile. Returns the status of each attempt this call sent.

        Batching is what keeps the database from being the bottleneck: a claim and a read per
        batch, an outcome write per group of answers, instead of all three per message (on
        SQLite every write transaction takes the whole database)."""
        if not attempt_ids:
            return {}
        async with self._db.transaction() as conn:
            claimed = await repo.claim_attempts(conn, list(attempt_ids), now=self._clock.now())
        if not claimed:
            return {}
        async with self._db.read() as conn:
            accesses = await self._accesses(conn, claimed)
        statuses = await asyncio.gather(*(self._send(access) for access in accesses))
        return {
            access.attempt.id: status for access, status in zip(accesses, statuses, strict=True)
        }

    async def _send(self, access: RecipientAccess) -> AttemptStatus:
        # Each outcome is recorded as soon as it is known (with whatever other outcomes came
        # meanwhile), not when the whole batch is done: a worker that dies leaves unrecorded
        # only the sends still on a connection or waiting for their commit, so only those can
        # reach a recipient twice.
        outcome = await self._submit(access)
        return await self._outcome_writer((access, outcome))

    async def _submit(self, access: RecipientAccess) -> Accepted | ProviderError:
        attempt = access.attempt
        provider = self._providers.get(Channel(attempt.channel))
        if provider is None:
            return ProviderError(
                f"no provider for {attempt.channel}", kind=FailureKind.TECHNICAL, code="no_provider"
            )
        try:
            return await provider.submit(self.message_for(attempt, access.recipient, access))
        except ProviderError as e:
            return e
        except Exception as e:
            # A provider bug must not lose the batch's other outcomes (each already handed
            # over): recorded as a technical failure, retried like one.
            logger.exception("provider %s failed on attempt %s", attempt.channel, attempt.id)
            return ProviderError(
                f"provider error: {type(e).__name__}: {e}",
                kind=FailureKind.TECHNICAL,
                code="provider_error",
            )

    async def _record_outcomes(
        self, sent: Sequence[tuple[RecipientAccess, Accepted | ProviderError]]
    ) -> list[AttemptStatus]:
        """Record providers' answers in one transaction; each attempt's status afterwards."""
        now = self._clock.now()
        statuses: dict[UUID, AttemptStatus] = {}
        async with self._db.transaction() as conn:
            # The claimed rows are as they were at the claim; only the status can have changed
            # since (the sweeper), so that is all this reads (and locks, in _lock_many's order).
            locked = await repo.lock_attempt_statuses(conn, [a.attempt.id for a, _ in sent])
            await repo.lock_recipients(conn, [a.attempt.recipient_id for a, _ in sent])
            changes: list[tuple[UUID, dict[str, Any]]] = []
            events: list[NewEvent] = []
            retries: list[repo.AttemptRow] = []
            answered: list[tuple[str, str]] = []
            for access, outcome in sent:
                attempt = access.attempt
                status = locked.get(attempt.id)
                if status is None:
                    raise ServiceNotFoundError(f"attempt {attempt.id} vanished")
                target, event, values = self._outcome(attempt, access.case.id, outcome, now)
                current = AttemptStatus(status)
                try:
                    step = plan_attempt_transition(current, target)
                except AttemptTransitionError:
                    # The sweeper took the attempt back while the provider was slow: the send
                    # still happened, so record it as evidence and let the status be what it is.
                    step = None
                if step is not None and not step.ignored:
                    values |= {"status": step.to_status.value, "updated_at": now}
                    if step.to_status in FINAL_ATTEMPT_STATUSES:
                        values["final_at"] = now
                    changes.append((attempt.id, values))
                    current = step.to_status
                    if current in RETRYABLE:
                        retry = self._retry_of(attempt, now)
                        if retry is not None:
                            retries.append(retry)
                events.append(event)
                statuses[attempt.id] = current
                if isinstance(outcome, Accepted) and outcome.provider_id:
                    answered.append((attempt.channel, outcome.provider_id))
            await repo.update_attempts(conn, changes)
            await repo.insert_attempts(conn, retries)
            await self._record(conn, events)
            # A receipt may have overtaken the provider's answer (SMPP out of order).
            overtaken = await repo.unapplied_receipts_for(conn, answered)
            statuses |= await self._apply_receipts(conn, overtaken, now, decide=False)
            # One decision per recipient, on everything this transaction recorded.
            await self._decide_many(
                conn, {access.attempt.recipient_id: access.case.id for access, _ in sent}
            )
        for attempt_id, status in statuses.items():
            logger.info("attempt %s: %s", attempt_id, status, extra={"attempt_id": str(attempt_id)})
        return [statuses[access.attempt.id] for access, _ in sent]

    def _outcome(
        self,
        attempt: repo.AttemptRow,
        case_id: UUID,
        outcome: Accepted | ProviderError,
        now: datetime,
    ) -> tuple[AttemptStatus, NewEvent, dict[str, Any]]:
        """What a provider's answer makes of an attempt: the status it asks for, its evidence
        event, and the columns to store with it."""
        if isinstance(outcome, Accepted):
            reached = outcome.reached_recipient_system
            kind, raw, summary = EvidenceKind.HANDED_TO_PROVIDER, outcome.raw, outcome.provider_id
            detail = "reached_recipient_system" if reached else ""
            target = AttemptStatus.DELIVERED if reached else AttemptStatus.SENT
            values: dict[str, Any] = {"provider_id": outcome.provider_id, "sent_at": now}
        else:
            kind, raw = EvidenceKind.DELIVERY_FAILED, outcome.raw or str(outcome)
            summary, detail = str(outcome)[:300], outcome.code[:64]
            target = FAILURE_STATUS[outcome.kind]
            values = {"error_code": outcome.code[:64], "error": str(outcome)[:2000]}
        event = NewEvent(
            order_id=attempt.order_id,
            case_id=case_id,
            kind=kind,
            at=now,
            raw=raw,
            summary=summary,
            recipient_id=attempt.recipient_id,
            attempt_id=attempt.id,
            channel=attempt.channel,
            detail=detail,
            reached_recipient_system=detail == "reached_recipient_system",
        )
        return target, event, values

    def _retry_of(self, attempt: repo.AttemptRow, now: datetime) -> repo.AttemptRow | None:
        """The next try of a failed attempt after its backoff, or ``None`` after the last."""
        if attempt.try_no >= self.policy.max_tries:
            return None
        return self._new_attempt(
            attempt.recipient_id,
            attempt.order_id,
            Channel(attempt.channel),
            attempt.address,
            now,
            try_no=attempt.try_no + 1,
            retry_of=attempt.id,
            not_before=now + self.policy.backoff(attempt.try_no),
        )

    async def _schedule_retry(
        self, conn: AsyncConnection, attempt: repo.AttemptRow, now: datetime
    ) -> repo.AttemptRow | None:
        retry = self._retry_of(attempt, now)
        if retry is not None:
            await repo.insert_attempts(conn, [retry])
        return retry

    # Receipts ----------------------------------------------------------------------------------

    async def ingest_receipt(self, receipt: Receipt) -> None:
        """The providers' ``ReceiptSink``: returns once the receipt is stored verbatim (the
        provider acknowledges it only then) and applied to its attempt if that is known.
        Receipts that arrive together are written in one transaction (``GroupCommit``)."""
        await self._receipt_writer(receipt)

    async def _store_receipts(self, receipts: Sequence[Receipt]) -> list[None]:
        now = self._clock.now()
        async with self._db.transaction() as conn:
            rows = await repo.insert_receipts(
                conn,
                [
                    {
                        "channel": r.channel.value,
                        "provider_id": r.provider_id,
                        "status": r.status.value,
                        "error_code": r.error_code[:32],
                        "raw": r.raw,
                        "received_at": r.received_at,
                        "happened_at": r.happened_at,
                    }
                    for r in receipts
                ],
            )
            # Those whose attempt is not known yet are applied when the provider's answer is
            # recorded, or by the sweeper.
            await self._apply_receipts(conn, rows, now)
        return [None] * len(receipts)

    async def _apply_receipts(
        self,
        conn: AsyncConnection,
        receipts: Sequence[repo.ReceiptRow],
        now: datetime,
        *,
        decide: bool = True,
    ) -> dict[UUID, AttemptStatus]:
        """Apply stored receipts, in order, to their attempts where known (locked here) and
        decide their recipients (unless ``decide`` is false: the caller decides them after it
        has recorded more). Returns each touched attempt's status afterwards."""
        found = await repo.attempts_by_provider_ids(
            conn, [(r.channel, r.provider_id) for r in receipts]
        )
        attempts = await self._lock_many(conn, [a.id for a in found.values()])
        case_ids = await self._case_ids(conn, [a.order_id for a in attempts.values()])
        changes: list[tuple[UUID, dict[str, Any]]] = []
        events: list[NewEvent] = []
        retries: list[repo.AttemptRow] = []
        applied: list[tuple[int, dict[str, Any]]] = []
        statuses: dict[UUID, AttemptStatus] = {}
        for receipt in receipts:
            match = found.get((receipt.channel, receipt.provider_id))
            attempt = attempts.get(match.id) if match is not None else None
            if attempt is None:
                continue
            case_id = case_ids[attempt.order_id]
            status = ReceiptStatus(receipt.status)
            target = RECEIPT_STATUS.get(status)
            moved = False
            if target is not None:
                try:
                    step = plan_attempt_transition(AttemptStatus(attempt.status), target)
                except AttemptTransitionError:
                    step = None
                if step is not None and not step.ignored:
                    # A final status never moves again: a duplicate or late receipt is stored
                    # as evidence only.
                    moved = True
                    values: dict[str, Any] = {"status": target.value, "updated_at": now}
                    if target in FINAL_ATTEMPT_STATUSES:
                        values["final_at"] = now
                    if target is not AttemptStatus.DELIVERED:
                        values |= {"error_code": receipt.error_code, "error": f"receipt: {status}"}
                    changes.append((attempt.id, values))
                    if target in RETRYABLE:
                        retry = self._retry_of(attempt, now)
                        if retry is not None:
                            retries.append(retry)
                    # Later receipts of this batch for the same attempt see this one's effect.
                    attempt = dataclasses.replace(attempt, status=target.value)
                    attempts[attempt.id] = attempt
            events.append(
                NewEvent(
                    order_id=attempt.order_id,
                    case_id=case_id,
                    kind=EvidenceKind.DELIVERY_RECEIPT,
                    at=receipt.happened_at or receipt.received_at,
                    recipient_id=attempt.recipient_id,
                    attempt_id=attempt.id,
                    channel=attempt.channel,
                    receipt_status=status.value,
                    detail="duplicate_or_late" if not moved and target is not None else "",
                    raw=receipt.raw,
                    summary=status.value,
                )
            )
            applied.append((receipt.id, {"attempt_id": attempt.id, "applied_at": now}))
            statuses[attempt.id] = AttemptStatus(attempt.status)
        await repo.update_attempts(conn, changes)
        await repo.insert_attempts(conn, retries)
        await self._record(conn, events)
        await repo.update_receipts(conn, applied)
        if decide:
            await self._decide_many(
                conn, {attempts[a].recipient_id: case_ids[attempts[a].order_id] for a in statuses}
            )
        return statuses

    # Sweeper -----------------------------------------------------------------------------------

    async def sweep(self, *, limit: int = 500) -> tuple[list[UUID], dict[str, int]]:
        """What the queues lost or what timed out: returns the attempts to (re)queue and counts.

        - an attempt in ``sending`` whose worker died goes back to ``created`` (it is sent again:
          a bounded duplicate, counted in ``sends``);
        - a ``sent`` SMS without a receipt after the timeout becomes a temporary failure, retried;
        - due attempts no queue holds are returned (and marked queued);
        - receipts whose attempt became known since are applied.
        """
        now = self._clock.now()
        counts = {"requeued": 0, "reclaimed": 0, "timed_out": 0, "receipts": 0}
        channels = [c.value for c in self.policy.receipt_channels]
        # Runs every few seconds in every process: look first, and take the write lock (the
        # whole database on SQLite) only when there is something to change.
        async with self._db.read() as conn:
            stuck = await repo.stuck_sending(
                conn, since_before=now - self.policy.send_timeout, limit=limit
            )
            silent = await repo.sent_without_receipt(
                conn, channels=channels, sent_before=now - self.policy.receipt_timeout, limit=limit
            )
            receipts = await repo.unapplied_receipts(conn, limit=limit)
        if stuck:
            async with self._db.transaction() as conn:
                for attempt_id in stuck:
                    counts["reclaimed"] += await repo.release_stuck(
                        conn,
                        attempt_id,
                        since_before=now - self.policy.send_timeout,
                        now=now,
                    )
        for attempt_id in silent:
            async with self._db.transaction() as conn:
                await self._lock_many(conn, [attempt_id])
                access = await self._access(conn, attempt_id)
                if access.attempt.status != AttemptStatus.SENT.value:
                    continue
                await repo.update_attempt(
                    conn,
                    attempt_id,
                    status=AttemptStatus.TEMPORARY_FAILURE.value,
                    final_at=now,
                    updated_at=now,
                    error_code="no_receipt",
                    error="no delivery receipt within the timeout",
                )
                await self._record(
                    conn,
                    [
                        NewEvent(
                            order_id=access.order.id,
                            case_id=access.case.id,
                            kind=EvidenceKind.DELIVERY_FAILED,
                            at=now,
                            recipient_id=access.recipient.id,
                            attempt_id=attempt_id,
                            channel=access.attempt.channel,
                            detail="no_receipt",
                            raw=f"no receipt since {access.attempt.sent_at}",
                            summary="no_receipt",
                        )
                    ],
                )
                await self._schedule_retry(conn, access.attempt, now)
                await self._decide(conn, access.recipient.id, access.case.id)
                counts["timed_out"] += 1
        if receipts:
            async with self._db.transaction() as conn:
                counts["receipts"] = len(await self._apply_receipts(conn, receipts, now))
        async with self._db.read() as conn:
            due = await repo.attempts_to_queue(
                conn, now=now, lost_before=now - self.policy.requeue_after, limit=limit
            )
        if due:
            async with self._db.transaction() as conn:
                await repo.mark_queued(conn, due, now=now)
        counts["requeued"] = len(due)
        return due, counts

    # The recipient's page ----------------------------------------------------------------------

    async def open_link(self, *, token: str) -> RecipientAccess:
        attempt_id = read_token(self._link_key, token)
        if attempt_id is None:
            raise LinkInvalidError("this link is not valid")
        async with self._db.read() as conn:
            try:
                return await self._access(conn, attempt_id)
            except ServiceNotFoundError as e:
                raise LinkInvalidError("this link is not valid") from e

    async def check_id_digits(self, *, access: RecipientAccess, digits: str) -> None:
        """The last four characters of the recipient's ID number, as the court has them. Wrong
        answers are counted before the reply; ``id_check.LIMIT`` of them in a row lock the check
        for a while, each lockout twice as long as the last, and the ``id_check.MAX_LOCKOUTS``th
        closes it (the one-time code still works). The reply never says whether the court has
        an ID number on file (no oracle)."""
        now = self._clock.now()
        async with self._db.transaction() as conn:
            recipient = await repo.get_recipient(conn, access.recipient.id, for_update=True)
            if recipient is None:
                raise LinkInvalidError("this link is not valid")
            state = recipient.id_check()
            _refuse_id_check(state, now)
            expected = (recipient.id_last4 or "").upper()
            given = digits.strip().upper()
            ok = bool(expected) and len(given) == 4 and _same(given, expected)
            state = id_check.after_right_answer() if ok else id_check.after_wrong_answer(state, now)
            await repo.update_recipient(
                conn,
                recipient.id,
                id_check_failures=state.failures,
                id_check_lockouts=state.lockouts,
                locked_until=state.locked_until,
            )
        if ok:
            return
        _refuse_id_check(state, now)  # this answer locked or closed the check
        raise IdentityCheckError(
            "that does not match",
            reason="wrong",
            attempts_left=id_check.LIMIT - state.failures,
        )

    async def record_recipient_event(
        self,
        *,
        access: RecipientAccess,
        kind: EvidenceKind,
        raw: str,
        detail: str = "",
        summary: str = "",
    ) -> repo.RecipientRow:
        """CONTENT_ACCESSED, ACKNOWLEDGED or REJECTED from the recipient's page (verified)."""
        if kind not in (
            EvidenceKind.CONTENT_ACCESSED,
            EvidenceKind.ACKNOWLEDGED,
            EvidenceKind.REJECTED,
        ):
            raise ServiceConflictError(f"not a recipient's event: {kind}")
        if kind is EvidenceKind.REJECTED and detail not in PROBLEM_REASONS:
            raise ServiceConflictError(f"expected one of {', '.join(PROBLEM_REASONS)}")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await repo.get_recipient(conn, access.recipient.id, for_update=True)  # lock order
            await self._record(
                conn,
                [
                    NewEvent(
                        order_id=access.order.id,
                        case_id=access.case.id,
                        kind=kind,
                        at=now,
                        recipient_id=access.recipient.id,
                        attempt_id=access.attempt.id,
                        channel=access.attempt.channel,
                        detail=detail,
                        raw=raw,
                        summary=summary,
                    )
                ],
            )
            await self._decide(conn, access.recipient.id, access.case.id)
            recipient = await repo.get_recipient(conn, access.recipient.id)
        assert recipient is not None  # read in the same transaction that wrote it
        return recipient

    # Replies -----------------------------------------------------------------------------------

    async def ingest_reply(self, reply: Reply) -> None:
        """The providers' ``ReplySink``: stores what a recipient sent back, verbatim and hashed,
        and returns only then (the provider acknowledges it after). When the sender's address
        is one an attempt was last handed over to, the reply is also that recipient's
        REPLY_RECEIVED evidence, in the ledger, in the same transaction. It does not serve by
        itself (``replies``): a clerk reads it (``confirm_reply``)."""
        address = replies.reply_address(reply)
        digest = hashlib.sha256(reply.raw.encode()).hexdigest()
        async with self._db.transaction() as conn:
            attempt = (
                await repo.latest_attempt_to(conn, channel=reply.channel.value, address=address)
                if address is not None
                else None
            )
            stored = await repo.insert_reply(
                conn,
                {
                    "channel": reply.channel.value,
                    "sender": (address or reply.sender)[:32],
                    "text": reply.text,
                    "part": reply.part[:16],
                    "raw": reply.raw,
                    "sha256": digest,
                    "received_at": reply.received_at,
                    "attempt_id": attempt.id if attempt else None,
                    "recipient_id": attempt.recipient_id if attempt else None,
                },
            )
            if attempt is None:
                logger.warning(
                    "reply %d on %s from an address no attempt went to: stored unmatched",
                    stored.id,
                    reply.channel.value,
                )
                return
            await repo.lock_recipients(conn, [attempt.recipient_id])
            case_ids = await self._case_ids(conn, [attempt.order_id])
            await self._record(
                conn,
                [
                    NewEvent(
                        order_id=attempt.order_id,
                        case_id=case_ids[attempt.order_id],
                        kind=EvidenceKind.REPLY_RECEIVED,
                        at=reply.received_at,
                        raw=reply.raw,
                        summary=replies.reply_summary(reply),
                        recipient_id=attempt.recipient_id,
                        attempt_id=attempt.id,
                        channel=reply.channel.value,
                        detail=replies.reply_ref(stored.id),
                    )
                ],
            )
        logger.info("reply %d from recipient %s stored", stored.id, attempt.recipient_id)

    async def confirm_reply(
        self, *, actor: Actor, recipient_id: UUID, reply_id: int, note: str
    ) -> repo.RecipientRow:
        """A clerk read the recipient's reply and found that it confirms receipt: ACKNOWLEDGED
        at the time of the reply (第三十一条第二款第（一）项), its evidence naming the reply, its
        hash, the clerk and ``note``; then the recipient is decided again. Once per reply."""
        now = self._clock.now()
        async with self._db.transaction() as conn:
            recipient, order, case = await self._served_by(conn, actor, recipient_id)
            reply = await repo.get_reply(conn, reply_id)
            if reply is None or reply.recipient_id != recipient.id:
                raise ServiceNotFoundError("no such reply from this recipient")
            # A part of a concatenated SMS is confirmed with the whole message (what arrived).
            message = (
                replies.messages(await repo.replies_of_recipients(conn, [recipient.id]))[reply.id]
                if reply.part
                else replies.Message(parts=(reply,), total=1)
            )
            ref = replies.reply_ref(message.first_id)
            events = await repo.recipient_events(conn, recipient.id)
            if any(e.kind == EvidenceKind.ACKNOWLEDGED and e.detail == ref for e in events):
                raise ServiceConflictError("this reply was already confirmed")
            await self._record(
                conn,
                [
                    NewEvent(
                        order_id=order.id,
                        case_id=case.id,
                        kind=EvidenceKind.ACKNOWLEDGED,
                        at=message.received_at,
                        raw=replies.confirmation(
                            message=message, confirmed_by=actor.id, confirmed_at=now, note=note
                        ),
                        summary=message.text[:300],
                        recipient_id=recipient.id,
                        attempt_id=reply.attempt_id,
                        channel=reply.channel,
                        detail=ref,
                    )
                ],
            )
            await self._decide(conn, recipient.id, case.id)
            decided = await repo.get_recipient(conn, recipient.id)
        assert decided is not None  # read in the same transaction that wrote it
        return decided

    # Clerk's actions ---------------------------------------------------------------------------

    async def resend(
        self, *, actor: Actor, recipient_id: UUID, channel: Channel, fallback: bool
    ) -> UUID:
        """A new attempt for the recipient on ``channel`` (a resend, or a fallback to the other
        channel: FALLBACK_INITIATED). Refused while an attempt on that channel is in flight."""
        now = self._clock.now()
        async with self._db.transaction() as conn:
            recipient, order, case = await self._served_by(conn, actor, recipient_id)
            address = recipient.phone if channel is Channel.SMS else recipient.email
            if not address:
                raise InvalidAddressError(
                    f"the recipient has no {channel.value} address", field=_ADDRESS_FIELD[channel]
                )
            attempts = await repo.list_attempts(conn, [recipient.id])
            same = [a for a in attempts if a.channel == channel.value]
            if any(AttemptStatus(a.status) not in FINAL_ATTEMPT_STATUSES for a in same):
                raise ServiceConflictError(f"an {channel.value} attempt is still in flight")
            attempt = self._new_attempt(
                recipient.id,
                order.id,
                channel,
                address,
                now,
                try_no=max((a.try_no for a in same), default=0) + 1,
                retry_of=attempts[-1].id if attempts else None,
                queued=True,
            )
            await repo.insert_attempts(conn, [attempt])
            kind = EvidenceKind.FALLBACK_INITIATED if fallback else EvidenceKind.SUBMISSION_ACCEPTED
            await self._record(
                conn,
                [
                    NewEvent(
                        order_id=order.id,
                        case_id=case.id,
                        kind=kind,
                        at=now,
                        recipient_id=recipient.id,
                        attempt_id=attempt.id,
                        channel=channel.value,
                        detail="resend" if not fallback else f"to_{channel.value}",
                        raw=canonical_json(
                            {"attempt": str(attempt.id), "by": str(actor.id)}
                        ).decode(),
                        summary=masked(channel, address),
                    )
                ],
            )
        return attempt.id

    async def request_postal(self, *, actor: Actor, recipient_id: UUID, reason: str) -> None:
        """Mark the recipient for postal service (电子送达不成功 → 邮寄送达): FALLBACK_INITIATED."""
        now = self._clock.now()
        async with self._db.transaction() as conn:
            recipient, order, case = await self._served_by(conn, actor, recipient_id)
            if recipient.postal_requested_at is not None:
                raise ServiceConflictError("postal service was already requested")
            await repo.update_recipient(conn, recipient.id, postal_requested_at=now)
            await self._record(
                conn,
                [
                    NewEvent(
                        order_id=order.id,
                        case_id=case.id,
                        kind=EvidenceKind.FALLBACK_INITIATED,
                        at=now,
                        recipient_id=recipient.id,
                        detail="postal",
                        raw=reason,
                        summary=reason[:300],
                    )
                ],
            )

    # Internals ---------------------------------------------------------------------------------

    async def _access(self, conn: AsyncConnection, attempt_id: UUID) -> RecipientAccess:
        attempt = await repo.get_attempt(conn, attempt_id)
        if attempt is None:
            raise ServiceNotFoundError(f"no attempt {attempt_id}")
        (access,) = await self._accesses(conn, [attempt])
        return access

    async def _accesses(
        self, conn: AsyncConnection, attempts: Sequence[repo.AttemptRow]
    ) -> list[RecipientAccess]:
        """``_access`` for a batch: each recipient, order, document and case read once."""
        recipients = await repo.get_recipients(conn, [a.recipient_id for a in attempts])
        orders: dict[UUID, tuple[repo.OrderRow, repo.DocumentRow, Case, Court]] = {}
        for order_id in dict.fromkeys(a.order_id for a in attempts):
            order = await repo.get_order(conn, order_id)
            if order is None:
                raise ServiceNotFoundError(f"no order {order_id}")
            document = await repo.get_document(conn, order.document_id)
            if document is None:
                raise ServiceNotFoundError("the order's document is gone")
            case, court = await self._case(conn, Actor.system(), order.case_id, None)
            orders[order_id] = (order, document, case, court)
        found = []
        for attempt in attempts:
            recipient = recipients.get(attempt.recipient_id)
            if recipient is None:
                raise ServiceNotFoundError(f"attempt {attempt.id} lost its recipient")
            found.append(RecipientAccess(attempt, recipient, *orders[attempt.order_id]))
        return found

    async def _served_by(
        self, conn: AsyncConnection, actor: Actor, recipient_id: UUID
    ) -> tuple[repo.RecipientRow, repo.OrderRow, Case]:
        """A recipient a clerk acts on, locked, with its order and case, once ``actor`` may order
        service in that case (another court's clerk learns nothing: not found)."""
        recipient = await repo.get_recipient(conn, recipient_id, for_update=True)
        if recipient is None:
            raise ServiceNotFoundError("no such recipient")
        order = await repo.get_order(conn, recipient.order_id)
        assert order is not None  # a foreign key: the row exists
        case, _ = await self._case(conn, actor, order.case_id, Permission.SERVICE_ORDER)
        return recipient, order, case

    async def _case(
        self,
        conn: AsyncConnection,
        actor: Actor,
        case_id: UUID,
        permission: Permission | None,
    ) -> tuple[Case, Court]:
        found = await self._lookup_case(conn, case_id)
        if found is None:
            raise ServiceNotFoundError("no such case")
        case, court = found
        if actor.kind is not ActorKind.SYSTEM:
            if actor.court_id != case.court_id:
                raise ServiceNotFoundError("no such case")
            if permission is not None and not actor.may(
                permission, court_id=case.court_id, hearing_id=None
            ):
                raise PermissionDeniedError(f"your role may not {permission}")
        return case, court

    async def _lock_many(
        self, conn: AsyncConnection, attempt_ids: Sequence[UUID]
    ) -> dict[UUID, repo.AttemptRow]:
        """Lock attempts and their recipients and return the attempts as locked.

        Every transaction that changes an attempt or a recipient and appends evidence takes
        its locks in one order: the attempts in id order, then their recipients in id order,
        then the ledger's head (in ``_record``). Two orders would deadlock on PostgreSQL, e.g.
        a receipt deciding service while the clerk marks the same recipient for postal
        service; as no transaction takes a recipient before it holds all its attempts, no
        cycle can form. ``_record_outcomes`` takes the same locks in the same order, reading
        only the attempts' statuses."""
        attempts = await repo.get_attempts(conn, list(attempt_ids), for_update=True)
        await repo.lock_recipients(conn, [a.recipient_id for a in attempts.values()])
        return attempts

    async def _case_ids(self, conn: AsyncConnection, order_ids: Sequence[UUID]) -> dict[UUID, UUID]:
        """Order id → its case id."""
        found = {}
        for order_id in dict.fromkeys(order_ids):
            order = await repo.get_order(conn, order_id)
            if order is None:
                raise ServiceNotFoundError(f"no order {order_id}")
            found[order_id] = order.case_id
        return found

    async def _record(self, conn: AsyncConnection, events: Sequence[NewEvent]) -> None:
        """Store events verbatim with their hashes, each entered in the ledger (one append for
        the batch, inside the caller's transaction)."""
        if not events:
            return
        digests = [hashlib.sha256(e.raw.encode()).hexdigest() for e in events]
        indices = await append_many(
            conn,
            entries=[
                NewEntry(
                    kind=f"service.{e.kind.value.lower()}",
                    subject_id=str(e.recipient_id or e.order_id),
                    content_sha256=digest,
                    event={
                        k: v
                        for k, v in {
                            "order": str(e.order_id),
                            "attempt": str(e.attempt_id) if e.attempt_id else None,
                            "channel": e.channel,
                            "status": e.receipt_status,
                            "detail": e.detail or None,
                        }.items()
                        if v is not None
                    },
                    at=e.at,
                    case_id=e.case_id,
                )
                for e, digest in zip(events, digests, strict=True)
            ],
        )
        await repo.insert_events(
            conn,
            [
                {
                    "order_id": e.order_id,
                    "recipient_id": e.recipient_id,
                    "attempt_id": e.attempt_id,
                    "kind": e.kind.value,
                    "at": e.at,
                    "channel": e.channel,
                    "receipt_status": e.receipt_status,
                    "reached_recipient_system": e.reached_recipient_system,
                    "detail": e.detail,
                    "summary": e.summary,
                    "raw": e.raw,
                    "sha256": digest,
                    "ledger_index": index,
                }
                for e, digest, index in zip(events, digests, indices, strict=True)
            ],
        )

    async def _decide(self, conn: AsyncConnection, recipient_id: UUID, case_id: UUID) -> None:
        await self._decide_many(conn, {recipient_id: case_id})

    async def _decide_many(self, conn: AsyncConnection, cases: Mapping[UUID, UUID]) -> None:
        """Run the rule set over each recipient's events (``cases``: recipient id → case id);
        a new "served" is itself evidence. The recipients are locked (``_lock_many``
        took them, or this does, in id order)."""
        recipients = await repo.decision_states(conn, list(cases))
        events = await repo.rule_inputs(
            conn, list(recipients), leave_out=EvidenceKind.DEEMED_SERVED.value
        )
        orders: dict[UUID, repo.OrderRow] = {}
        changes: list[tuple[UUID, dict[str, Any]]] = []
        served: list[NewEvent] = []
        for recipient_id, recipient in recipients.items():
            decision = decision_for(recipient.consent_tier, events.get(recipient_id, []))
            served_at = decision.served_at if decision.served else None
            if (
                served_at == recipient.served_at
                and decision.rule_id == recipient.rule_id
                and decision.reason == recipient.decision_reason
            ):
                continue
            order = orders.get(recipient.order_id)
            if order is None:
                order = await repo.get_order(conn, recipient.order_id)
                assert order is not None  # a foreign key: the row exists
                orders[order.id] = order
            deadline_on = self._deadline(order.deadline_kind, served_at, abroad=recipient.abroad)
            changes.append(
                (
                    recipient_id,
                    {
                        "served_at": served_at,
                        "rule_id": decision.rule_id,
                        "ruleset_version": decision.ruleset_version,
                        "decision_reason": decision.reason,
                        "presumption": decision.presumption,
                        "deadline_on": deadline_on.isoformat() if deadline_on else None,
                    },
                )
            )
            if served_at is not None and recipient.served_at is None:
                served.append(
                    NewEvent(
                        order_id=recipient.order_id,
                        case_id=cases[recipient_id],
                        kind=EvidenceKind.DEEMED_SERVED,
                        at=self._clock.now(),
                        recipient_id=recipient_id,
                        detail=decision.rule_id,
                        raw=canonical_json(
                            {
                                "served_at": served_at.isoformat(),
                                "rule": decision.rule_id,
                                "ruleset": decision.ruleset_version,
                                "basis": list(decision.basis_event_ids),
                                "presumption": decision.presumption,
                            }
                        ).decode(),
                        summary=decision.reason,
                    )
                )
        await repo.update_recipients(conn, changes)
        await self._record(conn, served)

    def _deadline(self, kind: str, served_at: datetime | None, *, abroad: bool) -> date | None:
        """The last day of the period the service starts (民事诉讼法 第八十五条, 第一百七十一条)."""
        if served_at is None or kind == "none":
            return None
        result = appeal_deadline(
            served_on=service_date(served_at, self._tz),
            kind=AppealKind(kind),
            calendar=CN_MAINLAND,
            domiciled_in_china=not abroad,
        )
        return result.last_day

    # The recipient's page: one acknowledgement, the recipient's events ---------------------------
    # (added for web/routes/service_recipient.py)

    async def acknowledge_once(
        self, *, access: RecipientAccess, raw: str, summary: str = ""
    ) -> tuple[repo.RecipientRow, bool]:
        """ACKNOWLEDGED from the recipient's page, once per recipient: one who already
        acknowledged (on any of their links) gets their row back with ``False`` and nothing is
        recorded. The recipient's row is locked first, so two quick submissions make one event."""
        now = self._clock.now()
        async with self._db.transaction() as conn:
            recipient = await repo.get_recipient(conn, access.recipient.id, for_update=True)
            if recipient is None:
                raise LinkInvalidError("this link is not valid")
            events = await repo.recipient_events(conn, recipient.id)
            if any(e.kind == EvidenceKind.ACKNOWLEDGED for e in events):
                return recipient, False
            await self._record(
                conn,
                [
                    NewEvent(
                        order_id=access.order.id,
                        case_id=access.case.id,
                        kind=EvidenceKind.ACKNOWLEDGED,
                        at=now,
                        recipient_id=recipient.id,
                        attempt_id=access.attempt.id,
                        channel=access.attempt.channel,
                        raw=raw,
                        summary=summary,
                    )
                ],
            )
            await self._decide(conn, recipient.id, access.case.id)
            updated = await repo.get_recipient(conn, recipient.id)
        assert updated is not None  # read in the same transaction that wrote it
        return updated, True

    async def recipient_events(self, *, access: RecipientAccess) -> list[repo.EventRow]:
        """The evidence recorded for the recipient of ``access``, oldest first (their page)."""
        async with self._db.read() as conn:
            return await repo.recipient_events(conn, access.recipient.id)


_ID_CHECK_REFUSALS: Mapping[str, str] = {
    "closed": "too many wrong answers; use the one-time code",
    "locked": "too many wrong tries; try again later",
}


def _refuse_id_check(state: id_check.IdCheckState, now: datetime) -> None:
    """Raise ``IdentityCheckError`` when the ID check takes no answer at ``now``."""
    reason = state.refusal(now)
    if reason is not None:
        raise IdentityCheckError(_ID_CHECK_REFUSALS[reason], reason=reason)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _ends_of(path: Path) -> tuple[int, bytes, bytes]:
    """Size, first and last KiB of a file (what the content checks need)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(1024)
        f.seek(max(0, size - 1024))
        return size, head, f.read(1024)


__all__ = ["RULESET_VERSION", "ServiceDeliveryService"]
