"""The demo's services: stage a folder of fixtures (documents with their ground truth) in an
inbox, and score what the store made of them.

A fixtures folder holds sets (``idcards/``, ``claims/``, ``cases/``, ``bad/``), each a folder of
documents; ``truth.jsonl`` in a set gives each file's expected fields, and the bad-input
corpus's ``expected.jsonl`` each file's outcome (and the symbolic links to plant, which
git cannot carry). The product reads that folder as data; it never imports it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backoffice.accuracy import AccuracyTable, load_truth, split_key
from backoffice.audit import AuditEvent
from backoffice.intake import copy_tree
from backoffice.store import Case, Document, FieldValue
from domain.masking import mask_text
from validators.rules.case import IDENTITY

#: The sets a fixtures folder may hold, in the order they are taken in.
FIXTURE_SETS = ("idcards", "claims", "cases", "bad")
#: The bad-input corpus's file of expected outcomes.
EXPECTED = "expected.jsonl"


class FixturesNotFound(ValueError):
    """The fixtures folder is missing or holds none of the known sets."""


def fixture_sets(fixtures: Path) -> list[str]:
    """The sets present in a fixtures folder; raise FixturesNotFound with what to do."""
    if not fixtures.is_dir():
        raise FixturesNotFound(
            f"no fixtures folder at {fixtures}: run the demo from the project's folder, or "
            f"give --fixtures DIR (a folder holding {', '.join(FIXTURE_SETS)})")
    sets = [name for name in FIXTURE_SETS if (fixtures / name).is_dir()]
    if not sets:
        raise FixturesNotFound(f"{fixtures} holds none of the fixture sets "
                               f"{', '.join(FIXTURE_SETS)}: nothing to demonstrate")
    return sets


def load_expected(corpus: Path) -> list[dict]:
    """The lines of a bad-input corpus's expected.jsonl ([] when it has none)."""
    path = Path(corpus) / EXPECTED
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def plant_symlinks(corpus: Path, inbox_dir: Path, target: Path) -> list[Path]:
    """Create the corpus's symbolic links (``"symlink": true`` in expected.jsonl) in
    `inbox_dir`, each pointing at `target`, a file outside the inbox."""
    made = []
    for rec in load_expected(corpus):
        if rec.get("symlink"):
            link = Path(inbox_dir) / rec["file"]
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(os.path.abspath(target), link)
            made.append(link)
    return made


def stage_inbox(fixtures: Path, sets: list[str], inbox: Path, outside: Path) -> int:
    """Copy the sets' documents into `inbox` (ground truth and notes left out) and plant
    the bad-input corpus's links to `outside`. Returns the number of files placed."""
    placed = 0
    for name in sets:
        # A claim case is a folder of the inbox's cases/ (backoffice.cases).
        placed += copy_tree(fixtures / name, inbox / name)
    for extra in [*inbox.rglob("*.jsonl"), *inbox.rglob("*.md")]:
        extra.unlink()
    if "bad" in sets:
        outside.write_text("intake must not follow a link to this file\n")
        placed += len(plant_symlinks(fixtures / "bad", inbox / "bad", outside))
    return placed


@dataclass
class DemoOutcome:
    """What the store made of a demo batch."""

    by_status: dict[str, int]
    accuracy: AccuracyTable
    bad_inputs: list[tuple[str, str, str]]  # file, outcome, masked reason
    cases: list[dict] = None  # type: ignore[assignment]  # expected and actual per case
    identities: dict[str, int] = None  # type: ignore[assignment]  # ID front+back pairs by status


def demo_outcome(engine: Engine, fixtures: Path, sets: list[str], batch: str) -> DemoOutcome:
    """Documents by status, field accuracy against each set's truth.jsonl, and the fate of
    every bad-input file."""
    acc = AccuracyTable()
    with Session(engine) as session:
        docs = session.exec(select(Document).where(Document.batch == batch)).all()
        by_status = dict(sorted(Counter(d.status.value for d in docs).items()))
        by_name = {(d.original_name, d.page): d for d in docs}
        for name in sets:
            truth_path = fixtures / name / "truth.jsonl"
            if not truth_path.exists():
                continue
            for key, truth in load_truth(truth_path).items():
                rel, page = split_key(key)
                doc = by_name.get((f"{name}/{rel}", page))
                if doc is None:
                    continue
                values = {f.name: f.value for f in session.exec(
                    select(FieldValue).where(FieldValue.document_id == doc.id))}
                acc.add({**truth, "variant": f"{name}/{truth.get('variant', 'all')}"},
                        doc.doc_type, values)
        bad: list[tuple[str, str, str]] = []
        if "bad" in sets:
            for doc in sorted((d for d in docs if d.page == 0
                               and d.original_name.startswith("bad/")),
                              key=lambda d: d.original_name):
                bad.append((doc.original_name, doc.status.value,
                            mask_text(doc.reason or "straight through")[:100]))
            for ev in session.exec(select(AuditEvent).where(AuditEvent.action == "duplicate")):
                name = (ev.data or {}).get("file", "")
                if name.startswith("bad/"):
                    bad.append((name, "duplicate", f"same bytes as document {ev.document_id}"))
        identities = dict(sorted(Counter(c.status.value for c in session.exec(
            select(Case).where(Case.batch == batch, Case.kind == IDENTITY))).items()))
    return DemoOutcome(by_status=by_status, accuracy=acc, bad_inputs=bad,
                       cases=case_outcomes(engine, fixtures) if "cases" in sets else [],
                       identities=identities)


def case_outcomes(engine: Engine, fixtures: Path) -> list[dict]:
    """Each demo case: what its truth expects (status, failing rule) and what it got."""
    from backoffice.cases import case_view

    expected: dict[str, dict] = {}
    for line in (fixtures / "cases" / "truth.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            expected[record["case"]] = {"kind": record.get("kind"), **record.get("expect", {})}
    rows = []
    for ref, want in sorted(expected.items()):
        view = case_view(engine, ref) or {}
        failed = sorted({c["rule"] for c in view.get("checks", []) if not c["passed"]
                         and not (c.get("details") or {}).get("skipped")})
        rows.append({"case": ref, "kind": want.get("kind"), "expected": want.get("status"),
                     "expected_rule": want.get("rule"), "status": view.get("status", "-"),
                     "failed_checks": failed,
                     "reasons": view.get("decision", {}).get("reasons", []),
                     "handling_seconds": view.get("times", {}).get("handling_seconds")})
    return rows
