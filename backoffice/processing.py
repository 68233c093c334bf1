"""Processing: read a stored document, validate it, route it, persist the outcome.

This is the business logic the flows call; it runs without Prefect.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, delete, select

from backoffice import blobs, cases, leases
from backoffice.assess import NOT_A_DOCUMENT, assess, system_lookup
from backoffice.audit import append_audit
from backoffice.settings import Settings
from backoffice.store import CheckRow, Document, DocumentRisk, FieldValue, Status, set_status
from domain.masking import mask_text
from domain.models import Assessment, DocType
from ocr.decode import DecodeError, Limits
from ocr.pipeline import PageReading, Recognizer, read_document


def limits_from(settings: Settings) -> Limits:
    return Limits(max_bytes=settings.max_file_bytes, max_pixels=settings.max_pixels,
                  max_pages=settings.max_pdf_pages)


def extraction_record(source: str, reading: PageReading | None,
                      assessment: Assessment | None, error: str | None = None,
                      pages: int = 1) -> dict[str, Any]:
    """The `backoffice extract --json` object (contract in ARCHITECTURE.md). ``route`` is
    what a run would do with the page: the same :func:`~backoffice.assess.assess`."""
    if reading is None or assessment is None:
        # Intake would quarantine a file it cannot read, with this reason.
        return {"source": source, "doc_type": DocType.UNKNOWN.value, "fields": {},
                "quality": {}, "checks": [], "error": error,
                "route": {"decision": "quarantined", "reasons": [error] if error else []},
                "risk": {}}
    checks = assessment.checks
    record: dict[str, Any] = {
        "source": source,
        "doc_type": reading.doc_type.value,
        "fields": {name: {"value": f.value, "confidence": round(f.confidence, 4)}
                   for name, f in reading.fields.items()},
        "quality": {
            **{name: m.model_dump() for name, m in reading.quality.metrics.items()},
            "card_found": reading.quality.card_found,
            "rotation": reading.quality.rotation,
        },
        "checks": [c.model_dump(mode="json") for c in checks],
        "error": error,
        "route": {"decision": assessment.decision.status, "reasons": assessment.decision.texts},
        "risk": risk_record(reading),
    }
    if pages > 1:
        record["page"] = reading.page + 1
    corrected = {n: f.corrections for n, f in reading.fields.items() if f.corrections}
    if corrected:
        record["corrections"] = corrected
    return record


def risk_record(reading: PageReading) -> dict[str, Any]:
    """The ``risk`` object of an extraction record: per signal its score, verdict and
    reason (the region is for the reviewer)."""
    if reading.risk is None:
        return {}
    return {name: {"score": round(s.score, 4), "flagged": s.flagged, "reason": s.reason}
            for name, s in reading.risk.signals.items()}


def _save_risk(session: Session, doc: Document, reading: PageReading) -> None:
    """The page's risk signals, and its portrait (kept in the store like an original:
    encrypted with the key ring when one is configured)."""
    import hashlib

    session.exec(delete(DocumentRisk).where(DocumentRisk.document_id == doc.id))
    if reading.risk is None:
        return
    portrait_sha = None
    region = None
    if reading.portrait_jpeg:
        portrait_sha = hashlib.sha256(reading.portrait_jpeg).hexdigest()
        blobs.StoreStorage().put(session, reading.portrait_jpeg, portrait_sha, "jpg")
        signal = reading.risk.signals.get("portrait")
        region = [list(p) for p in signal.region] if signal and signal.region else None
    session.add(DocumentRisk(
        document_id=doc.id, signals=reading.risk.model_dump(mode="json")["signals"],
        seconds=reading.risk.seconds, portrait_sha256=portrait_sha, portrait_region=region))


def extract_file(path: Path, recognizer: Recognizer, settings: Settings,
                 today: date | None = None) -> list[dict[str, Any]]:
    """Read one file for the CLI: one record per page, or one record with an error.
    The cross-system rules ask the downstream systems when the settings name them."""
    source = str(path)
    if path.exists() and not path.is_file():
        return [extraction_record(source, None, None, error="not a regular file; not read")]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [extraction_record(source, None, None,
                                  error=f"cannot read file: {exc.strerror}")]
    try:
        readings = read_document(data, recognizer, limits_from(settings))
    except DecodeError as exc:
        return [extraction_record(source, None, None, error=mask_text(str(exc)))]
    except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the others
        return [extraction_record(source, None, None, error=unreadable_reason(exc))]
    records = []
    lookup = system_lookup(settings)
    for reading in readings:
        assessment = assess(reading, settings, today=today, lookup=lookup)
        error = NOT_A_DOCUMENT if reading.doc_type is DocType.UNKNOWN else None
        records.append(extraction_record(source, reading, assessment, error=error,
                                         pages=len(readings)))
    return records


def unreadable_reason(exc: BaseException) -> str:
    """A stored, shown reason for a file the reader failed on (masked: exception texts
    may quote the data)."""
    return mask_text(f"could not be read ({type(exc).__name__}: {exc})")[:300]


def _save_page(session: Session, doc: Document, reading: PageReading,
               assessment: Assessment, case: Any = None) -> None:
    checks, decision = assessment.checks, assessment.decision
    doc.doc_type = reading.doc_type.value
    doc.quality = reading.quality.model_dump(mode="json")
    doc.ocr_lines = [ln.model_dump(mode="json") for ln in reading.lines]
    doc.ocr_seconds = reading.seconds
    session.exec(delete(FieldValue).where(FieldValue.document_id == doc.id))
    session.exec(delete(CheckRow).where(CheckRow.document_id == doc.id))
    for name, f in reading.fields.items():
        session.add(FieldValue(document_id=doc.id, name=name, value=f.value,
                               confidence=f.confidence, raw=f.raw, corrections=f.corrections,
                               boxes=[list(map(list, b)) for b in f.boxes]))
    for c in checks:
        session.add(CheckRow(document_id=doc.id, rule=c.rule, severity=c.severity.value,
                             passed=c.passed, message=c.message, fields=c.fields,
                             details=c.model_dump(mode="json")["details"]))
    _save_risk(session, doc, reading)
    set_status(session, doc, Status.PROCESSED)
    append_audit(session, "processed", document_id=doc.id, data={
        "doc_type": reading.doc_type.value, "ocr_seconds": reading.seconds,
        "failed_checks": [c.rule for c in checks if not c.passed],
        "risk_flags": reading.risk.flagged if reading.risk else [],
    })
    reason = decision.reason_text()
    if case is not None:
        # A case page does not route itself: it waits for its case's decision.
        cases.hold_page(session, doc, case, decision.status, reason)
        return
    if decision.status == "approved":
        from backoffice.outbox import approve_document

        # Straight through: the approval and its outbox messages in one transaction.
        approve_document(session, doc, actor="system")
        return
    target = {"in_review": Status.IN_REVIEW, "rejected": Status.REJECTED}[decision.status]
    set_status(session, doc, target, reason=reason)


def process_document(engine: Engine, doc_id: int, recognizer: Recognizer, settings: Settings,
                     today: date | None = None, owner: str | None = None,
                     doc_types: set[str] | None = None) -> list[int]:
    """Read, validate and route one received document. Returns the ids of its pages'
    documents (a multi-page file becomes one document per page); [] when the document
    is not `received` or another worker claimed it first.

    ``doc_types``: route only documents of these types; one of another type (by its first
    page) goes back to ``received`` with the reason, for a later run without the filter.
    """
    held = leases.claim(engine, owner or leases.new_owner(),
                        lease_seconds=settings.processing_lease_seconds, document_id=doc_id)
    if held is None:
        return []
    return process_claimed(engine, held, recognizer, settings, today, doc_types)


def process_claimed(engine: Engine, held: leases.Claim, recognizer: Recognizer, settings: Settings,
                    today: date | None = None, doc_types: set[str] | None = None) -> list[int]:
    """Process a document this worker holds under a lease (:mod:`backoffice.leases`).

    The outcome is recorded only if the lease is still ours. An exception gives the
    document back (retried, or quarantined after `processing_max_attempts`) and is
    raised again.
    """
    try:
        return _process_held(engine, held, recognizer, settings, today, doc_types)
    except Exception as exc:
        leases.release(engine, held, mask_text(f"{type(exc).__name__}: {exc}"),
                       max_attempts=settings.processing_max_attempts)
        raise


def _process_held(engine: Engine, held: leases.Claim, recognizer: Recognizer, settings: Settings,
                  today: date | None, doc_types: set[str] | None = None) -> list[int]:
    doc_id = held.document_id
    # Wherever the original is kept (backoffice.blobs); a failure to get it is raised
    # as it is: the machine or the storage, not the file (given back, process_claimed).
    data = blobs.read(held.stored_path, engine)
    try:
        readings = read_document(data, recognizer, limits_from(settings))
    except (MemoryError, OSError):
        raise  # the machine, not the file: given back and retried (process_claimed)
    except Exception as exc:  # noqa: BLE001 - a file the reader fails on is quarantined
        reason = (mask_text(str(exc)) if isinstance(exc, DecodeError)
                  else unreadable_reason(exc))
        with Session(engine) as session:
            if not leases.hold(session, held):
                session.rollback()
                return []
            doc = session.get(Document, doc_id)
            set_status(session, doc, Status.QUARANTINED, reason=reason)
            session.commit()
        return [doc_id]
    if doc_types is not None and readings and readings[0].doc_type.value not in doc_types:
        with Session(engine) as session:
            if not leases.hold(session, held):
                session.rollback()
                return []
            doc = session.get(Document, doc_id)
            # Not a failed attempt: the document was only left for another run.
            doc.attempts = max(doc.attempts - 1, 0)
            set_status(session, doc, Status.RECEIVED,
                       reason=f"left for later: {readings[0].doc_type.value} is outside this "
                       "run's document-type filter")
            session.commit()
        return []
    ids = []
    lookup = system_lookup(settings)
    with Session(engine) as session:
        if not leases.hold(session, held):
            # Taken over after our lease ran out: the new holder records the outcome.
            session.rollback()
            return []
        doc = session.get(Document, doc_id)
        case = cases.case_of(session, doc)
        kind = cases.bundle_kind(r.doc_type for r in readings) if len(readings) > 1 else None
        if case is None and kind is not None:
            # A multi-page file holding a claim form with its other documents, or an ID
            # card's two sides, is a case.
            case = cases.case_for(session, f"pdf-{doc.sha256[:12]}", doc.batch, kind=kind)
        for reading in readings:
            if reading.page == 0:
                page_doc = doc
            else:
                page_doc = session.exec(select(Document).where(
                    Document.sha256 == doc.sha256, Document.page == reading.page)).first()
                if page_doc is None:
                    page_doc = Document(
                        sha256=doc.sha256, page=reading.page, parent_id=doc.id,
                        original_name=doc.original_name, stored_path=doc.stored_path,
                        size_bytes=doc.size_bytes, format=doc.format, source=doc.source,
                        batch=doc.batch, status=Status.PROCESSING)
                    session.add(page_doc)
                    session.flush()
                    append_audit(session, "page_split", document_id=page_doc.id,
                                 data={"parent": doc.id, "page": reading.page + 1})
            if case is not None:
                cases.join_case(session, case, page_doc)
            _save_page(session, page_doc, reading,
                       assess(reading, settings, today=today, lookup=lookup), case)
            ids.append(page_doc.id)
        case_id = case.id if case is not None else None
        session.commit()
    if case_id is not None:
        cases.assess_case(engine, case_id, settings, lookup=lookup, today=today)
    return ids
