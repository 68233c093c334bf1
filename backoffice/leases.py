"""Processing leases: a worker holds a document in `processing` only for a while.

Claiming a `received` document moves it to `processing` with an owner and a lease
expiry, atomically: ``SELECT ... FOR UPDATE SKIP LOCKED`` inside the ``UPDATE`` on
PostgreSQL (concurrent claimers skip each other's rows), a compare-and-set ``UPDATE``
on the status on SQLite (one writer at a time; the status check makes a second claim
of the same row match nothing). Each claim counts an attempt.

A worker that dies (kill -9, power loss) leaves its document in `processing`; when
the lease has run out, :func:`recover_expired` puts it back to `received` to be
claimed again, or quarantines it once it has used ``max_attempts``: a document that
kills its worker every time must not loop forever. A worker finishing late checks
its lease in the transaction that records the result (:func:`hold`), so a document
taken over by another worker is never recorded twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backoffice.audit import append_audit
from backoffice.store import Document, Status

log = logging.getLogger("backoffice.leases")
DOC = Document.__table__
_c = DOC.c


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_owner(prefix: str = "worker") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Claim:
    """A document this worker holds: its id, the attempt number and the stored file."""

    document_id: int
    owner: str
    attempt: int
    stored_path: str


def claim(engine: Engine, owner: str, *, lease_seconds: float,
          document_id: int | None = None) -> Claim | None:
    """Take the oldest `received` document (or exactly ``document_id``) with a lease.

    Returns None when there is nothing to take (or another worker took it first).
    """
    now = utcnow()
    pick = sa_select(_c.id).where(_c.status == Status.RECEIVED)
    if document_id is not None:
        pick = pick.where(_c.id == document_id)
    pick = pick.order_by(_c.id).limit(1)
    if engine.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (sa_update(DOC)
            .where(_c.id == pick.scalar_subquery(), _c.status == Status.RECEIVED)
            .values(status=Status.PROCESSING, lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=_c.attempts + 1, updated_at=now)
            .returning(_c.id, _c.attempts, _c.stored_path))
    with Session(engine) as session:
        row = session.execute(stmt).first()
        if row is None:
            session.rollback()
            return None
        append_audit(session, "status", document_id=row.id, actor=owner, data={
            "from": Status.RECEIVED.value, "to": Status.PROCESSING.value, "reason": None,
            "attempt": row.attempts, "lease_seconds": lease_seconds})
        session.commit()
    return Claim(row.id, owner, row.attempts, row.stored_path)


def hold(session: Session, claim_: Claim) -> bool:
    """In the caller's transaction: check the lease is still ours and end it.

    The first write of the recording transaction, so the row stays locked (PostgreSQL)
    or the database write-locked (SQLite) until the result is committed: a recovery
    cannot slip in between. False: the lease was lost; record nothing.
    """
    row = session.execute(
        sa_update(DOC).where(_c.id == claim_.document_id, _c.lease_owner == claim_.owner,
                             _c.status == Status.PROCESSING)
        .values(lease_owner=None, lease_until=None).returning(_c.id)).first()
    return row is not None


def renew(engine: Engine, claim_: Claim, lease_seconds: float) -> bool:
    """Extend a lease (for long documents); False if it was lost."""
    with engine.begin() as conn:
        row = conn.execute(
            sa_update(DOC).where(_c.id == claim_.document_id, _c.lease_owner == claim_.owner,
                                 _c.status == Status.PROCESSING)
            .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
            .returning(_c.id)).first()
    return row is not None


def release(engine: Engine, claim_: Claim, error: str, *, max_attempts: int) -> Status | None:
    """Give a document back after processing failed with an exception: to `received` to
    be tried again, or `quarantined` when its attempts are used up. ``error`` must be
    masked by the caller. Returns the new status (None: the lease was already lost)."""
    with Session(engine) as session:
        if not hold(session, claim_):
            session.rollback()
            return None
        final = claim_.attempt >= max_attempts
        to = Status.QUARANTINED if final else Status.RECEIVED
        reason = (f"processing failed {claim_.attempt} times (limit {max_attempts}); "
                  f"last error: {error}") if final else None
        values = {"status": to, "updated_at": utcnow()}
        if reason:
            values["reason"] = reason
        session.execute(sa_update(DOC).where(_c.id == claim_.document_id).values(**values))
        append_audit(session, "status", document_id=claim_.document_id, actor=claim_.owner,
                     data={"from": Status.PROCESSING.value, "to": to.value,
                           "reason": reason or f"processing failed: {error}",
                           "attempt": claim_.attempt})
        session.commit()
    return to


def _stale(now: datetime):
    return and_(_c.status == Status.PROCESSING,
                or_(_c.lease_until < now, _c.lease_until.is_(None)))


@dataclass
class Recovery:
    """Documents whose lease had expired: requeued and quarantined ids."""

    requeued: list[int]
    quarantined: list[int]


def recover_expired(engine: Engine, *, max_attempts: int, actor: str = "recovery") -> Recovery:
    """Requeue (or quarantine, after ``max_attempts``) documents whose lease ran out.

    Safe with many workers doing it at once: each document is moved by one ``UPDATE``
    conditional on it still being stale, so exactly one of them moves and audits it.
    """
    now = utcnow()
    with engine.connect() as conn:  # a cheap read first: no write lock when all is well
        if conn.execute(sa_select(func.count()).where(_stale(now))).scalar_one() == 0:
            return Recovery([], [])
    out = Recovery([], [])
    reason = (f"processing did not finish in {max_attempts} attempts (the worker died or "
              "hung each time); quarantined so that it does not loop forever")
    with Session(engine) as session:
        poisoned = session.execute(
            sa_update(DOC).where(_stale(now), _c.attempts >= max_attempts)
            .values(status=Status.QUARANTINED, reason=reason, lease_owner=None,
                    lease_until=None, updated_at=now)
            .returning(_c.id, _c.attempts)).all()
        requeued = session.execute(
            sa_update(DOC).where(_stale(now))
            .values(status=Status.RECEIVED, lease_owner=None, lease_until=None, updated_at=now)
            .returning(_c.id, _c.attempts)).all()
        for row in sorted(poisoned):
            append_audit(session, "status", document_id=row.id, actor=actor, data={
                "from": Status.PROCESSING.value, "to": Status.QUARANTINED.value,
                "reason": reason, "attempt": row.attempts, "lease_expired": True})
            out.quarantined.append(row.id)
        for row in sorted(requeued):
            append_audit(session, "status", document_id=row.id, actor=actor, data={
                "from": Status.PROCESSING.value, "to": Status.RECEIVED.value,
                "reason": f"lease expired during attempt {row.attempts} (worker stopped); "
                          "requeued", "attempt": row.attempts, "lease_expired": True})
            out.requeued.append(row.id)
        session.commit()
    if out.requeued or out.quarantined:
        log.warning("expired leases: %d requeued, %d quarantined", len(out.requeued),
                    len(out.quarantined))
    return out


def count_active(engine: Engine) -> dict[str, int]:
    """Documents waiting (`received`) and in progress (`processing`)."""
    with engine.connect() as conn:
        rows = conn.execute(sa_select(_c.status, func.count())
                            .where(_c.status.in_([Status.RECEIVED, Status.PROCESSING]))
                            .group_by(_c.status)).all()
    counts = {Status(s).value: n for s, n in rows}
    return {"received": counts.get("received", 0), "processing": counts.get("processing", 0)}


def holders(engine: Engine) -> dict[int, str]:
    """Documents in `processing` and the owner of each one's lease."""
    with engine.connect() as conn:
        rows = conn.execute(sa_select(_c.id, _c.lease_owner)
                            .where(_c.status == Status.PROCESSING)).all()
    return {row.id: row.lease_owner or "" for row in rows}


def expire(engine: Engine, document_ids: list[int]) -> int:
    """End the leases of these `processing` documents now (their holder is known to be
    gone): the next :func:`recover_expired` requeues them, or quarantines a poison one.
    A holder that was in fact alive records nothing later (:func:`hold` fails)."""
    if not document_ids:
        return 0
    past = utcnow() - timedelta(seconds=1)
    with engine.begin() as conn:
        rows = conn.execute(
            sa_update(DOC).where(_c.id.in_(document_ids), _c.status == Status.PROCESSING)
            .values(lease_until=past).returning(_c.id)).all()
    return len(rows)
