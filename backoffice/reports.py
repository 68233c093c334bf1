"""Run reports: masked document tables and summaries for artifacts and the CLI."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backoffice.store import CheckRow, Document, FieldValue
from domain.masking import mask_known, mask_value

KEY_FIELDS = ("name", "id_number", "issuing_authority", "valid_until", "policy_number",
              "insured_name", "claim_amount")


def document_rows(engine: Engine, ids: list[int]) -> list[dict[str, Any]]:
    """One masked row per document: what an operator may see in an artifact."""
    rows = []
    with Session(engine) as session:
        for doc_id in ids:
            doc = session.get(Document, doc_id)
            if doc is None:
                continue
            fields = {f.name: f for f in session.exec(
                select(FieldValue).where(FieldValue.document_id == doc_id))}
            failed = [c.rule for c in session.exec(select(CheckRow).where(
                CheckRow.document_id == doc_id, CheckRow.passed == False))]
            key = "; ".join(
                f"{n}={mask_value(n, fields[n].value)}" for n in KEY_FIELDS
                if n in fields and fields[n].value)
            rows.append({
                "document": doc.id,
                "page": doc.page + 1,
                "sha256": doc.sha256[:12],
                "type": doc.doc_type or "-",
                "status": doc.status.value,
                "key_fields": key,
                "failed_checks": ", ".join(failed),
                "reason": mask_known(doc.reason or "", {n: f.value for n, f in fields.items()})[:300],
            })
    return rows


def status_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(r["status"] for r in rows).items()))


def summary_markdown(counts: dict[str, int], duplicates: int = 0,
                     rows: list[dict[str, Any]] | None = None) -> str:
    total = sum(counts.values())
    lines = ["# process-inbox", "", f"**{total} documents**, {duplicates} duplicate files skipped.",
             "", "| status | documents |", "|---|---:|"]
    lines += [f"| {status} | {n} |" for status, n in counts.items()]
    straight = counts.get("approved", 0) + counts.get("posted", 0)
    if total:
        lines += ["", (f"Straight-through: {straight / total:.0%}; "
                      f"to review: {counts.get('in_review', 0) / total:.0%}.")]
    failed = Counter(rule for r in rows or [] for rule in
                     filter(None, (x.strip() for x in r.get("failed_checks", "").split(","))))
    if failed:
        lines += ["", "| failed check | documents |", "|---|---:|"]
        lines += [f"| `{rule}` | {n} |" for rule, n in failed.most_common()]
    waiting = [str(r["document"]) for r in rows or [] if r.get("status") == "in_review"]
    if waiting:
        lines += ["", (f"Waiting for review: documents {', '.join(waiting)} "
                      "(their review-document runs, or `backoffice review list`).")]
    return "\n".join(lines)
