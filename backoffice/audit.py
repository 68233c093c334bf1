"""The audit trail: an append-only, hash-chained record of every state change.

Each event's hash covers the previous event's hash and its own content, so an altered,
removed or inserted event breaks the chain; the head (:class:`AuditHead`), moved in the same
transaction as every append, records the chain's last event and length, so a trail cut off
at the end shows too. :func:`verify_audit_chain` names every problem it finds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, event, text
from sqlmodel import Field, Session, SQLModel, select

from backoffice.crypto import EncryptedJSON


def utcnow() -> datetime:
    # Whole microseconds in UTC: the same instant reads back identically on SQLite and
    # PostgreSQL, which the audit hash relies on.
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite gives them back naive)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _utc_text(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat()


#: Serialises appends to the chain on PostgreSQL (the chain needs one writer): taken by
#: :func:`append_audit`, and by the outbox's drain before :func:`append_audit_batch`.
AUDIT_LOCK_KEY = 0x626F5F6175646974  # "bo_audit"


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


def append_audit_batch(session: Session, events: list[tuple[str, int | None, str, dict]]
                       ) -> None:
    """Append several audit events, chained, with one read of the chain's head.

    The same chain as :func:`append_audit`, without a query per event: the outbox's drain
    records dozens at a time. The caller already holds the chain's write lock: on PostgreSQL
    the advisory lock :data:`AUDIT_LOCK_KEY`, on SQLite a write earlier in the transaction
    (the drain's lease fence).
    """
    if not events:
        return
    session.flush()
    last = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    prev = last.hash if last else ""
    for action, document_id, actor, data in events:
        at = utcnow()
        digest = event_hash(prev, at, actor, document_id, action, data)
        session.add(AuditEvent(at=at, actor=actor, document_id=document_id, action=action,
                               data=data, prev_hash=prev, hash=digest))
        prev = digest
    session.flush()


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
