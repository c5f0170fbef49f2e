"""The ports through which every outgoing SMS and email leaves the platform.

``MessageSender`` carries notices and one-time codes: it returns when the message is durably
handed over (stored or accepted). ``Provider`` carries electronic service (送达): each submission
belongs to one delivery attempt, its acceptance is evidence (the provider's reply, verbatim), and
the provider reports later receipts (SMPP ``deliver_sm`` delivery receipts, DSNs) to a
``ReceiptSink`` and what recipients send back (an SMS reply) to a ``ReplySink``. The embedded
default for both is the local outbox (``outbox.py``); SMTP (``providers/smtp.py``) and SMPP 3.4
(``providers/smpp.py``) are the real channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class MessagePurpose(StrEnum):
    HEARING_NOTICE = "hearing_notice"
    ONE_TIME_CODE = "one_time_code"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    channel: Channel
    recipient: str
    body: str
    purpose: MessagePurpose
    subject: str = ""
    # What the message is about (participant id, attempt id): never personal data.
    reference: str = ""


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: UUID
    channel: Channel


class MessageSender(Protocol):
    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Hand ``message`` over durably; raise ``DeliveryError`` if it could not be."""
        ...


class DeliveryError(Exception):
    """A message could not be handed over. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


# Electronic service ----------------------------------------------------------------------------


class FailureKind(StrEnum):
    """How a channel failed, which decides what happens next (cf. GOV.UK Notify's providers):
    temporary → retried with backoff; permanent → the address is no good, fall back to another
    channel; technical → our side or the provider's is broken, retried and reported."""

    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    TECHNICAL = "technical"


@dataclass(frozen=True, slots=True)
class Submission:
    """One message of one delivery attempt, as a provider sends it."""

    attempt_id: UUID
    channel: Channel
    recipient: str  # E.164 phone number (+8613800138000) or an email address
    subject: str  # email only
    body: str
    # Stable for the attempt, so a resend after a crash is recognisably the same message: the
    # email's Message-ID (``<attempt-id@domain>``); for SMS our reference for the operator.
    message_id: str
    # Ask for a delivery report (SMPP registered_delivery, SMTP DSN NOTIFY=SUCCESS,FAILURE,DELAY).
    request_receipt: bool = True


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message. ``raw`` is its reply verbatim (evidence)."""

    provider_id: str  # SMPP: submit_sm_resp message_id; SMTP: our Message-ID
    raw: str
    # True when the acceptance itself is the message reaching the recipient's system (an SMTP
    # server that is the recipient's own, not a relay; the outbox): a tier-1 delivery event.
    reached_recipient_system: bool = False


class ProviderError(Exception):
    """The provider refused or could not take the message. ``raw`` is what it said, verbatim."""

    def __init__(self, message: str, *, kind: FailureKind, raw: str = "", code: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.raw = raw
        self.code = code  # the provider's status code as text (SMTP reply code, SMPP status)


class ReceiptStatus(StrEnum):
    """What a delivery receipt says about the message."""

    DELIVERED = "delivered"  # reached the handset / the recipient's mailbox
    TEMPORARY_FAILURE = "temporary_failure"  # not yet; the provider keeps trying or gave up for now
    PERMANENT_FAILURE = "permanent_failure"  # cannot be delivered to this address
    ACCEPTED = "accepted"  # an intermediate state (ENROUTE, ACCEPTD): evidence, no change
    READ = "read"  # a read report: a rebuttable presumption of knowledge, never delivery itself


@dataclass(frozen=True, slots=True)
class Receipt:
    channel: Channel
    provider_id: str  # matches ``Accepted.provider_id``
    status: ReceiptStatus
    raw: str  # verbatim (the deliver_sm short_message and TLVs as text, the DSN)
    received_at: datetime
    # When the provider says it happened (SMPP "done date"), if it says.
    happened_at: datetime | None = None
    error_code: str = ""


class ReceiptSink(Protocol):
    async def __call__(self, receipt: Receipt) -> None:
        """Store the receipt durably (before the provider is acknowledged where possible)."""
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A message a recipient sent back on a channel (an SMS from the handset: SMPP
    mobile-originated deliver_sm), as the provider received it. Evidence, whatever it says: a
    clerk reads it and decides whether it confirms receipt (第三十一条第二款第（一）项)."""

    channel: Channel
    sender: str  # as the provider gives it, "+" before an international number
    text: str  # decoded; one part of a concatenated message is one Reply
    raw: str  # verbatim (the deliver_sm read out, and its bytes)
    received_at: datetime
    # One part of a concatenated message: "reference/sequence/total", else "".
    part: str = ""


class ReplySink(Protocol):
    async def __call__(self, reply: Reply) -> None:
        """Store the reply durably (before the provider is acknowledged)."""
        ...


class Provider(Protocol):
    """A channel for electronic service. Built once, ``start``-ed with the sinks for its receipts
    and for recipients' replies (a channel that carries none ignores it), ``stop``-ped at
    shutdown; ``submit`` may be called concurrently."""

    channel: Channel

    async def start(self, receipts: ReceiptSink, replies: ReplySink | None = None) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, submission: Submission) -> Accepted:
        """Hand the message over; raise ``ProviderError`` if it was not taken."""
        ...
