"""The store on SQLite (default) and on the local PostgreSQL (at scale)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from backoffice.audit import AuditEvent, append_audit, verify_audit_chain
from backoffice.store import (
    Document,
    FieldValue,
    InvalidTransition,
    Status,
    make_engine,
    set_status,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        return make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    return make_engine(request.getfixturevalue("postgres_url"))


def _doc(session, sha="a" * 64, page=0) -> Document:
    doc = Document(sha256=sha, page=page, original_name="x.png", stored_path="/nowhere")
    session.add(doc)
    session.flush()
    return doc


def test_lifecycle_and_audit(engine):
    with Session(engine) as session:
        doc = _doc(session, sha="1" * 64)
        for status in (Status.PROCESSING, Status.PROCESSED, Status.IN_REVIEW, Status.APPROVED,
                       Status.POSTED):
            set_status(session, doc, status)
        session.commit()
        with pytest.raises(InvalidTransition):
            set_status(session, doc, Status.RECEIVED)
        session.rollback()
        events = session.exec(select(AuditEvent).where(AuditEvent.document_id == doc.id)).all()
        assert [e.data["to"] for e in events] == [
            "processing", "processed", "in_review", "approved", "posted"]
        assert verify_audit_chain(session) == []


def test_same_bytes_same_page_is_unique(engine):
    from sqlalchemy.exc import IntegrityError

    with Session(engine) as session:
        _doc(session, sha="2" * 64)
        session.commit()
        with pytest.raises(IntegrityError):
            _doc(session, sha="2" * 64)
            session.commit()
        session.rollback()
        _doc(session, sha="2" * 64, page=1)  # another page of the same file is fine
        session.commit()


def test_fields_store_json_and_unicode(engine):
    with Session(engine) as session:
        doc = _doc(session, sha="3" * 64)
        session.add(FieldValue(document_id=doc.id, name="address", value="北京市朝阳区",
                               confidence=0.99, corrections=["O->0 at 3"],
                               boxes=[[[1.0, 2.0], [3.0, 4.0]]]))
        session.commit()
        f = session.exec(select(FieldValue).where(FieldValue.document_id == doc.id)).one()
        assert f.value == "北京市朝阳区" and f.corrections == ["O->0 at 3"]
        assert f.boxes == [[[1.0, 2.0], [3.0, 4.0]]]


def test_audit_tampering_detected(engine):
    with Session(engine) as session:
        for i in range(4):
            append_audit(session, "note", data={"i": i})
        session.commit()
        ids = [e.id for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))][-4:]
        assert verify_audit_chain(session) == []
        session.execute(text("UPDATE auditevent SET actor = 'mallory' WHERE id = :i"),
                        {"i": ids[1]})
        session.commit()
        problems = verify_audit_chain(session)
        assert any(p.startswith(f"event {ids[1]} (") and "content altered" in p
                   for p in problems)
        session.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": ids[2]})
        session.commit()
        assert any(f"event {ids[3]}: chain broken" in p for p in verify_audit_chain(session))
