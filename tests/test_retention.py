"""Retention and erasure (backoffice/retention.py): what outlives its period is erased and
what is still in flight is not; a customer's erasure leaves nothing of them readable, not
even in the database file's bytes, and the audit chain still verifies."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

import backoffice.outbox  # noqa: F401  (the outbox table)
from backoffice import blobs
from backoffice.audit import AuditEvent, append_audit, utcnow, verify_audit_chain
from backoffice.blobs import LocalStorage, StoreStorage
from backoffice.outbox import OutboxMessage, OutboxStatus
from backoffice.retention import ErasureError, apply_retention, erase_customer
from backoffice.settings import Settings
from backoffice.store import Document, DocumentRisk, FieldValue, Status, make_engine
from domain import gb11643

ALICE = {"name": "李秀英", "id_number": "11010519491231002X", "address": "北京市朝阳区建国路1号"}
BOB = {"name": "王建国", "id_number": "44030419850615351X", "address": "广东省深圳市福田区深南大道2号"}


def _document(session: Session, tmp_path, person: dict, *, status: Status = Status.POSTED,
              age_days: int = 0, tag: str = "") -> Document:
    data = f"original of {person['name']} {person['id_number']}{tag}".encode()
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    ref = LocalStorage(tmp_path / "documents").put(session, data, sha, "png")
    doc = Document(sha256=sha, original_name=f"{person['name']}-身份证{tag}.png",
                   stored_path=ref, status=status, doc_type="id_card_front", format="png",
                   ocr_lines=[{"text": person["name"]}, {"text": person["id_number"]}])
    session.add(doc)
    session.flush()
    for name, value in person.items():
        session.add(FieldValue(document_id=doc.id, name=name, value=value, raw=value,
                               confidence=0.99))
    portrait = f"portrait of {person['name']}{tag}".encode()
    psha = hashlib.sha256(portrait).hexdigest()
    StoreStorage().put(session, portrait, psha, "jpg")
    session.add(DocumentRisk(document_id=doc.id, signals={}, portrait_sha256=psha))
    append_audit(session, "corrected", document_id=doc.id, actor="clerk-7",
                 data={"field": "name", "before": person["name"][:-1] + "x",
                       "after": person["name"]})
    if status is Status.POSTED:
        session.add(OutboxMessage(document_id=doc.id, target="core",
                                  payload={"fields": person}, payload_sha256="0" * 64,
                                  idempotency_key=f"bo-{doc.id}:core:v1",
                                  status=OutboxStatus.POSTED, remote_id=f"C-{doc.id}"))
    session.flush()
    doc.updated_at = utcnow() - timedelta(days=age_days)
    session.add(doc)
    session.commit()
    session.refresh(doc)
    session.expunge(doc)
    return doc


@pytest.fixture
def store(tmp_path):
    return make_engine(f"sqlite:///{tmp_path / 'store.db'}")


def _fields(engine, doc_id: int) -> dict:
    with Session(engine) as session:
        return {f.name: f.value for f in session.exec(
            select(FieldValue).where(FieldValue.document_id == doc_id))}


def test_retention_erases_what_outlived_its_period_and_nothing_in_flight(store, tmp_path):
    with Session(store) as session:
        old = _document(session, tmp_path, ALICE, age_days=400)
        recent = _document(session, tmp_path, BOB, age_days=10)
        waiting = _document(session, tmp_path, BOB, status=Status.IN_REVIEW, age_days=400,
                            tag="-2")
        old_ref, waiting_ref = old.stored_path, waiting.stored_path
    settings = Settings(data_dir=tmp_path / "var", retain_originals_days=365,
                        retain_review_images_days=365, retain_fields_days=365,
                        retain_audit_days=365)
    # A dry run counts and erases nothing.
    dry = apply_retention(store, settings, dry_run=True)
    assert dry.counts["originals"] == 1 and _fields(store, old.id)["name"] == ALICE["name"]
    report = apply_retention(store, settings)
    assert report.counts["originals"] == 1 and report.counts["portraits"] == 1
    assert report.counts["fields"] == 3 and report.counts["outbox_payloads"] == 1
    with Session(store) as session:
        doc = session.get(Document, old.id)
        assert doc.stored_path.startswith("erased:") and doc.ocr_lines is None
        assert session.get(DocumentRisk, old.id).portrait_sha256 is None
        msg = session.exec(select(OutboxMessage).where(OutboxMessage.document_id == old.id)).one()
        assert msg.payload == {"erased": report.request} and msg.remote_id == f"C-{old.id}"
        # Still in flight (in review), or recent: untouched.
        assert session.get(Document, waiting.id).stored_path == waiting_ref
        assert session.get(DocumentRisk, recent.id).portrait_sha256 is not None
        # No audit event is older than a year here: the audit data stays.
        assert verify_audit_chain(session) == []
    assert not Path(old_ref).exists()
    with pytest.raises(blobs.BlobNotFoundError, match="erased"):
        blobs.read(doc.stored_path)
    assert set(_fields(store, old.id).values()) == {None}
    assert _fields(store, recent.id)["name"] == BOB["name"]
    assert _fields(store, waiting.id)["id_number"] == BOB["id_number"]


def test_retention_of_audit_data_keeps_the_chain_verifying(store, tmp_path):
    with Session(store) as session:
        doc = _document(session, tmp_path, BOB)
    # Three days on, with audit data kept for one day.
    report = apply_retention(store, Settings(data_dir=tmp_path / "v", retain_audit_days=1),
                             now=utcnow() + timedelta(days=3))
    assert report.counts["audit_events"] >= 1
    with Session(store) as session:
        data = [ev.data for ev in session.exec(select(AuditEvent).where(
            AuditEvent.document_id == doc.id))]
        assert data and all(d == {"erased": report.request} for d in data), data
        assert verify_audit_chain(session) == []
    # Only the data went: the fields (another period, not set) are still there.
    assert _fields(store, doc.id)["name"] == BOB["name"]


def test_erasing_a_customer_leaves_nothing_of_them_in_the_database_file(store, tmp_path):
    with Session(store) as session:
        alice = _document(session, tmp_path, ALICE)
        _document(session, tmp_path, BOB)
        alice_ref = alice.stored_path
    report = erase_customer(store, Settings(data_dir=tmp_path / "var"), ALICE["id_number"],
                            actor="dpo-1", request="PIPL-2026-001")
    assert report.documents == [alice.id]
    assert report.downstream == [{"target": "core", "document": alice.id,
                                  "idempotency_key": f"bo-{alice.id}:core:v1",
                                  "remote_id": f"C-{alice.id}"}]
    with Session(store) as session:
        assert verify_audit_chain(session) == []
        erasure = session.exec(select(AuditEvent).where(AuditEvent.action == "erasure")).one()
        assert erasure.actor == "dpo-1" and erasure.data["request"] == "PIPL-2026-001"
        assert session.get(Document, alice.id).original_name.startswith("erased:")
    store.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    for secret in ALICE.values():
        assert secret.encode() not in raw, secret
    assert BOB["id_number"].encode() in raw  # the control: the other customer is there
    assert not Path(alice_ref).exists()
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert conn.execute("SELECT count(*) FROM document_blob").fetchone()[0] == 1


def test_the_old_15_digit_form_finds_the_same_customer(store, tmp_path):
    with Session(store) as session:
        alice = _document(session, tmp_path, {**ALICE, "id_number": gb11643.to_15(
            ALICE["id_number"])})
    report = erase_customer(store, Settings(data_dir=tmp_path / "var"), ALICE["id_number"],
                            actor="dpo-1", dry_run=True)
    assert report.documents == [alice.id] and report.dry_run
    assert _fields(store, alice.id)["name"] == ALICE["name"]  # a dry run erases nothing


def test_a_customer_with_documents_in_flight_is_refused_then_included(store, tmp_path):
    with Session(store) as session:
        waiting = _document(session, tmp_path, ALICE, status=Status.IN_REVIEW)
        moving = _document(session, tmp_path, BOB, status=Status.RECEIVED)
    settings = Settings(data_dir=tmp_path / "var")
    with pytest.raises(ErasureError, match="waiting for a person.*--include-open"):
        erase_customer(store, settings, ALICE["id_number"], actor="dpo-1")
    with pytest.raises(ErasureError, match="still moving"):
        erase_customer(store, settings, BOB["id_number"], actor="dpo-1")
    report = erase_customer(store, settings, ALICE["id_number"], actor="dpo-1",
                            include_open=True)
    with Session(store) as session:
        doc = session.get(Document, waiting.id)
        assert doc.status is Status.REJECTED and report.request in doc.reason
    assert _fields(store, moving.id)["name"] == BOB["name"]
    with pytest.raises(ErasureError, match="15- or 18-digit"):
        erase_customer(store, settings, "not a number", actor="dpo-1")


def test_erase_cli_prints_the_report_without_the_id_number(tmp_path, monkeypatch):
    from cli.main import app

    monkeypatch.setenv("BACKOFFICE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    from backoffice.settings import get_settings

    get_settings.cache_clear()
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with Session(engine) as session:
        doc = _document(session, tmp_path, ALICE)
    engine.dispose()
    runner = CliRunner()
    refused = runner.invoke(app, ["erase", "--customer", "12345", "--actor", "dpo-1", "--yes"])
    assert refused.exit_code == 2 and "15- or 18-digit" in refused.output
    result = runner.invoke(app, ["erase", "--customer", ALICE["id_number"], "--actor",
                                 "dpo-1", "--request", "T-9", "--yes"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["documents"] == [doc.id] and report["request"] == "T-9"
    assert ALICE["id_number"] not in result.output and ALICE["name"] not in result.output
    get_settings.cache_clear()


@pytest.mark.postgres
def test_erasure_on_postgresql_vacuums_and_keeps_the_chain(tmp_path):
    from conftest import PG_ADMIN_URL
    from outbox_support import fresh_pg_database

    with fresh_pg_database(PG_ADMIN_URL) as url:
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                alice = _document(session, tmp_path, ALICE)
                bob = _document(session, tmp_path, BOB)
            report = erase_customer(engine, Settings(data_dir=tmp_path / "var"),
                                    ALICE["id_number"], actor="dpo-1")
            assert report.documents == [alice.id]
            assert set(_fields(engine, alice.id).values()) == {None}
            assert _fields(engine, bob.id)["id_number"] == BOB["id_number"]
            with Session(engine) as session:
                assert verify_audit_chain(session) == []
        finally:
            engine.dispose()
