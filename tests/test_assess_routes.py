"""One assessment: a dry run, `backoffice extract` and a real run route a page alike."""

from __future__ import annotations

import shutil

import cv2
import pytest
from conftest import FIXTURES
from sqlmodel import Session, select

pytestmark = [pytest.mark.ocr, pytest.mark.slow]

STATUS_OF_ROUTE = {"approved": "approved", "in_review": "in_review", "rejected": "rejected",
                   "quarantined": "quarantined"}


def _glared(src, dst):
    """The card with a reflection on its portrait: the text reads, the image quality fails."""
    img = cv2.imread(str(src))
    h, w = img.shape[:2]
    cv2.ellipse(img, (int(w * 0.78), int(h * 0.42)), (int(w * 0.12), int(h * 0.22)), 0, 0, 360,
                (255, 255, 255), -1)
    cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 95])


def test_a_dry_run_and_a_real_run_give_every_page_the_same_route(tmp_path, ocr_engine):
    import backoffice.outbox  # noqa: F401  (its table, for straight-through approvals)
    from backoffice.batch import dry_run_rows
    from backoffice.intake import scan_inbox
    from backoffice.processing import extract_file, process_document
    from backoffice.settings import get_settings
    from backoffice.store import Document, make_engine

    settings = get_settings()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clean = FIXTURES / "idcards" / "clean"
    shutil.copy(clean / "s2026_0000_front.jpg", inbox / "a_front.jpg")
    shutil.copy(clean / "s2026_0000_back.jpg", inbox / "b_back.jpg")
    _glared(clean / "s2026_0001_front.jpg", inbox / "c_glare_front.jpg")
    shutil.copy(FIXTURES / "bad" / "blank_page.png", inbox / "d_blank.png")
    (inbox / "e_truncated.jpg").write_bytes((clean / "s2026_0002_front.jpg").read_bytes()[:300])

    glare = extract_file(inbox / "c_glare_front.jpg", ocr_engine, settings)[0]
    assert glare["quality"]["glare"]["verdict"] == "fail"
    assert glare["route"]["decision"] == "in_review"
    assert any(r.startswith("image quality: glare") for r in glare["route"]["reasons"])

    dry = {row["file"]: row["would_be"] for row in dry_run_rows(inbox, ocr_engine, settings)}
    extracted = {p.name: extract_file(p, ocr_engine, settings)[0]["route"]["decision"]
                 for p in sorted(inbox.iterdir())}
    assert dry == extracted

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with Session(engine) as session:
        result = scan_inbox(session, inbox, documents_dir=tmp_path / "documents",
                            quarantine_dir=tmp_path / "quarantine",
                            max_bytes=settings.max_file_bytes, batch="same-route")
    for doc_id in result.received:
        process_document(engine, doc_id, ocr_engine, settings)
    with Session(engine) as session:
        real = {d.original_name: d.status.value
                for d in session.exec(select(Document).where(Document.page == 0))}
    assert real == {name: STATUS_OF_ROUTE[route] for name, route in dry.items()}
    # The page set covers each route, so the comparison means something.
    assert set(dry.values()) >= {"approved", "in_review", "rejected", "quarantined"}
