"""Intake from an inbox folder: store, deduplicate, quarantine; never drop a file."""

from __future__ import annotations

import io
import os

from PIL import Image
from sqlmodel import Session, select

from backoffice.audit import AuditEvent
from backoffice.intake import scan_inbox
from backoffice.store import Document, Status, make_engine


def _png_bytes(colour=(10, 20, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return buf.getvalue()


def test_inbox_scan_keeps_every_file(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / "a.png").write_bytes(_png_bytes())
    (inbox / "sub" / "张 三 身份证.png").write_bytes(_png_bytes((1, 2, 3)))
    (inbox / "copy-of-a.png").write_bytes(_png_bytes())  # same bytes as a.png
    (inbox / "empty.jpg").write_bytes(b"")
    (inbox / "notes.jpg").write_text("this is text, not a picture")
    (inbox / "upload.part").write_bytes(b"still being written")
    outside = tmp_path / "secret.png"
    outside.write_bytes(_png_bytes((9, 9, 9)))
    os.symlink(outside, inbox / "link.png")

    with Session(engine) as session:
        result = scan_inbox(session, inbox, documents_dir=tmp_path / "docs",
                            quarantine_dir=tmp_path / "q", max_bytes=10_000_000)
        docs = session.exec(select(Document)).all()
        reasons = {d.original_name: d.reason for d in docs if d.status is Status.QUARANTINED}
        assert len(result.received) == 2
        assert [name for name, _ in result.duplicates] == ["copy-of-a.png"]
        assert set(reasons) == {"empty.jpg", "notes.jpg", "link.png"}
        assert "empty" in reasons["empty.jpg"]
        assert "content sniffed" in reasons["notes.jpg"]
        assert "outside the inbox" in reasons["link.png"]
        # The original is stored read-only, by content.
        stored = [d for d in docs if d.status is Status.RECEIVED]
        for d in stored:
            assert not os.access(d.stored_path, os.W_OK) or os.geteuid() == 0
            assert (os.stat(d.stored_path).st_mode & 0o222) == 0
        actions = [e.action for e in session.exec(select(AuditEvent))]
        assert actions.count("received") == 2 and actions.count("duplicate") == 1
    # Taken files leave the inbox; the partial upload stays for the next poll.
    assert sorted(p.name for p in inbox.rglob("*") if p.is_file()) == ["upload.part"]
    assert outside.exists()

    # Running again takes nothing twice.
    (inbox / "again.png").write_bytes(_png_bytes())
    with Session(engine) as session:
        again = scan_inbox(session, inbox, documents_dir=tmp_path / "docs",
                           quarantine_dir=tmp_path / "q", max_bytes=10_000_000)
    assert again.received == [] and len(again.duplicates) == 1
