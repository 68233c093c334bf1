"""Retention and erasure: how long personal data is kept, and a data subject's request.

**Retention** (:func:`apply_retention`): a period per kind of data, in days, each off
(kept) unless set (``BACKOFFICE_RETAIN_<KIND>_DAYS``):

``originals``
    the original files (local files, ``document_blob`` rows, quarantined files) and the
    recognised text lines (``document.ocr_lines``) of documents settled (``posted``,
    ``rejected``, ``quarantined``) longer ago than the period. The reference becomes
    ``erased:<request>``; reading it says the original was erased.
``review_images``
    what a reviewer is shown besides the fields: the ID card portraits cropped into the
    store (``document_risk.portrait_sha256``), for settled documents. (The review
    pictures themselves are drawn on demand from the original and removed from Prefect
    when the review ends: ``flows/review_document.py``.)
``fields``
    the extracted values of settled documents (``fieldvalue.value``, ``raw``,
    ``reviewed_value``, ``boxes``, ``corrections``) and the payloads of their delivered
    outbox messages (the payload's SHA-256, the idempotency key and the downstream
    system's id stay: what was sent can still be proven, not read).
``audit``
    the data of audit events older than the period (:func:`backoffice.audit.erase_event_data`:
    the chain and its published checkpoints still verify; the events' actions, actors,
    documents and times stay).

A document still in flight (received, being read, in review, approved and not yet
posted) is never touched by retention. Each run records one ``retention.applied`` audit
event with its counts and no data. The ``apply-retention`` deployment runs it daily.

**Erasure** (:func:`erase_customer`, ``backoffice erase --customer ID``): every document
holding that ID number (18 digits, or its 15-digit form) in any ID-number field, with the
other documents of their cases (a claim case is one person's), loses its original, its
fields, its portrait and its outbox payloads, and the audit events about those documents
lose their data, at once, whatever the retention periods. Documents still moving
(received, being read, approved and not yet posted) block the erasure with a message:
let them settle first. Documents waiting for a person (``processed`` in a case,
``in_review``) are rejected as erased when ``include_open`` is given, otherwise they
block it too. The erasure is recorded as an ``erasure`` audit event naming the request,
the documents and the counts (no personal data), and the report lists the downstream
postings already made, which the bank must have erased there.

Stores cannot be searched by an encrypted value: the customer's documents are found by
reading every ID-number field (a full pass over ``fieldvalue``'s ID-number rows).
SQLite overwrites deleted content (``secure_delete``) and the WAL is checkpointed after an
erasure; PostgreSQL keeps dead row versions until ``VACUUM``, which :func:`erase_customer`
runs on the affected tables when it can. Backups are outside the store's reach: keep them
encrypted, with a shorter life than the retention periods.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backoffice import blobs
from backoffice.audit import AuditEvent, append_audit, as_utc, erase_event_data, utcnow
from backoffice.outbox.table import OutboxMessage, OutboxStatus
from backoffice.settings import Settings
from backoffice.store import (
    FINAL_STATUSES,
    Case,
    CaseDocument,
    Document,
    DocumentBlob,
    DocumentRisk,
    FieldValue,
    Status,
    set_status,
)
from domain import gb11643
from domain.fields import ID_NUMBER_FIELDS

#: The kinds of data with a retention period, in the order a run handles them.
KINDS = ("originals", "review_images", "fields", "audit")
ERASED_PREFIX = blobs.ERASED_PREFIX
_MOVING = {Status.RECEIVED, Status.PROCESSING, Status.APPROVED}
_WAITING = {Status.PROCESSED, Status.IN_REVIEW}


class ErasureError(ValueError):
    """An erasure that cannot be done as asked (nothing is erased then)."""


@dataclass
class Report:
    """What a retention run or an erasure did: counts per kind, never values."""

    request: str
    documents: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    downstream: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def add(self, kind: str, n: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request, "dry_run": self.dry_run,
                "documents": self.documents, "counts": dict(sorted(self.counts.items())),
                "downstream": self.downstream}


def periods(settings: Settings) -> dict[str, int | None]:
    """The retention period of each kind, in days (None: kept)."""
    return {kind: getattr(settings, f"retain_{kind}_days") for kind in KINDS}


# --- the pieces ------------------------------------------------------------------------


def _erase_originals(session: Session, docs: list[Document], request: str) -> int:
    """Delete the original files of these documents and their text lines. A file is
    deleted once (a PDF's pages share it), and only when every document referring to it is
    being erased (the same bytes sent again are one file)."""
    ids = {d.id for d in docs}
    erased = 0
    for ref in sorted({d.stored_path for d in docs}):
        if ref.startswith(ERASED_PREFIX):
            continue
        users = session.exec(select(Document).where(Document.stored_path == ref)).all()
        if any(u.id not in ids for u in users):
            continue
        blobs.delete(ref, session)
        for user in users:
            user.stored_path = ERASED_PREFIX + request
            session.add(user)
        erased += 1
    for doc in docs:
        if doc.ocr_lines is not None:
            doc.ocr_lines = None
            session.add(doc)
    return erased


def _erase_portraits(session: Session, docs: list[Document]) -> int:
    erased = 0
    for doc in docs:
        risk = session.get(DocumentRisk, doc.id)
        if risk is None or risk.portrait_sha256 is None:
            continue
        sha = risk.portrait_sha256
        risk.portrait_sha256 = None
        risk.portrait_region = None
        session.add(risk)
        session.flush()
        still = session.exec(select(DocumentRisk.document_id).where(
            DocumentRisk.portrait_sha256 == sha)).first()
        if still is None:
            blob = session.get(DocumentBlob, sha)
            if blob is not None:
                session.delete(blob)
        erased += 1
    return erased


def _erase_fields(session: Session, docs: list[Document], request: str) -> tuple[int, int]:
    ids = [d.id for d in docs]
    fields = 0
    for f in session.exec(select(FieldValue).where(FieldValue.document_id.in_(ids))):
        if f.value is None and f.raw is None and f.reviewed_value is None and not f.boxes:
            continue
        f.value = f.raw = f.reviewed_value = None
        f.boxes = None
        f.corrections = None
        session.add(f)
        fields += 1
    from backoffice.reviewers import ReviewProposal

    # A page's own proposals, and those of the cases it belongs to (their corrections
    # hold the case's values).
    cases = select(CaseDocument.case_id).where(CaseDocument.document_id.in_(ids))
    for proposal in session.exec(select(ReviewProposal).where(
            or_(ReviewProposal.document_id.in_(ids), ReviewProposal.case_id.in_(cases)),
            ReviewProposal.proposal.is_not(None))):
        proposal.proposal = None
        session.add(proposal)
    payloads = 0
    for m in session.exec(select(OutboxMessage).where(OutboxMessage.document_id.in_(ids))):
        if m.status is OutboxStatus.POSTED and m.payload != {"erased": request}:
            if isinstance(m.payload, dict) and "erased" in m.payload:
                continue
            m.payload = {"erased": request}
            session.add(m)
            payloads += 1
    return fields, payloads


def _erase_events(session: Session, events: list[int], request: str, actor: str) -> int:
    """The audit events' data, those written with data digests (older ones, whose hash
    covers the data itself, would break the chain and are left: counted apart)."""
    if not events:
        return 0
    return len(erase_event_data(session, events, request, actor=actor))


def _erasable_events(session: Session, where) -> tuple[list[int], int]:
    rows = session.exec(select(AuditEvent.id, AuditEvent.scheme, AuditEvent.action,
                               AuditEvent.data_salt).where(where)).all()
    from backoffice.audit import ERASE_ACTION

    ok = [r.id for r in rows if r.scheme and r.action != ERASE_ACTION
          and r.data_salt is not None]
    legacy = sum(1 for r in rows if not r.scheme)
    return ok, legacy


# --- retention -------------------------------------------------------------------------


def apply_retention(engine: Engine, settings: Settings, *, now: datetime | None = None,
                    dry_run: bool = False, actor: str = "retention") -> Report:
    """Erase what has outlived its retention period (see the module's docstring)."""
    now = now or utcnow()
    request = f"retention-{now:%Y%m%dT%H%M%S}"
    report = Report(request=request, dry_run=dry_run)
    with Session(engine) as session:
        _secure_delete(session)
        for kind, days in periods(settings).items():
            if days is None:
                continue
            cutoff = now - timedelta(days=days)
            if kind == "audit":
                events, legacy = _erasable_events(session, AuditEvent.at < cutoff)
                report.add("audit_events", len(events) if dry_run else
                           _erase_events(session, events, request, actor))
                if legacy:
                    report.add("audit_events_kept_written_before_digests", legacy)
                continue
            docs = [d for d in session.exec(select(Document).where(
                Document.status.in_([s.value for s in FINAL_STATUSES])))
                if as_utc(d.updated_at) < cutoff]
            if kind == "originals":
                docs = [d for d in docs if not d.stored_path.startswith(ERASED_PREFIX)
                        or d.ocr_lines is not None]
                report.add("originals", len(docs) if dry_run else
                           _erase_originals(session, docs, request))
            elif kind == "review_images":
                report.add("portraits", sum(
                    1 for d in docs if (r := session.get(DocumentRisk, d.id)) is not None
                    and r.portrait_sha256) if dry_run else _erase_portraits(session, docs))
            elif kind == "fields":
                if dry_run:
                    report.add("documents_with_fields", len(docs))
                else:
                    fields, payloads = _erase_fields(session, docs, request)
                    report.add("fields", fields)
                    report.add("outbox_payloads", payloads)
        if dry_run:
            session.rollback()
            return report
        append_audit(session, "retention.applied", actor=actor,
                     data={"request": request, "periods_days": periods(settings),
                           "counts": report.counts})
        session.commit()
    _compact(engine)
    return report


# --- erasure of one customer -----------------------------------------------------------


def _id_forms(id_number: str) -> set[str]:
    number = gb11643.compact(id_number).upper()
    if len(number) not in (15, 18) or not number[:17].isdigit():
        raise ErasureError("the customer must be given by a 15- or 18-digit resident ID "
                           "number")
    forms = {number}
    # A number with no other form (e.g. a 15-digit one of a bad date): its own form only.
    with contextlib.suppress(Exception):
        forms.add(gb11643.to_15(number) if len(number) == 18 else gb11643.to_18(number))
    return forms


def customer_documents(session: Session, id_number: str) -> list[int]:
    """The documents holding this ID number in an ID-number field (read or corrected),
    with the other documents of their cases."""
    forms = _id_forms(id_number)
    hits: set[int] = set()
    for f in session.exec(select(FieldValue).where(FieldValue.name.in_(sorted(ID_NUMBER_FIELDS)))):
        for value in (f.value, f.reviewed_value, f.raw):
            if value and gb11643.compact(value).upper() in forms:
                hits.add(f.document_id)
    docs = set(hits)
    for doc_id in hits:
        doc = session.get(Document, doc_id)
        for key in (doc_id, doc.parent_id):
            link = session.get(CaseDocument, key) if key is not None else None
            if link is not None:
                docs.update(session.exec(select(CaseDocument.document_id).where(
                    CaseDocument.case_id == link.case_id)).all())
        # The pages of one file, and the file itself, go together.
        root = doc.parent_id or doc.id
        docs.update(session.exec(select(Document.id).where(
            (Document.id == root) | (Document.parent_id == root))).all())
    return sorted(docs)


def erase_customer(engine: Engine, settings: Settings, id_number: str, *, actor: str,
                   request: str | None = None, include_open: bool = False,
                   dry_run: bool = False) -> Report:
    """Erase one data subject's personal data (see the module's docstring). Raises
    :class:`ErasureError` naming what blocks it; nothing is erased then."""
    request = (request or f"erasure-{uuid.uuid4().hex[:12]}").strip()[:200]
    report = Report(request=request, dry_run=dry_run)
    with Session(engine) as session:
        _secure_delete(session)
        ids = customer_documents(session, id_number)
        report.documents = ids
        docs = [session.get(Document, i) for i in ids]
        moving = [d for d in docs if d.status in _MOVING]
        waiting = [d for d in docs if d.status in _WAITING]
        if moving:
            raise ErasureError(
                "documents still moving: " + ", ".join(f"{d.id} ({d.status.value})"
                                                       for d in moving)
                + "; let them be read and posted (or rejected), then erase")
        if waiting and not include_open:
            raise ErasureError(
                "documents waiting for a person: " + ", ".join(
                    f"{d.id} ({d.status.value})" for d in waiting)
                + "; decide them, or erase with --include-open to reject them as erased")
        for m in session.exec(select(OutboxMessage).where(OutboxMessage.document_id.in_(ids))
                              .order_by(OutboxMessage.id)):
            if m.status is OutboxStatus.POSTED:
                report.downstream.append({"target": m.target, "document": m.document_id,
                                          "idempotency_key": m.idempotency_key,
                                          "remote_id": m.remote_id})
        events, legacy = _erasable_events(session, AuditEvent.document_id.in_(ids))
        if dry_run:
            report.add("documents", len(ids))
            report.add("audit_events", len(events))
            session.rollback()
            return report
        for doc in waiting:
            set_status(session, doc, Status.REJECTED, actor=actor,
                       reason=f"erased on request {request}")
            _reject_case(session, doc, request, actor)
        report.add("originals", _erase_originals(session, docs, request))
        report.add("portraits", _erase_portraits(session, docs))
        fields, payloads = _erase_fields(session, docs, request)
        report.add("fields", fields)
        report.add("outbox_payloads", payloads)
        for doc in docs:
            doc.original_name = ERASED_PREFIX + request
            doc.reason = (f"erased on request {request}" if doc.status is Status.REJECTED
                          else doc.reason)
            session.add(doc)
        session.flush()
        report.add("audit_events", _erase_events(session, events, request, actor))
        if legacy:
            report.add("audit_events_kept_written_before_digests", legacy)
        append_audit(session, "erasure", actor=actor, data={
            "request": request, "documents": ids, "counts": report.counts,
            "downstream_postings": len(report.downstream)})
        session.commit()
    _compact(engine)
    return report


def _reject_case(session: Session, doc: Document, request: str, actor: str) -> None:
    from backoffice.store import CaseStatus

    link = session.get(CaseDocument, doc.id)
    case = session.get(Case, link.case_id) if link is not None else None
    if case is not None and case.status in (CaseStatus.OPEN, CaseStatus.IN_REVIEW):
        case.status = CaseStatus.REJECTED
        case.reason = f"erased on request {request}"
        case.decided_by = actor
        case.decided_at = utcnow()
        session.add(case)


def _secure_delete(session: Session) -> None:
    """SQLite: overwrite deleted content with zeros on this connection (no free page keeps
    an erased value)."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("PRAGMA secure_delete = ON")


def _compact(engine: Engine) -> None:
    """Let the erased bytes go from the database's files where the database allows it."""
    try:
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        elif engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("fieldvalue", "document", "document_blob", "document_risk",
                              "outbox_message", "auditevent"):
                    conn.execute(text(f"VACUUM {table}"))
    except Exception as exc:  # noqa: BLE001 - best effort: the rows are erased either way
        logging.getLogger(__name__).warning(
            "erased rows not compacted (%s): run VACUUM / wal_checkpoint yourself",
            type(exc).__name__)
