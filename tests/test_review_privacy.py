"""A review through Prefect leaves nothing personal in Prefect.

A claim form with a misread insured ID number is reviewed in a real ``review-document``
run, answered over Prefect's API as the UI answers it (``POST /flow_runs/{id}/resume`` with
the run input): a wrong key is refused; the maker corrects the ID number, which needs four
eyes; the maker cannot check herself; a checker confirms. Then Prefect's whole database
(every column of every table, through SQL), the files Prefect and the run wrote, and
everything logged or printed are searched for the document's ID numbers (as read and as
corrected, 18 and 15 digits), names, phone and account number, and the reviewers' personal
keys: none may be there. While the run waits, the same scan does find the value under
review in Prefect's run inputs (the scan works).

The store has reviewers registered (enforced identities); it is a store of this test's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import uuid
from pathlib import Path

import pytest
from conftest import FIXTURES
from sqlmodel import Session, select
from stdnum import luhn
from test_masking_scan import Scanner, scan_sqlite
from test_review_flow import (
    _inputs,
    _run_input,
    assert_nothing_left,
    resume,
    review_artifacts,
    wait_paused,
)

from domain.gb11643 import calc_check_digit
from validators.rules._samples import CLAIM

pytestmark = [pytest.mark.integration]


def _people(seed: int) -> dict[str, str]:
    """Personal values of this test only (nothing else in the session holds them)."""
    rnd = random.Random(seed)
    body = f"110105{rnd.randint(1950, 1999)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}" \
        f"{rnd.randint(100, 999)}"
    good = body + calc_check_digit(body)
    bad = body + next(d for d in "0123456789" if d != good[-1])
    account = "".join(str(rnd.randint(0, 9)) for _ in range(18))
    return {"name": "欧阳" + rnd.choice("煦珩翊瑾") + rnd.choice("霖澈昀琛"),
            "good_id": good, "bad_id": bad,
            "phone": "139" + "".join(str(rnd.randint(0, 9)) for _ in range(8)),
            "account": account + luhn.calc_check_digit(account)}


@pytest.fixture
def own_store(tmp_path, monkeypatch):
    """The flow's settings pointed at a store of this test's own."""
    from backoffice.runtime import db_engine
    from backoffice.settings import get_settings

    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield db_engine(url)
    monkeypatch.delenv("BACKOFFICE_DATABASE_URL", raising=False)
    get_settings.cache_clear()


def _claim_in_review(engine, p: dict[str, str]) -> int:
    """A claim form in review because its insured ID number fails its check digit."""
    from backoffice.assess import validate_fields
    from backoffice.store import CheckRow, Document, FieldValue, Status, set_status
    from domain.models import DocType

    values = {**CLAIM, "insured_name": p["name"], "claimant_name": p["name"],
              "account_name": p["name"], "insured_id_number": p["bad_id"],
              "phone": p["phone"], "account_number": p["account"]}
    image = FIXTURES / "claims" / "clean" / "c2026_0000.jpg"
    with Session(engine) as session:
        doc = Document(sha256=uuid.uuid4().hex * 2, original_name="claim.jpg",
                       stored_path=str(image), batch="privacy", doc_type="claim_form",
                       status=Status.PROCESSED)
        session.add(doc)
        session.flush()
        for i, (name, value) in enumerate(values.items()):
            y = 40 + 50 * i
            session.add(FieldValue(document_id=doc.id, name=name, value=value, confidence=0.99,
                                   boxes=[[[200, y], [900, y], [900, y + 36], [200, y + 36]]]))
        checks = validate_fields(DocType.CLAIM_FORM, values)
        assert [c.rule for c in checks if not c.passed and c.severity == "error"] == [
            "claim.insured_id_number_valid"]
        for c in checks:
            session.add(CheckRow(document_id=doc.id, rule=c.rule, severity=c.severity.value,
                                 passed=c.passed, message=c.message, fields=c.fields,
                                 details=c.model_dump(mode="json")["details"]))
        set_status(session, doc, Status.IN_REVIEW,
                   reason="claim.insured_id_number_valid (error): check digit is wrong")
        session.commit()
        return doc.id


def _needles(p: dict[str, str], keys: dict[str, str]) -> dict[str, str]:
    values = {p["name"]: "name", p["phone"]: "phone", p["account"]: "account",
              p["good_id"]: "id_number (corrected)", p["bad_id"]: "id_number (as read)"}
    for kind in ("good_id", "bad_id"):
        values[p[kind][:6] + p[kind][8:17]] = f"{kind} (15-digit form)"
    values.update({key: f"personal key of {who}" for who, key in keys.items()})
    return values


def _prefect_db() -> Path:
    import prefect.settings

    url = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    assert url.startswith("sqlite+aiosqlite:///"), url
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


def test_a_review_with_four_eyes_leaves_nothing_personal_in_prefect(
        prefect_harness, own_store, caplog):
    import flows.review_document  # noqa: F401  (first: importing it may set Prefect's logging up)

    caplog.set_level(logging.DEBUG)
    prefect_logger = logging.getLogger("prefect")  # does not propagate to the root logger
    prefect_logger.addHandler(caplog.handler)
    try:
        _review_and_scan(own_store, caplog)
    finally:
        prefect_logger.removeHandler(caplog.handler)


def _review_and_scan(own_store, caplog):
    from backoffice import reviewers
    from backoffice.audit import AuditEvent
    from backoffice.settings import get_settings
    from backoffice.store import Document, FieldValue, Status
    from flows.review_document import review_document

    people = _people(seed=1717)
    keys = {}
    _, keys["maker.sun"] = reviewers.add_reviewer(own_store, "maker.sun",
                                                  ["reviewer", "checker"])
    _, keys["checker.qian"] = reviewers.add_reviewer(own_store, "checker.qian", ["checker"])
    doc_id = _claim_in_review(own_store, people)
    name = f"review-document-{doc_id}"
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(state=review_document(
        document_id=doc_id, return_state=True)), daemon=True)
    thread.start()

    run = wait_paused(name)
    schema = json.loads(asyncio.run(_run_input(run, "schema")))
    props = schema["properties"]
    # Only the field under review, prefilled; no other personal field is in the form.
    assert props["insured_id_number"]["default"] == people["bad_id"]
    assert not {"insured_name", "claimant_name", "account_name", "phone",
                "account_number"} & set(props)
    assert props["reviewer_key"]["format"] == "password"
    description = json.loads(asyncio.run(_run_input(run, "description")))
    for masked in ("name", "phone", "account"):
        assert people[masked] not in description
    assert {"review-image", "review-document"} <= set(review_artifacts(run.id))
    # The scan works: while the run waits, the value under review is in Prefect.
    live = Scanner(_needles(people, keys))
    scan_sqlite(live, _prefect_db())
    assert ("prefect-test.db:flow_run_input.value", "id_number (as read)") in {
        (where.rsplit("/", 1)[-1], kind) for where, kind, _ in live.found}

    # A wrong key is refused; the form comes back saying so (and the answer is gone).
    resume(run, decision="correct", reviewer="maker.sun", reviewer_key="guess",
           insured_id_number=people["good_id"])
    run2 = wait_paused(name, previous_key=run.state.state_details.pause_key)
    assert "unknown id or wrong key" in json.loads(asyncio.run(_run_input(run2, "description")))
    assert {i.key.rsplit("-", 1)[-1] for i in asyncio.run(_inputs(run.id))} == {
        "schema", "description"}  # only the current form: the answers were deleted
    # The maker corrects the ID number: four eyes, a checker form follows.
    resume(run2, decision="correct", reviewer="maker.sun", reviewer_key=keys["maker.sun"],
           insured_id_number=people["good_id"])
    run3 = wait_paused(name, previous_key=run2.state.state_details.pause_key)
    check = json.loads(asyncio.run(_run_input(run3, "description")))
    assert "maker.sun" in check and people["good_id"] in check and people["name"] not in check
    with Session(own_store) as session:
        assert session.get(Document, doc_id).status is Status.IN_REVIEW
    # The maker may not check her own decision, even with the checker role.
    resume(run3, decision="confirm", checker="maker.sun", checker_key=keys["maker.sun"])
    run4 = wait_paused(name, previous_key=run3.state.state_details.pause_key)
    assert "different reviewer from the maker" in json.loads(
        asyncio.run(_run_input(run4, "description")))
    resume(run4, decision="confirm", checker="checker.qian", checker_key=keys["checker.qian"])
    thread.join(90)
    state = box["state"]
    assert state.is_completed(), state
    assert state.result()["status"] == "approved"

    with Session(own_store) as session:
        assert session.get(Document, doc_id).status is Status.APPROVED
        field = session.exec(select(FieldValue).where(
            FieldValue.document_id == doc_id, FieldValue.name == "insured_id_number")).one()
        assert (field.value, field.reviewed_value) == (people["bad_id"], people["good_id"])
        events = {e.action: e for e in session.exec(select(AuditEvent).where(
            AuditEvent.document_id == doc_id))}
        refused = session.exec(select(AuditEvent).where(
            AuditEvent.action == "reviewer.refused")).all()
    assert events["review.proposed"].actor == "maker.sun"
    assert events["review.confirmed"].actor == "checker.qian"
    assert events["review.corrected"].data["checker"] == "checker.qian"
    assert [e.actor for e in refused] == ["maker.sun"]
    assert_nothing_left(run.id)

    # Nothing personal anywhere Prefect keeps things, nor in what was logged or printed.
    scanner = Scanner(_needles(people, keys))
    db = _prefect_db()
    rows = scan_sqlite(scanner, db)
    for table in ("flow_run", "flow_run_state", "log", "events"):
        assert rows.get(table, 0) > 0, (table, rows)
    files = 0
    settings = get_settings()
    for folder in {db.parent, settings.prefect_home, Path(settings.data_dir)}:
        for path in sorted(folder.rglob("*")) if folder.exists() else ():
            rel = path.relative_to(folder)
            if not path.is_file() or path.name.startswith(("prefect-test.db", "backoffice.db")) \
                    or rel.parts[0] in {"documents", "paddlex", "sandbox"}:
                continue
            scanner.scan_bytes(str(path), path.read_bytes())
            files += 1
    # Every record logged in this process, Prefect's run loggers included (what its console
    # handler prints and what it ships to the API, whose copy is the `log` table above).
    scanner.scan("log records", "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    assert any("proposal" in r.getMessage() for r in caplog.records)  # the run's own logs
    assert scanner.found == [], scanner.found[:10]
    # The rows are clean, but SQLite keeps deleted rows in free pages and its write-ahead
    # log: the daily retention compacts the file, after which its bytes hold nothing.
    from flows.apply_retention import compact_prefect_database

    raw = Scanner(_needles(people, keys))
    raw.scan_bytes("prefect db before compaction", db.read_bytes() + (
        Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b""))
    assert compact_prefect_database() == "compacted"
    raw_after = Scanner(_needles(people, keys))
    for path in (db, Path(f"{db}-wal")):
        if path.exists():
            raw_after.scan_bytes(str(path), path.read_bytes())
    assert raw_after.found == [], raw_after.found[:10]
    print(f"\nraw bytes of Prefect's database: {len(raw.found)} found before compaction, "
          "0 after")
    print(f"\nprivacy scan: {len(scanner.values)} values, {scanner.texts} texts "
          f"({sum(rows.values())} rows of Prefect's database, {files} files): 0 found")
