"""The outbox table: one row a message to one downstream target about one approved document.

Each message carries the payload (the document's fields as approved, encrypted at rest) and
a deterministic idempotency key, UNIQUE in the table (see :mod:`backoffice.outbox.enqueue`);
its ``status`` (:class:`OutboxStatus`), attempts and lease are the drain's
(:mod:`backoffice.outbox.drain`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, DateTime, Index, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from backoffice.crypto import EncryptedJSON


def utcnow() -> datetime:
    return datetime.now(UTC)



class OutboxStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    POSTED = "posted"
    DEAD = "dead"


class OutboxMessage(SQLModel, table=True):
    """A message to one downstream target about one approved document."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("document_id", "target", "payload_version",
                         name="uq_outbox_doc_target_version"),
        Index("ix_outbox_due", "status", "target", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    target: str = Field(index=True, max_length=64)
    payload: dict[str, Any] = Field(
        sa_column=Column(EncryptedJSON("outbox_message.payload"), nullable=False))
    payload_version: int = 1
    payload_sha256: str = Field(max_length=64)
    idempotency_key: str = Field(unique=True, max_length=200)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None,
                                         sa_column=Column(DateTime(timezone=True)))
    last_error: str | None = None
    dead_reason: str | None = None
    posted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    remote_id: str | None = Field(default=None, max_length=200)
    replayed: bool = False
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(DateTime(timezone=True), nullable=False))

    def __repr__(self) -> str:  # the payload is personal data: keep it out of reprs
        return (f"OutboxMessage(id={self.id}, key={self.idempotency_key!r}, "
                f"status={self.status!s})")


OUTBOX = OutboxMessage.__table__


def ensure_schema(engine: Engine) -> None:
    """Bring the store's schema, the outbox table included, to the newest migration
    (``make_engine`` does it already)."""
    from backoffice.migrations import prepare_schema

    prepare_schema(engine)
