"""The store: SQLModel tables and the only module that knows SQL.

SQLite by default, PostgreSQL at scale; same code, one URL setting.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint, event, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select

from backoffice.crypto import EncryptedJSON, EncryptedText


def utcnow() -> datetime:
    # Whole microseconds in UTC: the same instant reads back identically on SQLite and
    # PostgreSQL, which the audit hash relies on.
    return datetime.now(UTC)


def _utc_text(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat()


class Status(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    POSTED = "posted"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


# The lifecycle. A transition not listed here is a bug and is refused.
TRANSITIONS: dict[Status, set[Status]] = {
    Status.RECEIVED: {Status.PROCESSING, Status.QUARANTINED},
    Status.PROCESSING: {Status.PROCESSED, Status.QUARANTINED, Status.RECEIVED},
    Status.PROCESSED: {Status.IN_REVIEW, Status.APPROVED, Status.REJECTED},
    Status.IN_REVIEW: {Status.APPROVED, Status.REJECTED, Status.IN_REVIEW},
    Status.APPROVED: {Status.POSTED},
    Status.POSTED: set(),
    Status.REJECTED: set(),
    Status.QUARANTINED: set(),
}
FINAL_STATUSES = {Status.POSTED, Status.REJECTED, Status.QUARANTINED}


AUDIT_LOCK_KEY = 0x626F5F6175646974  # "bo_audit"; the outbox uses the same key
SCHEMA_LOCK_KEY = 0x626F5F736368656D  # "bo_schem"


class InvalidTransition(RuntimeError):
    pass


class Document(SQLModel, table=True):
    """One page-level document; a multi-page file gives one Document per page."""

    __table_args__ = (UniqueConstraint("sha256", "page", name="uq_document_sha_page"),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(index=True, max_length=64)
    page: int = 0
    parent_id: int | None = Field(default=None, foreign_key="document.id")
    original_name: str
    stored_path: str
    size_bytes: int = 0
    format: str | None = None
    source: str = "inbox"
    batch: str | None = Field(default=None, index=True)
    status: Status = Field(default=Status.RECEIVED, index=True)
    reason: str | None = None
    doc_type: str | None = None
    quality: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Recognised text is personal data: encrypted at rest when a key is configured.
    ocr_lines: list[Any] | None = Field(
        default=None, sa_column=Column(EncryptedJSON("document.ocr_lines")))
    ocr_seconds: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The worker holding the document in `processing`, until when (see backoffice.leases),
    # and how many times processing was started.
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = 0


class FieldValue(SQLModel, table=True):
    """A field of a document: the OCR value and, after review, the corrected one."""

    __table_args__ = (UniqueConstraint("document_id", "name", name="uq_field_doc_name"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    name: str
    value: str | None = Field(default=None, sa_column=Column(EncryptedText("fieldvalue.value")))
    confidence: float = 0.0
    raw: str | None = Field(default=None, sa_column=Column(EncryptedText("fieldvalue.raw")))
    corrections: list[str] | None = Field(default=None, sa_column=Column(JSON))
    boxes: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    reviewed_value: str | None = Field(
        default=None, sa_column=Column(EncryptedText("fieldvalue.reviewed_value")))


class CheckRow(SQLModel, table=True):
    """A stored check result (the latest validation run of a document)."""

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    rule: str
    severity: str
    passed: bool
    message: str = ""
    fields: list[str] | None = Field(default=None, sa_column=Column(JSON))
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class AuditEvent(SQLModel, table=True):
    """An append-only, hash-chained record of a state change."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor: str = "system"
    document_id: int | None = Field(default=None, index=True)
    action: str
    # Events may carry the before/after values of a reviewed field: encrypted at rest
    # like the fields. The hash covers the plaintext, so it verifies under any key and
    # survives a rotation; an altered ciphertext reads as a marker and fails the hash.
    data: dict[str, Any] | None = Field(
        default=None, sa_column=Column(EncryptedJSON("auditevent.data", on_tamper="mark")))
    prev_hash: str = ""
    hash: str = Field(default="", max_length=64)


class AuditHead(SQLModel, table=True):
    """The anchor of the audit chain: its last event and length, written in the same
    transaction as every append. A hash chain alone cannot show that its newest events
    were cut off; the head can."""

    id: int = Field(default=1, primary_key=True)
    last_id: int = 0
    last_hash: str = Field(default="", max_length=64)
    count: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


def _advance_audit_head(session: Session, _flush_context) -> None:
    """After each flush that added audit events, move the head (any appender, one place)."""
    added = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if not added:
        return
    last = max(added, key=lambda ev: ev.id)
    conn = session.connection()
    values = {"last_id": last.id, "last_hash": last.hash, "n": len(added), "at": utcnow()}
    moved = conn.execute(text(
        "UPDATE audithead SET last_id = :last_id, last_hash = :last_hash, "
        "count = count + :n, updated_at = :at WHERE id = 1"), values)
    if moved.rowcount == 0:
        # First append (or a trail older than the head): count what is there.
        total = conn.execute(text("SELECT count(*) FROM auditevent")).scalar_one()
        conn.execute(text(
            "INSERT INTO audithead (id, last_id, last_hash, count, updated_at) "
            "VALUES (1, :last_id, :last_hash, :total, :at)"), {**values, "total": total})


event.listen(Session, "after_flush", _advance_audit_head)


def event_hash(prev_hash: str, at: datetime, actor: str, document_id: int | None,
               action: str, data: dict[str, Any] | None) -> str:
    payload = json.dumps(
        [prev_hash, _utc_text(at), actor, document_id, action, data or {}],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def make_engine(url: str) -> Engine:
    """An engine for the store; SQLite gets WAL and a busy timeout for concurrent work."""
    if url.startswith("sqlite"):
        # hide_parameters: a database error's text must not quote personal values (it can
        # end up in a log or a Prefect state message).
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "postgresql":
        # Workers starting together on an empty database would race to create the
        # same tables (a unique violation in the catalogue): one at a time.
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            SQLModel.metadata.create_all(conn)
    else:
        SQLModel.metadata.create_all(engine)
    return engine


def append_audit(session: Session, action: str, *, document_id: int | None = None,
                 actor: str = "system", data: dict[str, Any] | None = None) -> AuditEvent:
    """Append an audit event chained to the previous one (within the caller's transaction).

    On PostgreSQL a transaction-scoped advisory lock serialises appenders, so two
    workers never chain onto the same predecessor (SQLite serialises writers itself).
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    elif bind.dialect.name == "sqlite":
        # Take the write lock before reading the head: a transaction whose first
        # statement is this read would otherwise chain onto a head that another
        # process replaces before our insert (two workers forked the chain).
        session.execute(text("UPDATE auditevent SET id = id WHERE id = -1"))
    last = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    prev = last.hash if last else ""
    at = utcnow()
    ev = AuditEvent(at=at, actor=actor, document_id=document_id, action=action, data=data,
                    prev_hash=prev, hash=event_hash(prev, at, actor, document_id, action, data))
    session.add(ev)
    return ev


def set_status(session: Session, doc: Document, status: Status, *, reason: str | None = None,
               actor: str = "system") -> None:
    """Move a document along its lifecycle and audit the move."""
    if status not in TRANSITIONS[doc.status]:
        raise InvalidTransition(f"document {doc.id}: {doc.status} -> {status} is not allowed")
    before = doc.status
    doc.status = status
    if reason is not None:
        doc.reason = reason
    doc.updated_at = utcnow()
    session.add(doc)
    session.flush()
    append_audit(session, "status", document_id=doc.id, actor=actor,
                 data={"from": before.value, "to": status.value, "reason": reason})


def _describe(ev: AuditEvent) -> str:
    return f"event {ev.id} ({ev.action}, document {ev.document_id}, at {_utc_text(ev.at)})"


def _missing_ids(after: int, before: int) -> str:
    if before - after <= 1:
        return ""
    span = f"{after + 1}" if before - after == 2 else f"{after + 1}-{before - 1}"
    return f"; ids {span} are missing"


def verify_audit_chain(session: Session) -> list[str]:
    """Problems in the audit trail, each naming the event; an empty list means intact.

    Finds altered events (hash), events removed or inserted in the middle (chain links),
    and events removed from or added at the end (the head record).
    """
    events = list(session.exec(select(AuditEvent).order_by(AuditEvent.id)))
    by_hash = {ev.hash: ev for ev in events}
    head = session.get(AuditHead, 1)
    problems: list[str] = []
    inserted: dict[int, str] = {}
    for i, ev in enumerate(events):
        want = event_hash(ev.prev_hash, ev.at, ev.actor, ev.document_id, ev.action, ev.data)
        if want != ev.hash:
            problems.append(f"{_describe(ev)}: content altered")
        prev = events[i - 1] if i else None
        expected = prev.hash if prev else ""
        if ev.prev_hash == expected or ev.id in inserted:
            continue
        anchor = by_hash.get(ev.prev_hash)
        following = events[i + 1] if i + 1 < len(events) else None
        if anchor is not None and prev is not None and anchor.id < prev.id:
            # Chained to an older event: everything in between was slipped in later.
            for other in events:
                if anchor.id < other.id < ev.id:
                    inserted[other.id] = (f"{_describe(other)}: inserted (event {ev.id} is "
                                          f"chained to event {anchor.id}); chain broken")
        elif following is not None and following.prev_hash == expected and prev is not None:
            inserted[ev.id] = (f"{_describe(ev)}: inserted (event {following.id} is chained "
                               f"to event {prev.id}); chain broken")
        elif prev is None:
            problems.append(f"event {ev.id}: chain broken; the event(s) before it were removed")
        elif head is not None and head.count == len(events) and not inserted:
            problems.append(f"{_describe(prev)}: content altered and re-hashed (event {ev.id} "
                            "still links to its original hash); chain broken")
        else:
            problems.append(f"event {ev.id}: chain broken; event(s) removed between event "
                            f"{prev.id} and event {ev.id}{_missing_ids(prev.id, ev.id)}")
    problems.extend(inserted[k] for k in sorted(inserted))
    if head is None:
        if events:
            problems.append("audit head missing: the trail's end and length cannot be checked")
        return problems
    ids = {ev.id for ev in events}
    last = events[-1] if events else None
    if head.last_id and head.last_id not in ids:
        end = f"it now ends at event {last.id}" if last else "it is now empty"
        problems.append(f"event {head.last_id} (the last one recorded in the head) was "
                        f"removed: the trail was cut off; {end}")
    elif last is not None and last.id != head.last_id:
        later = [ev for ev in events if ev.id > head.last_id]
        for ev in later:
            if ev.id not in inserted:
                problems.append(f"{_describe(ev)}: inserted after the recorded end "
                                f"(event {head.last_id})")
    elif last is not None and last.hash != head.last_hash:
        problems.append(f"{_describe(last)}: content altered and re-hashed (the head "
                        "holds another hash)")
    if head.count != len(events):
        problems.append(f"the head records {head.count} events, the trail holds {len(events)}")
    return problems


def rotate_encryption(engine: Engine, batch_size: int = 500) -> dict[str, Any]:
    """Re-encrypt every encrypted column to the primary key (plaintext rows included).

    Batches of rows, each in its own transaction, rows locked on PostgreSQL; rows already
    under the primary key are left alone, so a rotation interrupted half way is resumed by
    running it again. Afterwards no row needs the old keys: they can be removed.
    """
    from sqlalchemy import JSON as RawJSON
    from sqlalchemy import String, bindparam, type_coerce
    from sqlalchemy import select as sa_select

    from backoffice.crypto import (
        KeyConfigError,
        active_keyring,
        encrypted_columns,
        envelope_kid,
        is_envelope,
    )

    ring = active_keyring()
    if ring is None:
        raise KeyConfigError("no encryption key is configured: nothing to rotate to")
    rewritten: dict[str, int] = {}
    found: dict[str, int] = {}
    for table, column in encrypted_columns(SQLModel.metadata):
        raw_type = RawJSON() if isinstance(column.type, EncryptedJSON) else String()
        name = f"{table.name}.{column.name}"
        raw = type_coerce(column, raw_type)
        last_id = 0
        rewritten[name] = 0
        while True:
            pick = (sa_select(table.c.id, raw.label("v"))
                    .where(table.c.id > last_id, column.is_not(None))
                    .order_by(table.c.id).limit(batch_size))
            if engine.dialect.name == "postgresql":
                pick = pick.with_for_update()
            with engine.begin() as conn:
                rows = conn.execute(pick).all()
                if not rows:
                    break
                last_id = rows[-1].id
                updates = []
                for row in rows:
                    value = row.v
                    if value is None:
                        continue
                    if is_envelope(value):
                        kid = envelope_kid(value)
                        found[kid] = found.get(kid, 0) + 1
                        if kid == ring.primary:
                            continue
                        plain = ring.decrypt(value, column.type.context)
                    else:
                        found["(plaintext)"] = found.get("(plaintext)", 0) + 1
                        if isinstance(column.type, EncryptedJSON):
                            plain = json.dumps(value, ensure_ascii=False,
                                               separators=(",", ":"), default=str).encode()
                        else:
                            plain = str(value).encode("utf-8")
                    updates.append({"b_id": row.id,
                                    "b_v": ring.encrypt(plain, column.type.context)})
                if updates:
                    conn.execute(table.update().where(table.c.id == bindparam("b_id"))
                                 .values({column.name: bindparam("b_v", type_=raw_type)}),
                                 updates)
                    rewritten[name] += len(updates)
    return {"primary": ring.primary, "rewritten": rewritten, "found_under": found}
