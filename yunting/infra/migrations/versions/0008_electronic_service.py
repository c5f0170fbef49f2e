"""electronic service: documents, orders, recipients, attempts, evidence events, receipts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 21:18:43.429768
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("happened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt_id", sa.Uuid(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_receipts")),
    )
    with op.batch_alter_table("delivery_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_receipts_provider", ["channel", "provider_id"], unique=False
        )
        batch_op.create_index("ix_delivery_receipts_unapplied", ["applied_at"], unique=False)

    op.create_table(
        "service_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=True),
        sa.Column("attempt_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("receipt_status", sa.String(length=24), nullable=True),
        sa.Column("reached_recipient_system", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_events")),
    )
    with op.batch_alter_table("service_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_events_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_service_events_recipient_id"), ["recipient_id"], unique=False
        )

    op.create_table(
        "service_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by", sa.Uuid(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_service_documents_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_documents")),
    )
    with op.batch_alter_table("service_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_documents_case_id"), ["case_id"], unique=False)

    op.create_table(
        "service_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("court_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("deadline_kind", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_service_orders_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["court_id"], ["courts.id"], name=op.f("fk_service_orders_court_id_courts")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["service_documents.id"],
            name=op.f("fk_service_orders_document_id_service_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_orders")),
    )
    with op.batch_alter_table("service_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_orders_case_id"), ["case_id"], unique=False)

    op.create_table(
        "service_recipients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("id_last4", sa.String(length=4), nullable=True),
        sa.Column("consent_tier", sa.String(length=8), nullable=False),
        sa.Column("consent_source", sa.Text(), nullable=False),
        sa.Column("abroad", sa.Boolean(), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rule_id", sa.String(length=32), nullable=True),
        sa.Column("ruleset_version", sa.String(length=64), nullable=True),
        sa.Column("decision_reason", sa.String(length=64), nullable=True),
        sa.Column("presumption", sa.Boolean(), nullable=False),
        sa.Column("deadline_on", sa.String(length=10), nullable=True),
        sa.Column("postal_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id_check_failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["service_orders.id"],
            name=op.f("fk_service_recipients_order_id_service_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_service_recipients_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_recipients")),
    )
    with op.batch_alter_table("service_recipients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_recipients_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "service_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("try_no", sa.Integer(), nullable=False),
        sa.Column("retry_of", sa.Uuid(), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["service_orders.id"],
            name=op.f("fk_service_attempts_order_id_service_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["service_recipients.id"],
            name=op.f("fk_service_attempts_recipient_id_service_recipients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_attempts")),
    )
    with op.batch_alter_table("service_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_service_attempts_provider", ["channel", "provider_id"], unique=False
        )
        batch_op.create_index("ix_service_attempts_recipient", ["recipient_id"], unique=False)
        batch_op.create_index("ix_service_attempts_status", ["status", "not_before"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("service_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_service_attempts_status")
        batch_op.drop_index("ix_service_attempts_recipient")
        batch_op.drop_index("ix_service_attempts_provider")

    op.drop_table("service_attempts")
    with op.batch_alter_table("service_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_recipients_order_id"))

    op.drop_table("service_recipients")
    with op.batch_alter_table("service_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_orders_case_id"))

    op.drop_table("service_orders")
    with op.batch_alter_table("service_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_documents_case_id"))

    op.drop_table("service_documents")
    with op.batch_alter_table("service_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_events_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_service_events_order_id"))

    op.drop_table("service_events")
    with op.batch_alter_table("delivery_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_receipts_unapplied")
        batch_op.drop_index("ix_delivery_receipts_provider")

    op.drop_table("delivery_receipts")
