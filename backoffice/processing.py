"""Processing: read a stored document, validate it, route it, persist the outcome.

This is the business logic the flows call; it runs without Prefect.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, delete, select

from backoffice.masking import mask_text
from backoffice.models import CheckResult, DocType
from backoffice.routing import RouteDecision, route
from backoffice.settings import Settings
from backoffice.store import CheckRow, Document, FieldValue, Status, append_audit, set_status
from ocr.decode import DecodeError, Limits
from ocr.pipeline import PageReading, Recognizer, read_document


def limits_from(settings: Settings) -> Limits:
    return Limits(max_bytes=settings.max_file_bytes, max_pixels=settings.max_pixels,
                  max_pages=settings.max_pdf_pages)


def validate_fields(doc_type: DocType, values: dict[str, str | None],
                    today: date | None = None, lookup: Any = None) -> list[CheckResult]:
    """Run the registered rules for a document type on plain field values."""
    from validators.registry import RuleContext, run_rules

    ctx = RuleContext(today=today or date.today(), lookup=lookup)
    return run_rules(doc_type, values, ctx=ctx)


def system_lookup():
    """The read-only lookup of the downstream systems, when they are configured
    (BACKOFFICE_CORE_URL and BACKOFFICE_CLAIMS_URL); None makes cross-system rules
    report themselves skipped."""
    core, claims = os.environ.get("BACKOFFICE_CORE_URL"), os.environ.get("BACKOFFICE_CLAIMS_URL")
    if not (core and claims):
        return None
    from backoffice.lookup_rest import RestLookup

    return RestLookup(core, claims)


def validate_reading(reading: PageReading, today: date | None = None,
                     lookup: Any = None) -> list[CheckResult]:
    values = {name: f.value for name, f in reading.fields.items()}
    return validate_fields(reading.doc_type, values, today=today, lookup=lookup)


def route_reading(reading: PageReading, checks: list[CheckResult],
                  settings: Settings) -> RouteDecision:
    return route(reading.doc_type, reading.fields, checks, reading.quality,
                 min_confidence=settings.review_min_field_confidence,
                 min_id_confidence=settings.review_min_id_number_confidence)


def extraction_record(source: str, reading: PageReading | None, checks: list[CheckResult],
                      error: str | None = None, pages: int = 1) -> dict[str, Any]:
    """The `backoffice extract --json` object (contract in ARCHITECTURE.md)."""
    if reading is None:
        return {"source": source, "doc_type": DocType.UNKNOWN.value, "fields": {},
                "quality": {}, "checks": [], "error": error}
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
    }
    if pages > 1:
        record["page"] = reading.page + 1
    corrected = {n: f.corrections for n, f in reading.fields.items() if f.corrections}
    if corrected:
        record["corrections"] = corrected
    return record


def extract_file(path: Path, recognizer: Recognizer, settings: Settings,
                 today: date | None = None) -> list[dict[str, Any]]:
    """Read one file for the CLI: one record per page, or one record with an error."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [extraction_record(source, None, [], error=f"cannot read file: {exc.strerror}")]
    try:
        readings = read_document(data, recognizer, limits_from(settings))
    except DecodeError as exc:
        return [extraction_record(source, None, [], error=mask_text(str(exc)))]
    records = []
    for reading in readings:
        checks = validate_reading(reading, today)
        records.append(extraction_record(source, reading, checks, pages=len(readings)))
    return records


def _save_page(session: Session, doc: Document, reading: PageReading,
               checks: list[CheckResult], decision: RouteDecision) -> None:
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
    set_status(session, doc, Status.PROCESSED)
    append_audit(session, "processed", document_id=doc.id, data={
        "doc_type": reading.doc_type.value, "ocr_seconds": reading.seconds,
        "failed_checks": [c.rule for c in checks if not c.passed],
    })
    reason = "; ".join(decision.reasons) if decision.reasons else None
    if decision.status == "approved":
        from backoffice.outbox import approve_document

        # Straight through: the approval and its outbox messages in one transaction.
        approve_document(session, doc, actor="system")
        return
    target = {"in_review": Status.IN_REVIEW, "rejected": Status.REJECTED}[decision.status]
    set_status(session, doc, target, reason=reason)


def process_document(engine: Engine, doc_id: int, recognizer: Recognizer, settings: Settings,
                     today: date | None = None,
                     doc_types: set[str] | None = None) -> list[int]:
    """Read, validate and route one received document. Returns the ids of its pages'
    documents (a multi-page file becomes one document per page).

    ``doc_types``: route only documents of these types; one of another type (by its first
    page) goes back to ``received`` with the reason, for a later run without the filter.
    """
    with Session(engine) as session:
        doc = session.get(Document, doc_id)
        if doc is None or doc.status is not Status.RECEIVED:
            return []
        set_status(session, doc, Status.PROCESSING)
        session.commit()
        path = Path(doc.stored_path)
    try:
        readings = read_document(path.read_bytes(), recognizer, limits_from(settings))
    except DecodeError as exc:
        with Session(engine) as session:
            doc = session.get(Document, doc_id)
            set_status(session, doc, Status.QUARANTINED, reason=mask_text(str(exc)))
            session.commit()
        return [doc_id]
    if doc_types is not None and readings and readings[0].doc_type.value not in doc_types:
        with Session(engine) as session:
            doc = session.get(Document, doc_id)
            set_status(session, doc, Status.RECEIVED,
                       reason=f"left for later: {readings[0].doc_type.value} is outside this "
                       "run's document-type filter")
            session.commit()
        return []
    ids = []
    lookup = system_lookup()
    with Session(engine) as session:
        doc = session.get(Document, doc_id)
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
            checks = validate_reading(reading, today, lookup)
            decision = route_reading(reading, checks, settings)
            _save_page(session, page_doc, reading, checks, decision)
            ids.append(page_doc.id)
        session.commit()
    return ids
