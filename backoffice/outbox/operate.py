"""Operating the outbox: counts, listing, redrive and purge.

Every redrive and purge is an audit event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import and_, func
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from backoffice.audit import append_audit
from backoffice.outbox.table import OUTBOX, OutboxMessage, OutboxStatus, utcnow


def counts(session: Session) -> dict[str, dict[str, int]]:
    """Messages per target and status."""
    rows = session.execute(sa_select(OUTBOX.c.target, OUTBOX.c.status, func.count())
                           .group_by(OUTBOX.c.target, OUTBOX.c.status)).all()
    out: dict[str, dict[str, int]] = {}
    for target, status, n in rows:
        out.setdefault(target, {})[OutboxStatus(status).value] = n
    return out


def list_messages(session: Session, *, status: OutboxStatus | None = None,
                  target: str | None = None, document_id: int | None = None,
                  limit: int = 100) -> list[OutboxMessage]:
    query = select(OutboxMessage)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if target is not None:
        query = query.where(OutboxMessage.target == target)
    if document_id is not None:
        query = query.where(OutboxMessage.document_id == document_id)
    return list(session.exec(query.order_by(OutboxMessage.id).limit(limit)).all())


def redrive(session: Session, *, ids: Iterable[int] | None = None, target: str | None = None,
            statuses: Iterable[OutboxStatus] = (OutboxStatus.DEAD,),
            actor: str = "operator") -> int:
    """Send messages again: back to ``pending``, attempts reset, due now. Commits.

    Safe for a message that did reach its target: the same key makes the target answer
    with its first result.
    """
    statuses = [OutboxStatus(s) for s in statuses]
    if OutboxStatus.IN_FLIGHT in statuses or OutboxStatus.POSTED in statuses:
        raise ValueError("only dead or pending messages can be re-driven")
    query = select(OutboxMessage).where(OutboxMessage.status.in_(statuses))
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(list(ids)))
    if target is not None:
        query = query.where(OutboxMessage.target == target)
    messages = session.exec(query.order_by(OutboxMessage.id)).all()
    now = utcnow()
    for m in messages:
        append_audit(session, "outbox.redrive", document_id=m.document_id, actor=actor, data={
            "target": m.target, "key": m.idempotency_key, "was": m.status.value,
            "dead_reason": m.dead_reason})
        m.status, m.attempts, m.next_attempt_at = OutboxStatus.PENDING, 0, now
        m.dead_reason, m.lease_owner, m.lease_until, m.updated_at = None, None, None, now
        session.add(m)
    session.commit()
    return len(messages)


def purge(session: Session, *, older_than: timedelta, statuses: Iterable[OutboxStatus] = (
          OutboxStatus.POSTED,), target: str | None = None, actor: str = "operator") -> int:
    """Delete settled messages last changed before ``now - older_than``. Commits.

    Only ``posted`` and ``dead`` messages can be purged; the audit trail keeps a record.
    """
    statuses = [OutboxStatus(s) for s in statuses]
    if any(s not in (OutboxStatus.POSTED, OutboxStatus.DEAD) for s in statuses):
        raise ValueError("only posted or dead messages can be purged")
    c = OUTBOX.c
    where = and_(c.status.in_(statuses), c.updated_at < utcnow() - older_than)
    if target is not None:
        where = and_(where, c.target == target)
    rows = session.execute(sa_select(c.id, c.target, c.status, c.idempotency_key)
                           .where(where).order_by(c.id)).all()
    if rows:
        session.execute(sa_delete(OUTBOX).where(c.id.in_([r.id for r in rows])))
        append_audit(session, "outbox.purged", actor=actor, data={
            "count": len(rows), "statuses": sorted({OutboxStatus(r.status).value for r in rows}),
            "first_id": rows[0].id, "last_id": rows[-1].id,
            "older_than_seconds": older_than.total_seconds()})
    session.commit()
    return len(rows)
