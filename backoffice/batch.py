"""Batches: which received documents a run takes, a dry run, and a batch's progress."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backoffice.settings import Settings
from backoffice.store import Document, Status
from domain.masking import mask_text, mask_value

#: Statuses of a document that a run has finished with.
SETTLED = {Status.PROCESSED, Status.IN_REVIEW, Status.APPROVED, Status.POSTED,
           Status.REJECTED, Status.QUARANTINED}


def received_ids(engine: Engine, first: list[int], limit: int | None = None) -> list[int]:
    """The documents a run processes: ``first`` (this run's intake), then any older
    ``received`` ones (left by a filtered, limited or crashed run), at most ``limit``."""
    with Session(engine) as session:
        waiting = session.exec(select(Document.id).where(
            Document.status == Status.RECEIVED, Document.page == 0)
            .order_by(Document.id)).all()
    waiting_set = set(waiting)
    ids = [i for i in dict.fromkeys([*first, *waiting]) if i in waiting_set]
    return ids[:limit] if limit is not None else ids


def statuses(engine: Engine, ids: list[int]) -> dict[int, Status]:
    """The current status of each of these documents."""
    if not ids:
        return {}
    with Session(engine) as session:
        rows = session.exec(select(Document.id, Document.status)
                            .where(Document.id.in_(ids))).all()
    return {i: Status(s) for i, s in rows}


def with_pages(engine: Engine, ids: list[int]) -> list[int]:
    """These documents and the page documents split from them, in id order."""
    if not ids:
        return []
    with Session(engine) as session:
        pages = session.exec(select(Document.id).where(Document.parent_id.in_(ids))).all()
    return sorted({*ids, *pages})


@dataclass
class BatchProgress:
    total: int
    settled: int
    by_status: dict[str, int]


def batch_progress(engine: Engine, batch: str) -> BatchProgress:
    """How far a batch is: documents taken in, and how many a run has finished with."""
    with Session(engine) as session:
        statuses = session.exec(select(Document.status).where(Document.batch == batch)).all()
    counts = Counter(Status(s) for s in statuses)
    return BatchProgress(total=len(statuses),
                         settled=sum(n for s, n in counts.items() if s in SETTLED),
                         by_status={s.value: n for s, n in sorted(counts.items())})


def dry_run_rows(inbox: Path, recognizer: Any, settings: Settings,
                 doc_types: set[str] | None = None, limit: int | None = None
                 ) -> list[dict[str, Any]]:
    """Read and validate an inbox's files without storing, moving or posting anything.

    One masked row per page: what a real run would decide, by the same
    :func:`~backoffice.assess.assess` (fields, rules and image quality).
    """
    from backoffice.processing import extract_file

    files = sorted(p for p in inbox.rglob("*") if p.is_file()
                   and not p.name.startswith("."))[: limit or None]
    rows = []
    for path in files:
        for record in extract_file(path, recognizer, settings):
            if doc_types is not None and record["doc_type"] not in doc_types:
                continue
            rows.append(_dry_row(path.relative_to(inbox), record))
    return rows


def _dry_row(rel: Path, record: dict[str, Any]) -> dict[str, Any]:
    from backoffice.reports import KEY_FIELDS

    route = record["route"]
    fields = record["fields"]
    return {"file": mask_text(str(rel)), "page": record.get("page", 1),
            "type": "-" if route["decision"] == "quarantined" else record["doc_type"],
            "would_be": route["decision"],
            "key_fields": "; ".join(f"{n}={mask_value(n, fields[n]['value'])}"
                                    for n in KEY_FIELDS if fields.get(n, {}).get("value")),
            "failed_checks": ", ".join(c["rule"] for c in record["checks"] if not c["passed"]),
            "reason": mask_text("; ".join(route["reasons"]))[:300]}
