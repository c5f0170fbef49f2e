"""Tables of the service-delivery area: the local outbox (the embedded default channel) and
electronic service (documents, orders, recipients, attempts, evidence events, receipts)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
)

from yunting.infra.db import UtcDateTime, metadata

outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("channel", String(8), nullable=False),  # sms | email
    Column("recipient", String(320), nullable=False),
    Column("subject", String(300), nullable=False, default=""),
    Column("body", Text, nullable=False),
    Column("purpose", String(32), nullable=False),  # hearing_notice | otp | ...
    Column("reference", String(64), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_outbox_messages_created", "created_at"),
)


# Electronic service (送达) ---------------------------------------------------------------------
# The database is the source of truth: queues carry only attempt ids. Every row with legal weight
# has its evidence event (verbatim, hashed, in the ledger) written in the same transaction.

service_documents = Table(
    "service_documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # judgment | ruling | notice | other
    Column("title", String(300), nullable=False),
    Column("filename", String(300), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(500), nullable=False),
    Column("uploaded_by", Uuid, nullable=True),
    Column("uploaded_at", UtcDateTime, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
)

service_orders = Table(
    "service_orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("court_id", Uuid, ForeignKey("courts.id"), nullable=False),
    Column("case_id", Uuid, ForeignKey("cases.id"), nullable=False, index=True),
    Column("document_id", Uuid, ForeignKey("service_documents.id"), nullable=False),
    Column("legal_basis", Text, nullable=False),
    # Which period the service starts (appeal_judgment | appeal_ruling | none).
    Column("deadline_kind", String(32), nullable=False),
    Column("created_by", Uuid, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

service_recipients = Table(
    "service_recipients",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid, ForeignKey("service_orders.id"), nullable=False, index=True),
    Column("person_id", Uuid, ForeignKey("persons.id"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),  # plaintiff | defendant | counsel | ...
    Column("phone", String(32), nullable=True),
    Column("email", String(320), nullable=True),
    Column("id_last4", String(4), nullable=True),
    Column("consent_tier", String(8), nullable=False),  # tier1 | tier2
    Column("consent_source", Text, nullable=False),
    Column("abroad", Boolean, nullable=False, default=False),
    # The last decision of the rule set (recomputed on every event of the recipient).
    Column("served_at", UtcDateTime, nullable=True),
    Column("rule_id", String(32), nullable=True),
    Column("ruleset_version", String(64), nullable=True),
    Column("decision_reason", String(64), nullable=True),
    Column("presumption", Boolean, nullable=False, default=False),
    Column("deadline_on", String(10), nullable=True),  # ISO date in the court's time zone
    Column("postal_requested_at", UtcDateTime, nullable=True),
    # The identity check on the recipient page (ID number digits): wrong tries, the current
    # lockout, and lockouts so far (``id_check``: the third closes the check).
    Column("id_check_failures", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("id_check_lockouts", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
)

service_attempts = Table(
    "service_attempts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("recipient_id", Uuid, ForeignKey("service_recipients.id"), nullable=False),
    Column("order_id", Uuid, ForeignKey("service_orders.id"), nullable=False),
    Column("channel", String(8), nullable=False),  # sms | email
    Column("address", String(320), nullable=False),
    Column("status", String(24), nullable=False),
    Column("try_no", Integer, nullable=False),  # 1 for the first, +1 per retry
    Column("retry_of", Uuid, nullable=True),  # the attempt this one retries or falls back from
    Column("not_before", UtcDateTime, nullable=False),  # backoff: not sent before this
    Column("message_id", String(200), nullable=False),
    Column("provider_id", String(200), nullable=True),
    # Last put on the queue: the sweeper re-queues what a queue lost (and due retries: NULL).
    Column("queued_at", UtcDateTime, nullable=True),
    Column("sending_since", UtcDateTime, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("final_at", UtcDateTime, nullable=True),
    Column("error_code", String(64), nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    # How many times a worker started sending this attempt (above 1: a resend after a crash).
    Column("sends", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_service_attempts_recipient", "recipient_id"),
    Index("ix_service_attempts_status", "status", "not_before"),
    Index("ix_service_attempts_provider", "channel", "provider_id"),
    # A reply from a handset is matched to the latest attempt sent to its number.
    Index("ix_service_attempts_address", "channel", "address", "sent_at"),
)

service_events = Table(
    "service_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Uuid, nullable=False, index=True),
    Column("recipient_id", Uuid, nullable=True, index=True),
    Column("attempt_id", Uuid, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("channel", String(8), nullable=True),
    Column("receipt_status", String(24), nullable=True),
    Column("reached_recipient_system", Boolean, nullable=False, default=False),
    Column("detail", String(64), nullable=False, default=""),  # reason code, rule id, …
    Column("summary", Text, nullable=False, default=""),
    # The evidence verbatim (raw SMTP reply, raw deliver_sm, what the recipient wrote), hashed.
    Column("raw", Text, nullable=False, default=""),
    Column("sha256", String(64), nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
)

# Receipts as they come from providers, stored before they are acknowledged; matched to the
# attempt by (channel, provider_id) when it is known (a receipt can overtake submit_sm_resp).
delivery_receipts = Table(
    "delivery_receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(8), nullable=False),
    Column("provider_id", String(200), nullable=False),
    Column("status", String(24), nullable=False),
    Column("error_code", String(32), nullable=False, default=""),
    Column("raw", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("happened_at", UtcDateTime, nullable=True),
    Column("attempt_id", Uuid, nullable=True),
    Column("applied_at", UtcDateTime, nullable=True),
    Index("ix_delivery_receipts_provider", "channel", "provider_id"),
    Index("ix_delivery_receipts_unapplied", "applied_at"),
)

# What recipients sent back (SMS replies: mobile-originated deliver_sm), stored verbatim before
# the provider acknowledges them, matched or not. A matched one is also a REPLY_RECEIVED event
# of the recipient whose latest attempt went to the sender's number.
inbound_replies = Table(
    "inbound_replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(8), nullable=False),
    Column("sender", String(32), nullable=False),  # E.164 when it reads as a number
    Column("text", Text, nullable=False),
    Column("part", String(16), nullable=False, default=""),  # "reference/sequence/total"
    Column("raw", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("attempt_id", Uuid, nullable=True),  # the attempt it answers, if one was found
    Column("recipient_id", Uuid, nullable=True),
    Index("ix_inbound_replies_sender", "channel", "sender"),
)
