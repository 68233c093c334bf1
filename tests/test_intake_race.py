"""Intake with two workers on one inbox: the same file read by both, a file gone under us."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from PIL import Image
from sqlmodel import Session, select

from backoffice.audit import AuditEvent, verify_audit_chain
from backoffice.intake import IntakeResult, _ingest_committed, ingest_bytes, scan_inbox
from backoffice.store import Document, make_engine


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (40, 50, 60)).save(buf, "PNG")
    return buf.getvalue()


def test_the_second_insert_of_the_same_file_becomes_a_duplicate(engine, tmp_path):
    data = _png()
    kwargs = {"documents_dir": tmp_path / "docs", "quarantine_dir": tmp_path / "q",
              "max_bytes": 10_000_000}
    first = Session(engine)
    ingest_bytes(first, data, "a.png", **kwargs)  # inserted, not yet committed
    second = IntakeResult()
    errors: list[BaseException] = []

    def other_worker() -> None:
        try:
            with Session(engine) as session:
                # Its duplicate check runs before the first commits: it sees nothing, its
                # insert waits on the first and then violates UNIQUE (sha256, page).
                _ingest_committed(session, data, "a-again.png", result=second, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=other_worker)
    thread.start()
    time.sleep(0.5)
    first.commit()
    first.close()
    thread.join(30)
    assert errors == [] and not thread.is_alive()
    assert second.received == [] and len(second.duplicates) == 1
    with Session(engine) as session:
        assert len(session.exec(select(Document)).all()) == 1
        actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions == ["received", "duplicate"]
        assert verify_audit_chain(session) == []


def test_a_file_taken_by_another_worker_is_skipped(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "here.png").write_bytes(_png())
    listed = Path.rglob

    def rglob_with_a_ghost(self, pattern):
        # Listed, then removed by the other worker before we open it.
        return [*listed(self, pattern), self / "gone.png"]

    monkeypatch.setattr(Path, "rglob", rglob_with_a_ghost)
    with Session(engine) as session:
        result = scan_inbox(session, inbox, documents_dir=tmp_path / "docs",
                            quarantine_dir=tmp_path / "q", max_bytes=10_000_000)
    assert len(result.received) == 1 and result.quarantined == [] and result.duplicates == []
