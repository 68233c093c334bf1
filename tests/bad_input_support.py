"""Push the bad-input corpus (fixtures/bad) through intake and processing; tabulate outcomes.

Shared by tests/test_bad_input.py and bench/bad_input_report.py.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "fixtures" / "bad"
PROCESSED_STATUSES = {"approved", "in_review", "posted"}


@dataclass
class Outcome:
    file: str
    what: str
    expected: str
    outcome: str  # quarantined | rejected | duplicate | processed | LOST | <status>
    status: str | None
    doc_type: str | None
    reason: str


def fill_inbox(inbox: Path, outside: Path) -> list[dict]:
    """Copy the corpus into `inbox` and plant its symlinks to `outside`; the expectations."""
    from backoffice.demo import EXPECTED, load_expected, plant_symlinks

    inbox.mkdir(parents=True, exist_ok=True)
    for path in BAD.iterdir():
        if path.is_file() and not path.is_symlink() and path.name != EXPECTED:
            shutil.copy2(path, inbox / path.name)
    outside.write_text("a file outside the inbox that intake must not read\n")
    plant_symlinks(BAD, inbox, outside)
    return load_expected(BAD)


def run_corpus(workdir: Path, recognizer, settings) -> tuple[list[Outcome], object]:
    """Intake + processing of the whole corpus in a fresh SQLite store under `workdir`."""
    import backoffice.outbox  # noqa: F401  (its table must exist for straight-through)
    from backoffice.intake import scan_inbox
    from backoffice.processing import process_document
    from backoffice.store import Document, make_engine

    engine = make_engine(f"sqlite:///{workdir / 'store.db'}")
    expected = fill_inbox(workdir / "inbox", workdir / "outside.txt")
    with Session(engine) as session:
        result = scan_inbox(session, workdir / "inbox", documents_dir=workdir / "documents",
                            quarantine_dir=workdir / "quarantine",
                            max_bytes=settings.max_file_bytes, batch="bad")
    for doc_id in result.received:
        process_document(engine, doc_id, recognizer, settings)
    outcomes = []
    with Session(engine) as session:
        docs = {d.original_name: d for d in session.exec(
            select(Document).where(Document.page == 0))}
        dups = {name: session.get(Document, first) for name, first in result.duplicates}
        for rec in expected:
            name = rec["file"]
            if name in dups:
                first = dups[name]
                outcomes.append(Outcome(name, rec["what"], rec["outcome"], "duplicate", None,
                                        None, f"same SHA-256 as {first.original_name} "
                                              f"(document {first.id}); not taken again"))
                continue
            doc = docs.get(name)
            if doc is None:
                outcomes.append(Outcome(name, rec["what"], rec["outcome"], "LOST", None, None,
                                        "no document and no duplicate record"))
                continue
            status = doc.status.value
            if status in PROCESSED_STATUSES:
                outcome = "processed"
                reason = doc.reason or "straight through (every field confident, rules passed)"
            else:
                outcome = status
                reason = doc.reason or ""
            outcomes.append(Outcome(name, rec["what"], rec["outcome"], outcome, status,
                                    doc.doc_type, reason))
    return outcomes, engine


def markdown_table(outcomes: list[Outcome]) -> str:
    """The input -> outcome -> reason table for a note."""
    lines = ["| input | what it is | outcome | reason |", "|---|---|---|---|"]
    for o in outcomes:
        shown = o.outcome
        if o.outcome == "processed":
            shown = f"processed: {o.doc_type}, {o.status}"
        reason = o.reason.replace("|", "/").replace("\n", " ")
        if len(reason) > 160:
            reason = reason[:157] + "..."
        lines.append(f"| `{o.file}` | {o.what} | {shown} | {reason} |")
    return "\n".join(lines)
