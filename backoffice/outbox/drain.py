"""Draining the outbox: post every message exactly once downstream.

:func:`drain_once` claims due messages with a lease (``in_flight``, owner,
``lease_until``; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a single atomic UPDATE on
SQLite), posts them in a thread pool through the targets' connectors, and records the
outcomes in one transaction, fenced by the lease: a drain that lost its lease records
nothing. A drain killed mid-way leaves its messages ``in_flight``; once the lease expires
another drain claims them and posts them again under the same key, which the target
answers with the first result. So every message ends ``posted`` exactly once downstream,
or ``dead`` with a reason: on a permanent error (422 and the like), or after
``max_attempts`` transient failures (retries back off exponentially, with jitter, and
honour ``Retry-After``). When all of a document's messages are posted, the document moves
to ``posted``. Every posted and dead message is an audit event.

Rate limits are not this module's business: :func:`drain_once` calls ``throttle(target,
n)`` before claiming up to ``n`` messages for ``target`` and claims as many as it grants;
the ``drain-outbox`` flow passes one backed by Prefect global concurrency limits
(:mod:`backoffice.rate_limits`).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from sqlalchemy import and_, bindparam, func, or_, text
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backoffice.audit import AUDIT_LOCK_KEY, append_audit, append_audit_batch
from backoffice.connectors.base import (
    Connector,
    Outgoing,
    PermanentError,
    PostError,
    PostResult,
    TransientError,
)
from backoffice.outbox.table import OUTBOX, OutboxStatus, utcnow
from backoffice.store import Document, Status, set_status
from domain.masking import mask_known

log = logging.getLogger("backoffice.outbox")


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


#: ``throttle(target, n)`` blocks until posts to ``target`` are allowed and returns how many
#: (at most ``n``; ``None`` means all ``n``).
Throttle = Callable[[str, int], int | None]


@dataclass
class DrainPolicy:
    """How a drain posts: batch size, threads, lease, attempts and backoff."""

    batch_size: int = 64
    max_workers: int = 8
    lease_seconds: float = 60.0
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    max_attempts_by_target: dict[str, int] = field(default_factory=dict)

    def attempts_for(self, target: str) -> int:
        return self.max_attempts_by_target.get(target, self.max_attempts)

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential with jitter in [½, 1] of the step; at least ``Retry-After``."""
        step = min(self.backoff_max, self.backoff_base * 2 ** max(attempts - 1, 0))
        delay = step * random.uniform(0.5, 1.0)
        return max(delay, retry_after or 0.0)


@dataclass
class DrainReport:
    """Counts of one or more drain rounds."""

    claimed: int = 0
    posted: int = 0
    replayed: int = 0
    retried: int = 0
    dead: int = 0
    lost_lease: int = 0
    seconds: float = 0.0

    def __iadd__(self, other: DrainReport) -> Self:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Claimed:
    id: int
    document_id: int
    target: str
    payload: dict[str, Any] = field(repr=False)  # personal data: never in a repr
    payload_version: int
    key: str
    attempts: int


@dataclass
class _Outcome:
    message: _Claimed
    result: PostResult | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    seconds: float = 0.0


def _is_pg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _due(target: str, now: datetime, max_attempts: int):
    c = OUTBOX.c
    return and_(c.target == target, or_(
        and_(c.status == OutboxStatus.PENDING, c.next_attempt_at <= now),
        and_(c.status == OutboxStatus.IN_FLIGHT, c.lease_until < now,
             c.attempts < max_attempts)))


def _count_due(engine: Engine, target: str, now: datetime, limit: int, max_attempts: int) -> int:
    pick = sa_select(OUTBOX.c.id).where(_due(target, now, max_attempts)).limit(limit).subquery()
    with engine.connect() as conn:
        return conn.execute(sa_select(func.count()).select_from(pick)).scalar_one()


def _expire_abandoned(engine: Engine, target: str, now: datetime, max_attempts: int,
                      owner: str) -> int:
    """Dead-letter messages whose lease expired on their last allowed attempt."""
    c = OUTBOX.c
    stuck = and_(c.target == target, c.status == OutboxStatus.IN_FLIGHT, c.lease_until < now,
                 c.attempts >= max_attempts)
    with engine.connect() as conn:
        if conn.execute(sa_select(func.count()).where(stuck)).scalar_one() == 0:
            return 0
    reason = (f"lease expired on attempt {max_attempts} of {max_attempts} (a drain died while "
              "posting); it may have been posted: run reconcile, then redrive")
    with Session(engine) as session:
        if _is_pg(engine):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
        rows = session.execute(sa_update(OUTBOX).where(stuck).values(
            status=OutboxStatus.DEAD, dead_reason=reason, lease_owner=None, lease_until=None,
            updated_at=now).returning(c.id, c.document_id, c.idempotency_key)).all()
        for row in rows:
            append_audit(session, "outbox.dead", document_id=row.document_id,
                         actor=f"outbox:{owner}", data={"target": target,
                                                        "key": row.idempotency_key,
                                                        "reason": reason})
        session.commit()
    return len(rows)


def _claim(engine: Engine, target: str, owner: str, n: int, now: datetime,
           policy: DrainPolicy) -> list[_Claimed]:
    c = OUTBOX.c
    pick = (sa_select(c.id).where(_due(target, now, policy.attempts_for(target)))
            .order_by(c.next_attempt_at, c.id).limit(n))
    if _is_pg(engine):
        pick = pick.with_for_update(skip_locked=True)
    stmt = (sa_update(OUTBOX).where(c.id.in_(pick.scalar_subquery()))
            .values(status=OutboxStatus.IN_FLIGHT, lease_owner=owner,
                    lease_until=now + timedelta(seconds=policy.lease_seconds),
                    attempts=c.attempts + 1, updated_at=now)
            .returning(c.id, c.document_id, c.target, c.payload, c.payload_version,
                       c.idempotency_key, c.attempts))
    with engine.begin() as conn:
        rows = conn.execute(stmt).all()
    return [_Claimed(r.id, r.document_id, r.target, r.payload, r.payload_version,
                     r.idempotency_key, r.attempts) for r in sorted(rows, key=lambda r: r.id)]


def _masked_error(exc: PostError, message: _Claimed) -> str:
    """A system's error text, with the message's own names and addresses masked too
    (a reply may quote them; patterns alone catch only numbers)."""
    fields = message.payload.get("fields") if isinstance(message.payload, dict) else None
    return mask_known(exc.message, fields) if isinstance(fields, dict) else exc.message


def _post(connector: Connector, message: _Claimed) -> _Outcome:
    start = time.perf_counter()
    outgoing = Outgoing(message.key, message.target, message.document_id, message.payload,
                        message.payload_version)
    try:
        outcome = _Outcome(message, result=connector.post(outgoing))
    except PermanentError as exc:
        outcome = _Outcome(message, error=_masked_error(exc, message), permanent=True)
    except TransientError as exc:
        outcome = _Outcome(message, error=_masked_error(exc, message),
                           retry_after=exc.retry_after)
    except Exception as exc:  # noqa: BLE001 - a connector bug must not kill the drain
        # Retried, then dead-lettered. Only the type is logged: the message may hold values.
        log.error("connector %s failed on %s: %s", message.target, message.key,
                  type(exc).__name__)
        outcome = _Outcome(message, error=f"unexpected {type(exc).__name__}")
    outcome.seconds = time.perf_counter() - start
    return outcome


def _record(engine: Engine, owner: str, outcomes: list[_Outcome], policy: DrainPolicy,
            report: DrainReport, logger: logging.Logger | logging.LoggerAdapter) -> None:
    """Store the outcomes in one transaction, fenced by our lease."""
    c = OUTBOX.c
    now = utcnow()
    actor = f"outbox:{owner}"
    with Session(engine) as session:
        if _is_pg(engine):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
        # The fence, and the first statement a write (SQLite: take the write lock now).
        owned = set(session.execute(
            sa_update(OUTBOX).where(c.id.in_([o.message.id for o in outcomes]),
                                    c.lease_owner == owner, c.status == OutboxStatus.IN_FLIGHT)
            .values(updated_at=now).returning(c.id)).scalars())
        report.lost_lease += len(outcomes) - len(owned)  # taken over: the new owner records
        posted, retry, dead, events = [], [], [], []
        posted_docs: set[int] = set()
        for o in outcomes:
            m = o.message
            if m.id not in owned:
                continue
            if o.result is not None:
                posted.append({"b_id": m.id, "b_remote": o.result.remote_id,
                               "b_replayed": o.result.replayed})
                posted_docs.add(m.document_id)
                report.posted += 1
                report.replayed += int(o.result.replayed)
                events.append(("outbox.posted", m.document_id, actor, {
                    "target": m.target, "key": m.key, "remote_id": o.result.remote_id,
                    "attempts": m.attempts, "replayed": o.result.replayed}))
            elif o.permanent or m.attempts >= policy.attempts_for(m.target):
                reason = (f"permanent: {o.error}" if o.permanent else
                          f"gave up after {m.attempts} attempts; last error: {o.error}")
                dead.append({"b_id": m.id, "b_reason": reason, "b_error": o.error})
                report.dead += 1
                events.append(("outbox.dead", m.document_id, actor, {
                    "target": m.target, "key": m.key, "attempts": m.attempts,
                    "reason": reason}))
                logger.warning("dead-letter %s: %s", m.key, reason)
            else:
                delay = policy.backoff(m.attempts, o.retry_after)
                retry.append({"b_id": m.id, "b_error": o.error,
                              "b_next": now + timedelta(seconds=delay)})
                report.retried += 1
        cleared = {"lease_owner": None, "lease_until": None}
        by_id = c.id == bindparam("b_id")
        if posted:
            session.execute(sa_update(OUTBOX).where(by_id).values(
                status=OutboxStatus.POSTED, posted_at=now, remote_id=bindparam("b_remote"),
                replayed=bindparam("b_replayed"), **cleared), posted)
        if dead:
            session.execute(sa_update(OUTBOX).where(by_id).values(
                status=OutboxStatus.DEAD, dead_reason=bindparam("b_reason"),
                last_error=bindparam("b_error"), **cleared), dead)
        if retry:
            session.execute(sa_update(OUTBOX).where(by_id).values(
                status=OutboxStatus.PENDING, last_error=bindparam("b_error"),
                next_attempt_at=bindparam("b_next"), **cleared), retry)
        append_audit_batch(session, events)
        if posted_docs:
            unfinished = set(session.execute(
                sa_select(c.document_id).distinct().where(
                    c.document_id.in_(posted_docs), c.status != OutboxStatus.POSTED)).scalars())
            done = sorted(posted_docs - unfinished)
            docs = session.exec(select(Document).where(Document.id.in_(done))
                                .order_by(Document.id)).all() if done else []
            for doc in docs:
                if doc.status is Status.APPROVED:
                    set_status(session, doc, Status.POSTED, actor=actor)
            if done:
                from backoffice.cases import refresh_posted

                # A claim case is posted when all its messages are.
                refresh_posted(session, done, actor=actor)
        session.commit()


def new_owner(prefix: str = "drain") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def drain_once(engine: Engine, connectors: Mapping[str, Connector] | Any, *,
               owner: str | None = None, policy: DrainPolicy | None = None,
               throttle: Throttle | None = None, executor: Executor | None = None,
               logger: logging.Logger | logging.LoggerAdapter | None = None) -> DrainReport:
    """One round: claim up to ``batch_size`` due messages per target, post, record."""
    policy = policy or DrainPolicy()
    owner = owner or new_owner()
    logger = logger or log
    report = DrainReport()
    start = time.perf_counter()
    claimed: list[_Claimed] = []
    now = utcnow()
    for target in list(connectors):
        attempts = policy.attempts_for(target)
        report.dead += _expire_abandoned(engine, target, now, attempts, owner)
        due = _count_due(engine, target, now, policy.batch_size, attempts)
        if due == 0:
            continue
        if throttle is not None:
            granted = throttle(target, due)
            due = due if granted is None else min(due, granted)
            if due <= 0:
                continue
        claimed += _claim(engine, target, owner, due, utcnow(), policy)
    report.claimed = len(claimed)
    if claimed:
        own_pool = executor is None
        pool = executor or ThreadPoolExecutor(policy.max_workers)
        try:
            outcomes = list(pool.map(lambda m: _post(connectors[m.target], m), claimed))
        finally:
            if own_pool:
                pool.shutdown()
        _record(engine, owner, outcomes, policy, report, logger)
    report.seconds = time.perf_counter() - start
    return report


def outstanding(engine: Engine, targets: Iterable[str] | None = None) -> int:
    """Messages not yet settled (pending or in flight)."""
    c = OUTBOX.c
    where = c.status.in_([OutboxStatus.PENDING, OutboxStatus.IN_FLIGHT])
    if targets is not None:
        where = and_(where, c.target.in_(list(targets)))
    with engine.connect() as conn:
        return conn.execute(sa_select(func.count()).where(where)).scalar_one()


def _next_due_in(engine: Engine, targets: list[str]) -> float | None:
    c = OUTBOX.c
    with engine.connect() as conn:
        pending = conn.execute(sa_select(func.min(c.next_attempt_at)).where(
            c.status == OutboxStatus.PENDING, c.target.in_(targets))).scalar_one()
        leased = conn.execute(sa_select(func.min(c.lease_until)).where(
            c.status == OutboxStatus.IN_FLIGHT, c.target.in_(targets))).scalar_one()
    times = [_aware(t) for t in (pending, leased) if t is not None]
    if not times:
        return None
    return max(0.0, (min(times) - utcnow()).total_seconds())


def _run_lane(engine: Engine, connectors: Mapping[str, Connector], *, owner: str,
              policy: DrainPolicy, throttle: Throttle | None, until_empty: bool,
              max_seconds: float | None, stop: Callable[[], bool] | None, idle_sleep: float,
              logger: logging.Logger | logging.LoggerAdapter) -> DrainReport:
    targets = list(connectors)
    total = DrainReport()
    start = time.monotonic()
    with ThreadPoolExecutor(policy.max_workers, thread_name_prefix="outbox-post") as pool:
        while not (stop and stop()):
            report = drain_once(engine, connectors, owner=owner, policy=policy,
                                throttle=throttle, executor=pool, logger=logger)
            total += report
            if report.claimed:
                logger.info("drain %s %s: claimed %d, posted %d (replayed %d), retry %d, "
                            "dead %d", owner, ",".join(targets), report.claimed,
                            report.posted, report.replayed, report.retried, report.dead)
            if max_seconds is not None and time.monotonic() - start > max_seconds:
                break
            if report.claimed:
                continue
            if until_empty and outstanding(engine, targets) == 0:
                break
            wait = _next_due_in(engine, targets)
            time.sleep(min(idle_sleep, wait if wait is not None else idle_sleep) + 0.005)
    return total


def run_drain(engine: Engine, connectors: Mapping[str, Connector] | Any, *,
              owner: str | None = None, policy: DrainPolicy | None = None,
              throttle: Throttle | None = None, until_empty: bool = True,
              max_seconds: float | None = None, stop: Callable[[], bool] | None = None,
              idle_sleep: float = 1.0, lanes: bool = True,
              logger: logging.Logger | logging.LoggerAdapter | None = None) -> DrainReport:
    """Drain rounds until nothing is outstanding (``until_empty``), time is up, or ``stop()``.

    With ``lanes`` (the default) each target is drained by its own thread with its own
    posting pool: a slow or rate-limited target does not hold the others up. Messages in
    flight under another drain's live lease count as outstanding: this drain waits for
    them (and takes them over if that lease expires).
    """
    policy = policy or DrainPolicy()
    owner = owner or new_owner()
    logger = logger or log
    targets = list(connectors)
    start = time.monotonic()
    kwargs = {"owner": owner, "policy": policy, "throttle": throttle,
              "until_empty": until_empty, "max_seconds": max_seconds, "stop": stop,
              "idle_sleep": idle_sleep, "logger": logger}
    if not lanes or len(targets) <= 1:
        total = _run_lane(engine, connectors, **kwargs)
    else:
        total = DrainReport()
        with ThreadPoolExecutor(len(targets), thread_name_prefix="outbox-lane") as pool:
            futures = [pool.submit(_run_lane, engine, {t: connectors[t]}, **kwargs)
                       for t in targets]
            for future in futures:
                total += future.result()
    # Milliseconds: a float's long tail of digits would be taken for an account number by
    # the log masking ("2.694**********25").
    total.seconds = round(time.monotonic() - start, 3)
    return total
