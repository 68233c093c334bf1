"""The bad-input corpus (fixtures/bad) through intake, processing and the CLI.

Every file must end with a stated outcome and a clear reason; nothing crashes, nothing
is lost, and intake carries on with the next file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from bad_input_support import BAD, ROOT, fill_inbox, markdown_table, run_corpus
from sqlmodel import Session, select

EXPECTED_OUTCOMES = {"quarantined", "rejected", "duplicate", "processed"}


def _expected():
    from backoffice.demo import load_expected

    return load_expected(BAD)


def test_corpus_and_expectations_agree():
    expected = _expected()
    names = [rec["file"] for rec in expected]
    assert len(names) == len(set(names))
    on_disk = {p.name for p in BAD.iterdir() if p.name != "expected.jsonl"}
    carried = {rec["file"] for rec in expected if not rec.get("symlink")}
    assert on_disk == carried
    assert all(rec["outcome"] in EXPECTED_OUTCOMES and rec["reason"] for rec in expected)
    # Small enough to commit: the bomb is a header, the 300 pages are empty.
    assert sum(p.stat().st_size for p in BAD.iterdir()) < 1_000_000
    assert (BAD / "bomb_65535x65535.png").stat().st_size < 1024


def test_bomb_generator_declares_what_it_says():
    from PIL import Image

    from fixtures.generator.badfiles import bomb_png

    header = bomb_png()[16:24]
    assert int.from_bytes(header[:4], "big") == 65535 == int.from_bytes(header[4:], "big")
    with pytest.raises(Image.DecompressionBombError):
        import io

        Image.open(io.BytesIO(bomb_png()))


class _Exploding:
    """A reader that fails on everything (a stand-in for an OCR crash on one file)."""

    def recognize(self, image):
        raise RuntimeError("engine failed on 11010519491231002X")


class _Blind:
    def recognize(self, image):
        return []


def test_a_reader_crash_quarantines_that_file_and_the_next_one_goes_on(tmp_path):
    from backoffice.audit import AuditEvent
    from backoffice.intake import scan_inbox
    from backoffice.processing import process_document
    from backoffice.settings import get_settings
    from backoffice.store import Document, Status, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(BAD / "blank_page.png", inbox / "a.png")
    shutil.copy(BAD / "holiday_photo.jpg", inbox / "b.jpg")
    with Session(engine) as session:
        result = scan_inbox(session, inbox, documents_dir=tmp_path / "d",
                            quarantine_dir=tmp_path / "q", max_bytes=10_000_000)
    first, second = result.received
    settings = get_settings()
    assert process_document(engine, first, _Exploding(), settings) == [first]
    assert process_document(engine, second, _Blind(), settings) == [second]
    with Session(engine) as session:
        crashed, blank = session.get(Document, first), session.get(Document, second)
        assert crashed.status is Status.QUARANTINED
        assert crashed.reason.startswith("could not be read (RuntimeError")
        assert "11010519491231002X" not in crashed.reason  # exception texts are masked
        assert blank.status is Status.REJECTED
        assert "not a recognised document" in blank.reason
        audited = [e.data for e in session.exec(select(AuditEvent).where(
            AuditEvent.document_id == first, AuditEvent.action == "status"))]
        assert audited[-1]["to"] == "quarantined"
        assert "11010519491231002X" not in json.dumps(audited)


@pytest.mark.ocr
@pytest.mark.slow
def test_corpus_through_intake_and_processing(tmp_path, ocr_engine):
    from backoffice.audit import AuditEvent
    from backoffice.settings import get_settings

    outcomes, engine = run_corpus(tmp_path, ocr_engine, get_settings())
    print("\n" + markdown_table(outcomes))
    expected = {rec["file"]: rec for rec in _expected()}
    assert len(outcomes) == len(expected)  # files in == outcomes out
    assert [o.file for o in outcomes if o.outcome == "LOST"] == []
    for o in outcomes:
        rec = expected[o.file]
        assert o.outcome == rec["outcome"], (o.file, o.outcome, o.reason)
        assert o.reason, o.file
        if o.outcome == "processed":
            assert o.doc_type == rec["doc_type"], o.file
        elif o.outcome != "duplicate":
            assert rec["reason"] in o.reason, (o.file, o.reason)
        assert "Traceback" not in o.reason
    # The whole inbox was taken: nothing left behind, nothing followed out of it.
    assert list((tmp_path / "inbox").iterdir()) == []
    assert (tmp_path / "outside.txt").exists()
    with Session(engine) as session:
        dup = [e for e in session.exec(select(AuditEvent).where(
            AuditEvent.action == "duplicate"))]
        assert len(dup) == 1 and dup[0].data["file"] == "scan_copy_2.jpg"


@pytest.mark.ocr
@pytest.mark.slow
def test_corpus_through_the_cli(tmp_path):
    from backoffice.assess import NOT_A_DOCUMENT

    folder = tmp_path / "bad"
    expected = fill_inbox(folder, tmp_path / "outside.txt")
    paths = [str(folder / rec["file"]) for rec in expected]
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "cli", "extract", "--json", *paths],
                          check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    by_source: dict[str, list[dict]] = {}
    for r in records:
        by_source.setdefault(r["source"], []).append(r)
    assert set(by_source) == set(paths)  # one answer (or more, one per page) per file
    for rec in expected:
        (answer,) = by_source[str(folder / rec["file"])]
        if rec.get("symlink"):
            # Named on the command line, a link is the operator's choice and is followed;
            # what it points at here is a text file.
            assert "content sniffed" in answer["error"]
        elif rec["outcome"] == "quarantined":
            assert answer["doc_type"] == "unknown" and rec["reason"] in answer["error"]
        elif rec["outcome"] == "rejected":
            assert answer["error"] == NOT_A_DOCUMENT
        else:  # processed, or the duplicate of a processed file (the CLI keeps no store)
            want = rec.get("doc_type") or expected_doc_type(expected, rec["duplicate_of"])
            assert answer["doc_type"] == want and answer["error"] is None, answer


def expected_doc_type(expected: list[dict], name: str) -> str:
    return next(r["doc_type"] for r in expected if r["file"] == name)


def test_intake_refuses_pipes_loops_and_dangling_links_and_goes_on(tmp_path):
    from backoffice.intake import scan_inbox
    from backoffice.store import Document, Status, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    os.mkfifo(inbox / "a_pipe.jpg")  # reading it would block intake for ever
    os.symlink(inbox / "b_loop.png", inbox / "b_loop.png")
    os.symlink(inbox / "gone.png", inbox / "c_dangling.png")
    os.symlink(inbox / "sub", inbox / "d_dir_link")
    shutil.copy(BAD / "blank_page.png", inbox / "z_last.png")
    with Session(engine) as session:
        result = scan_inbox(session, inbox, documents_dir=tmp_path / "d",
                            quarantine_dir=tmp_path / "q", max_bytes=10_000_000)
        docs = {d.original_name: d for d in session.exec(select(Document))}
    reasons = {n: d.reason for n, d in docs.items() if d.status is Status.QUARANTINED}
    assert "pipe" in reasons["a_pipe.jpg"]
    assert "leads nowhere" in reasons["b_loop.png"]
    assert "leads nowhere" in reasons["c_dangling.png"]
    assert "not a file" in reasons["d_dir_link"]
    assert docs["z_last.png"].status is Status.RECEIVED and len(result.received) == 1
    assert [p.name for p in inbox.iterdir()] == []


def test_pdf_errors_are_named_by_the_file_not_by_the_previous_one():
    """PDFium's error code is process-global: after an encrypted file, a broken one used
    to be reported as encrypted too."""
    from ocr.decode import CorruptFile, EncryptedFile, decode

    order = ["encrypted.pdf", "no_pages.pdf", "encrypted.pdf", "no_pages.pdf"]
    seen = []
    for name in order:
        with pytest.raises((CorruptFile, EncryptedFile)) as caught:
            decode((BAD / name).read_bytes())
        seen.append(str(caught.value))
    assert seen == ["PDF is encrypted; send an unprotected copy", "PDF has no pages"] * 2
    damaged = (BAD / "300_pages.pdf").read_bytes()[:2000]
    with pytest.raises(CorruptFile, match="cannot be opened"):
        decode(damaged)


def test_the_committed_corpus_is_what_the_generator_makes(tmp_path):
    from fixtures.generator.__main__ import main

    assert main(["bad", "--out", str(tmp_path)]) == 0
    made = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in BAD.iterdir()}
    assert set(made) == set(committed)
    for name, data in made.items():
        if name.endswith(".pdf") and name != "white_really_png.pdf":
            continue  # PDFs carry a creation date (and the encrypted one a random salt)
        if data != committed[name]:
            # A rendered card can differ by a grey level in a few pixels from one CPU to
            # another (SIMD rounding in resampling); the picture must still be the same.
            ours, theirs = _pixels(data), _pixels(committed[name])
            assert ours is not None and theirs is not None, name
            assert ours.shape == theirs.shape, name
            assert int(np.abs(ours.astype(int) - theirs.astype(int)).max()) <= 4, name


def _pixels(data: bytes):
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
