"""Baseline: the store of the last release before claim cases (the parent of 79e915e).

Revision ID: 0001
Revises:
Create Date: 2026-12-05

Documents, their originals, fields, checks and risk signals; the audit trail and its head;
the outbox; the task payloads. A store made by ``create_all`` before migrations holds
some or all of these tables already: those are kept as they are (``tests/data/
schema_79e915e.sql`` is what that release created, and the test holds this revision to it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _create(name: str, *elements: sa.SchemaItem, indexes: tuple = ()) -> None:
    """Create a table and its indexes (name, columns), unless it is there already."""
    ctx = op.get_context()
    if not ctx.as_sql and sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *elements)
    for index, columns in indexes:
        op.create_index(index, name, columns, unique=False)


def upgrade() -> None:
    _create(
        "auditevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_auditevent_document_id", ["document_id"]),),
    )
    _create(
        "audithead",
        # One row, id 1 (the model's default): no sequence, as create_all made it.
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _create(
        "document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("original_name", sa.String(), nullable=False),
        sa.Column("stored_path", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("batch", sa.String(), nullable=True),
        sa.Column("status", sa.Enum("RECEIVED", "PROCESSING", "PROCESSED", "IN_REVIEW",
                                    "APPROVED", "POSTED", "REJECTED", "QUARANTINED",
                                    name="status"), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("doc_type", sa.String(), nullable=True),
        sa.Column("quality", sa.JSON(), nullable=True),
        sa.Column("ocr_lines", sa.JSON(), nullable=True),
        sa.Column("ocr_seconds", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256", "page", name="uq_document_sha_page"),
        indexes=(("ix_document_batch", ["batch"]), ("ix_document_sha256", ["sha256"]),
                 ("ix_document_status", ["status"])),
    )
    _create(
        "document_blob",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=40), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    _create(
        "task_payload",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    _create(
        "checkrow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("id"),
        indexes=(("ix_checkrow_document_id", ["document_id"]),),
    )
    _create(
        "document_risk",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("portrait_sha256", sa.String(length=64), nullable=True),
        sa.Column("portrait_region", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("document_id"),
    )
    _create(
        "fieldvalue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("raw", sa.String(), nullable=True),
        sa.Column("corrections", sa.JSON(), nullable=True),
        sa.Column("boxes", sa.JSON(), nullable=True),
        sa.Column("reviewed_value", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("document_id", "name", name="uq_field_doc_name"),
        indexes=(("ix_fieldvalue_document_id", ["document_id"]),),
    )
    _create(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_version", sa.Integer(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.Enum("PENDING", "IN_FLIGHT", "POSTED", "DEAD",
                                    name="outboxstatus"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("dead_reason", sa.String(), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remote_id", sa.String(length=200), nullable=True),
        sa.Column("replayed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("document_id", "target", "payload_version",
                            name="uq_outbox_doc_target_version"),
        sa.UniqueConstraint("idempotency_key"),
        indexes=(("ix_outbox_due", ["status", "target", "next_attempt_at"]),
                 ("ix_outbox_message_document_id", ["document_id"]),
                 ("ix_outbox_message_status", ["status"]),
                 ("ix_outbox_message_target", ["target"])),
    )


def downgrade() -> None:
    for table in ("outbox_message", "fieldvalue", "document_risk", "checkrow", "task_payload",
                  "document_blob", "document", "audithead", "auditevent"):
        op.drop_table(table)  # its indexes go with it
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS outboxstatus")
        op.execute("DROP TYPE IF EXISTS status")
