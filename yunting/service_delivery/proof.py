"""Assembling the proof of service for one recipient: the rule set's decision over the stored
evidence, and the certificate's data (``certificate.CertificateData``). Pure: rows, a signed
tree head and the time in; no database, no clock.

The decision is computed again from the events rather than read from the recipient row, so the
certificate names exactly the events it rests on (the row keeps the result for lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from yunting.infra.ledger.model import SignedTreeHead
from yunting.service_delivery.addresses import masked
from yunting.service_delivery.certificate import (
    CertificateData,
    CertificateEvent,
    Deadline,
    ServiceAddress,
)
from yunting.service_delivery.deadlines import AppealKind
from yunting.service_delivery.model import ConsentTier, EvidenceKind
from yunting.service_delivery.ports import Channel, ReceiptStatus
from yunting.service_delivery.repository import EventRow, OrderRow, RecipientRow
from yunting.service_delivery.rules import (
    RejectionReason,
    ServiceDecision,
    ServiceEvent,
    decide,
)

PROBLEM_REASONS = tuple(r.value for r in RejectionReason)

ROLE_NAMES: dict[str, str] = {
    "plaintiff": "原告 Plaintiff",
    "defendant": "被告 Defendant",
    "third_party": "第三人 Third party",
    "counsel": "诉讼代理人 Counsel",
}

DEADLINE_NAMES: dict[str, str] = {
    AppealKind.JUDGMENT.value: "上诉期限 Appeal period (judgment)",
    AppealKind.RULING.value: "上诉期限 Appeal period (ruling)",
}


class Evidence(Protocol):
    """An evidence event as the rule set reads it: an ``EventRow``, or a ``RuleInput`` (the
    same columns, read without the verbatim evidence)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def receipt_status(self) -> str | None: ...
    @property
    def reached_recipient_system(self) -> bool: ...
    @property
    def detail(self) -> str: ...


def rule_event(event: Evidence) -> ServiceEvent:
    """A stored evidence event as the rule set reads it."""
    kind = EvidenceKind(event.kind)
    return ServiceEvent(
        id=str(event.id),
        kind=kind,
        at=event.at,
        channel=event.channel,
        receipt_status=ReceiptStatus(event.receipt_status) if event.receipt_status else None,
        # The rule set reads arrival from a receipt's status; the flag is the provider's
        # answer (HANDED_TO_PROVIDER) alone.
        reached_recipient_system=(
            event.reached_recipient_system and kind is EvidenceKind.HANDED_TO_PROVIDER
        ),
        rejection_reason=(
            (
                RejectionReason(event.detail)
                if event.detail in PROBLEM_REASONS
                else RejectionReason.OTHER
            )
            if kind is EvidenceKind.REJECTED
            else None
        ),
    )


def decision_for(consent_tier: str, events: Sequence[Evidence]) -> ServiceDecision:
    """The rule set over a recipient's evidence (its own DEEMED_SERVED events left out: they
    record a result, they are not evidence for it)."""
    return decide(
        tier=ConsentTier(consent_tier),
        events=[rule_event(e) for e in events if e.kind != EvidenceKind.DEEMED_SERVED],
    )


def certificate_number(recipient: RecipientRow, *, court_code: str) -> str:
    """Stable per recipient: the court's code, the order's year and the recipient id's head."""
    return f"SD-{court_code}-{recipient.created_at.year}-{recipient.id.hex[:12].upper()}"


def verify_url(public_base_url: str, sha256: str) -> str:
    return f"{public_base_url.rstrip('/')}/verify?{urlencode({'sha256': sha256})}"


def certificate_data(
    *,
    court_name: str,
    court_code: str,
    case_number: str,
    case_title: str,
    document_title: str,
    document_sha256: str,
    document_size: int,
    order: OrderRow,
    recipient: RecipientRow,
    events: Sequence[EventRow],
    tree_head: SignedTreeHead,
    public_base_url: str,
    generated_at: datetime,
    timezone: ZoneInfo,
) -> CertificateData:
    """The certificate of ``recipient``: ``events`` are the recipient's and the order's own
    (SERVICE_ORDERED), in ledger order; ``tree_head`` must cover all of them."""
    decision = decision_for(
        recipient.consent_tier, [e for e in events if e.recipient_id == recipient.id]
    )
    basis = set(decision.basis_event_ids)
    addresses = tuple(
        ServiceAddress(channel=channel, masked_address=masked(channel, address))
        for channel, address in ((Channel.SMS, recipient.phone), (Channel.EMAIL, recipient.email))
        if address
    )
    served_event = next((e for e in reversed(events) if e.kind == EvidenceKind.DEEMED_SERVED), None)
    deadline: Deadline | None = None
    if decision.served and recipient.deadline_on and order.deadline_kind in DEADLINE_NAMES:
        deadline = Deadline(
            name=DEADLINE_NAMES[order.deadline_kind],
            last_day=date.fromisoformat(recipient.deadline_on),
        )
    return CertificateData(
        certificate_no=certificate_number(recipient, court_code=court_code),
        court_name=court_name,
        case_number=case_number,
        case_title=case_title,
        document_title=document_title,
        document_sha256=document_sha256,
        document_pages=None,
        document_size=document_size,
        recipient_name=recipient.name,
        recipient_role=ROLE_NAMES.get(recipient.role, recipient.role),
        addresses=addresses,
        consent_tier=ConsentTier(recipient.consent_tier),
        legal_basis=order.legal_basis,
        served=decision.served,
        served_at=decision.served_at if decision.served else None,
        rule_id=decision.rule_id.value,
        rule_version=decision.ruleset_version,
        rule_text=decision.citation,
        events=tuple(
            CertificateEvent(
                at=e.at,
                kind=EvidenceKind(e.kind),
                channel=Channel(e.channel) if e.channel else None,
                summary=_summary(e),
                sha256=e.sha256,
                ledger_index=e.ledger_index,
                basis=str(e.id) in basis,
            )
            for e in events
        ),
        tree_size=tree_head.tree_size,
        root_hash=tree_head.root_hash.hex(),
        tree_signed_at=datetime.fromtimestamp(tree_head.timestamp_ms / 1000, UTC),
        # The QR code opens the ledger's verify page on the decision itself when there is one
        # (it names the rule and its basis), else on the document.
        verify_url=verify_url(
            public_base_url, served_event.sha256 if served_event else document_sha256
        ),
        generated_at=generated_at,
        timezone=timezone,
        deadline=deadline,
    )


def _summary(event: EventRow) -> str:
    """A short line free of personal data: the stored summary holds only masked addresses, a
    status or a rule; the free text of a problem report stays out of the certificate."""
    if event.kind == EvidenceKind.REJECTED:
        return event.detail
    return (event.summary or event.receipt_status or event.detail)[:120]
