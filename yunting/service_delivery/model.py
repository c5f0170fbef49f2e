"""Electronic service (送达): service orders, delivery attempts and their status machine, the
evidence events a recipient's service rests on. No I/O here.

A service order serves documents of a case on recipients through channels. Per recipient and
channel there is an attempt, whose status moves

    created → sending → sent → delivered | temporary_failure | permanent_failure | technical_failure

through ``plan_attempt_transition`` only. A final status never moves again: a late or duplicate
receipt is kept as evidence but changes nothing (cf. GOV.UK Notify's status updates).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConsentTier(StrEnum):
    """How the recipient's electronic address came to be used (DESIGN.md "Electronic service").

    Tier 1: the recipient provided or confirmed the address (在线诉讼规则 第二十九条、第三十一条
    第一款): served when the message reaches that system. Tier 2: the recipient consented to
    electronic service but the court found the address itself (第三十一条第二款): served on a reply,
    an acknowledgement or a litigation act that shows receipt.
    """

    TIER1 = "tier1"
    TIER2 = "tier2"


class EvidenceKind(StrEnum):
    """Every event a service rests on, recorded verbatim with its hash and entered in the ledger."""

    SERVICE_ORDERED = "SERVICE_ORDERED"
    CONSENT_RECORDED = "CONSENT_RECORDED"
    SUBMISSION_ACCEPTED = "SUBMISSION_ACCEPTED"  # the attempt was committed and queued
    HANDED_TO_PROVIDER = "HANDED_TO_PROVIDER"  # the provider took it (raw reply)
    DELIVERY_RECEIPT = "DELIVERY_RECEIPT"  # raw DLR / DSN; its status says what it reports
    DELIVERY_FAILED = "DELIVERY_FAILED"
    CONTENT_ACCESSED = "CONTENT_ACCESSED"  # opened after the identity check
    # "I have received it" on the recipient page, or a reply a clerk confirmed says so
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REPLY_RECEIVED = "REPLY_RECEIVED"  # the recipient wrote back (an SMS reply), verbatim
    REJECTED = "REJECTED"  # "report a problem" with a reason code
    FALLBACK_INITIATED = "FALLBACK_INITIATED"
    PLATFORM_OUTAGE_START = "PLATFORM_OUTAGE_START"
    PLATFORM_OUTAGE_END = "PLATFORM_OUTAGE_END"
    LITIGATION_ACT = "LITIGATION_ACT"  # the recipient acted on the document (e.g. filed an appeal)
    DEEMED_SERVED = "DEEMED_SERVED"


class AttemptStatus(StrEnum):
    CREATED = "created"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary_failure"
    PERMANENT_FAILURE = "permanent_failure"
    TECHNICAL_FAILURE = "technical_failure"


FINAL_ATTEMPT_STATUSES: frozenset[AttemptStatus] = frozenset(
    {
        AttemptStatus.DELIVERED,
        AttemptStatus.TEMPORARY_FAILURE,
        AttemptStatus.PERMANENT_FAILURE,
        AttemptStatus.TECHNICAL_FAILURE,
    }
)

_ALLOWED: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    # created → sending is the compare-and-set a worker wins before it calls a provider.
    AttemptStatus.CREATED: frozenset({AttemptStatus.SENDING, AttemptStatus.TECHNICAL_FAILURE}),
    AttemptStatus.SENDING: frozenset(
        {
            AttemptStatus.SENT,
            # The provider's acceptance is itself delivery (SMTP to the recipient's own server).
            AttemptStatus.DELIVERED,
            AttemptStatus.TEMPORARY_FAILURE,
            AttemptStatus.PERMANENT_FAILURE,
            AttemptStatus.TECHNICAL_FAILURE,
            # A worker that died mid-send: the sweeper hands the attempt back to the queue.
            AttemptStatus.CREATED,
        }
    ),
    AttemptStatus.SENT: frozenset(
        {
            AttemptStatus.DELIVERED,
            AttemptStatus.TEMPORARY_FAILURE,
            AttemptStatus.PERMANENT_FAILURE,
            AttemptStatus.TECHNICAL_FAILURE,
        }
    ),
}


class AttemptTransitionError(ValueError):
    """An attempt status change the machine does not allow."""


@dataclass(frozen=True, slots=True)
class AttemptTransition:
    from_status: AttemptStatus
    to_status: AttemptStatus
    # A change that arrived after the attempt was already final: kept as evidence, applied never.
    ignored: bool = False


def plan_attempt_transition(current: AttemptStatus, to: AttemptStatus) -> AttemptTransition:
    """The one place an attempt's status changes are decided.

    A final status is never left: anything arriving later (a duplicate or late receipt) yields
    ``ignored=True`` so the caller stores the evidence and changes nothing. Other disallowed moves
    raise ``AttemptTransitionError``.
    """
    if current in FINAL_ATTEMPT_STATUSES:
        return AttemptTransition(current, current, ignored=True)
    if to not in _ALLOWED.get(current, frozenset()):
        raise AttemptTransitionError(f"expected a status after {current}, got {to}")
    return AttemptTransition(current, to)
