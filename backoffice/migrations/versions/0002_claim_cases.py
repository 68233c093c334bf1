"""Claim cases (79e915e): the case, its documents, the keys that find duplicate claims.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

New tables only; no column of the baseline changed. A store made by ``create_all`` after
79e915e and before migrations has them already: kept as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
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
        "claim_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("batch", sa.String(), nullable=True),
        sa.Column("status", sa.Enum("OPEN", "IN_REVIEW", "APPROVED", "POSTED", "REJECTED",
                                    name="casestatus"), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
        indexes=(("ix_claim_case_batch", ["batch"]), ("ix_claim_case_status", ["status"])),
    )
    _create(
        "case_document",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("page_route", sa.String(length=20), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["claim_case.id"]),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("document_id"),
        indexes=(("ix_case_document_case_id", ["case_id"]),),
    )
    _create(
        "case_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["claim_case.id"]),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "digest", "case_id", name="uq_case_key"),
        indexes=(("ix_case_key_case_id", ["case_id"]), ("ix_case_key_digest", ["digest"])),
    )


def downgrade() -> None:
    for table in ("case_key", "case_document", "claim_case"):
        op.drop_table(table)  # its indexes go with it
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS casestatus")
