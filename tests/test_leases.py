"""Processing leases: exclusive claims, recovery of expired leases, poison documents."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, select

from backoffice import leases
from backoffice.audit import AuditEvent, verify_audit_chain
from backoffice.processing import process_claimed, process_document
from backoffice.settings import get_settings
from backoffice.store import Document, Status


def _docs(engine, n, tmp_path) -> list[int]:
    ids = []
    with Session(engine) as session:
        for i in range(n):
            path = tmp_path / f"{i}.bin"
            path.write_bytes(b"not an image")
            doc = Document(sha256=f"{i:064x}", original_name=f"{i}.bin",
                           stored_path=str(path), status=Status.RECEIVED)
            session.add(doc)
            session.flush()
            ids.append(doc.id)
        session.commit()
    return ids


def _doc(engine, doc_id) -> Document:
    with Session(engine) as session:
        return session.get(Document, doc_id)


def test_claims_are_exclusive_and_counted(engine, tmp_path):
    ids = _docs(engine, 3, tmp_path)
    a = leases.claim(engine, "a", lease_seconds=60)
    b = leases.claim(engine, "b", lease_seconds=60)
    assert a.document_id == ids[0] and b.document_id == ids[1] and a.attempt == 1
    assert leases.claim(engine, "c", lease_seconds=60, document_id=ids[0]) is None
    doc = _doc(engine, ids[0])
    assert doc.status is Status.PROCESSING and doc.lease_owner == "a" and doc.attempts == 1
    assert leases.count_active(engine) == {"received": 1, "processing": 2}


def test_expired_lease_requeued_then_poison_quarantined(engine, tmp_path):
    (doc_id,) = _docs(engine, 1, tmp_path)
    # A worker that dies twice on the same document (lease 1 s, nobody finishes it; long
    # enough that a loaded machine still sees it live right after the claim).
    for attempt in (1, 2):
        held = leases.claim(engine, f"dead-{attempt}", lease_seconds=1.0)
        assert held.attempt == attempt
        assert leases.recover_expired(engine, max_attempts=2).requeued == []  # still live
        time.sleep(1.1)
        recovered = leases.recover_expired(engine, max_attempts=2)
        if attempt == 1:
            assert recovered.requeued == [doc_id] and recovered.quarantined == []
            assert _doc(engine, doc_id).status is Status.RECEIVED
        else:
            assert recovered.quarantined == [doc_id]
    doc = _doc(engine, doc_id)
    assert doc.status is Status.QUARANTINED and "2 attempts" in doc.reason
    assert leases.claim(engine, "late", lease_seconds=1) is None
    with Session(engine) as session:
        moves = [e.data for e in session.exec(select(AuditEvent).where(
            AuditEvent.document_id == doc_id).order_by(AuditEvent.id))]
        assert [(m["from"], m["to"]) for m in moves] == [
            ("received", "processing"), ("processing", "received"),
            ("received", "processing"), ("processing", "quarantined")]
        assert moves[1]["lease_expired"] and moves[1]["attempt"] == 1
        assert verify_audit_chain(session) == []


def test_a_late_worker_records_nothing(engine, tmp_path, monkeypatch):
    (doc_id,) = _docs(engine, 1, tmp_path)
    slow = leases.claim(engine, "slow", lease_seconds=0.1)
    time.sleep(0.2)
    leases.recover_expired(engine, max_attempts=3)
    fresh = leases.claim(engine, "fresh", lease_seconds=60)
    assert fresh.document_id == doc_id and fresh.attempt == 2
    settings = get_settings()
    # The slow worker finishes now: a decode error it would record as a quarantine.
    assert process_claimed(engine, slow, None, settings) == []
    assert _doc(engine, doc_id).status is Status.PROCESSING
    assert process_claimed(engine, fresh, None, settings) == [doc_id]
    doc = _doc(engine, doc_id)
    assert doc.status is Status.QUARANTINED and doc.lease_owner is None


class _Crashing:
    def recognize(self, image):
        raise MemoryError("the engine fell over on 110105194912310021")


def test_a_document_that_crashes_the_engine_is_quarantined(engine, tmp_path, monkeypatch):
    import cv2
    import numpy as np

    (doc_id,) = _docs(engine, 1, tmp_path)
    path = tmp_path / "0.bin"
    path.write_bytes(cv2.imencode(".png", np.full((60, 100), 255, np.uint8))[1].tobytes())
    settings = get_settings().model_copy(update={"processing_max_attempts": 2})
    for attempt in (1, 2):
        with pytest.raises(MemoryError):
            process_document(engine, doc_id, _Crashing(), settings)
        status = _doc(engine, doc_id).status
        assert status is (Status.RECEIVED if attempt == 1 else Status.QUARANTINED)
    doc = _doc(engine, doc_id)
    assert "failed 2 times" in doc.reason and "MemoryError" in doc.reason
    assert "110105194912310021" not in doc.reason  # masked
    with Session(engine) as session:
        assert verify_audit_chain(session) == []


def test_a_vanished_holders_leases_end_at_once_and_it_records_nothing(engine, tmp_path):
    """What process-inbox does when a reader leaves the server's task workers: its leases
    are ended (not waited out), the documents requeued; the reader, if it was alive after
    all, records nothing."""
    a, b = _docs(engine, 2, tmp_path)
    held_a = leases.claim(engine, "host-1/run-a", lease_seconds=600, document_id=a)
    leases.claim(engine, "host-2/run-b", lease_seconds=600, document_id=b)
    assert leases.holders(engine) == {a: "host-1/run-a", b: "host-2/run-b"}
    assert leases.expire(engine, [a]) == 1
    found = leases.recover_expired(engine, max_attempts=3)
    assert found.requeued == [a] and found.quarantined == []
    assert leases.holders(engine) == {b: "host-2/run-b"}
    assert leases.expire(engine, [a]) == 0  # no longer processing: nothing to end
    with Session(engine) as session:
        assert leases.hold(session, held_a) is False  # the old holder records nothing
        session.rollback()
    again = leases.claim(engine, "host-3/run-c", lease_seconds=600, document_id=a)
    assert again is not None and again.attempt == 2
    with Session(engine) as session:
        assert verify_audit_chain(session) == []
