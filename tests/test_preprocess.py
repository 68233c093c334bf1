"""Preprocessing without OCR: card finding, rectification, rotation mapping, quality."""

from __future__ import annotations

import json

import cv2
import numpy as np
from conftest import FIXTURES

from ocr.preprocess import Prepared, assess_quality, find_document_quad, prepare


def _truth():
    for line in (FIXTURES / "idcards" / "truth.jsonl").read_text().splitlines():
        yield json.loads(line)


def test_card_corners_found_in_photos():
    found = close = total = 0
    for t in _truth():
        if t["variant"] != "photo":
            continue
        total += 1
        quad = find_document_quad(cv2.imread(str(FIXTURES / "idcards" / t["file"])))
        if quad is None:
            continue
        found += 1
        want = np.array(t["card_quad"])
        deviation = min(np.abs(np.roll(quad, k, axis=0) - want).max() for k in range(4))
        close += deviation < 30
    assert found >= 0.75 * total and close == found, (found, close, total)


def test_no_card_invented_inside_a_full_frame_scan():
    for t in _truth():
        if t["variant"] == "clean" and not t["render"].get("on_scanner_bed"):
            img = cv2.imread(str(FIXTURES / "idcards" / t["file"]))
            assert find_document_quad(img) is None, t["file"]


def test_rotation_keeps_the_mapping_to_the_original():
    img = np.zeros((100, 200, 3), np.uint8)
    base = Prepared(image=img, to_original=np.eye(3))
    for k in range(4):
        turned = base.rotated(k)
        h, w = turned.image.shape[:2]
        corners = [(0.0, 0.0), (w - 1.0, 0.0), (w - 1.0, h - 1.0), (0.0, h - 1.0)]
        mapped = {(round(x), round(y)) for x, y in turned.map_polygon(corners)}
        assert mapped == {(0, 0), (199, 0), (199, 99), (0, 99)}, k


def test_quality_verdicts():
    rng = np.random.default_rng(1)
    sharp = (rng.random((400, 640)) > 0.5).astype(np.uint8) * 200 + 30
    sharp = cv2.cvtColor(sharp, cv2.COLOR_GRAY2BGR)
    ok = assess_quality(sharp, prepare(sharp))
    assert ok.metrics["blur"].verdict == "ok"
    blurred = cv2.GaussianBlur(sharp, (0, 0), 8)
    assert assess_quality(blurred, prepare(blurred)).metrics["blur"].verdict == "fail"
    dark = (sharp * 0.15).astype(np.uint8)
    assert assess_quality(dark, prepare(dark)).metrics["brightness"].verdict == "fail"
    tiny = cv2.resize(sharp, (160, 100))
    assert assess_quality(tiny, prepare(tiny)).metrics["too_small"].verdict == "fail"
    grey = cv2.cvtColor(cv2.cvtColor(sharp, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert assess_quality(grey, prepare(grey)).metrics["black_and_white"].verdict == "warn"
    glare = np.full((400, 640, 3), 180, np.uint8)
    cv2.circle(glare, (320, 200), 60, (255, 255, 255), -1)
    assert assess_quality(glare, prepare(glare)).metrics["glare"].verdict in ("warn", "fail")



def test_pale_page_on_a_pale_table_is_found():
    """A white form photographed on a light desk (generator seed 11, form 6, the grid
    layout): the page's outline is faint and breaks up, and the print block inside it
    has the strong edges. The page is found, not the print block, and not nothing."""
    from fixtures.generator.build import claim_outputs

    (photo,) = claim_outputs(11, 6, ["photo"], layouts=("grid",))
    img = cv2.imdecode(np.frombuffer(photo.data, np.uint8), cv2.IMREAD_COLOR)
    quad = find_document_quad(img)
    assert quad is not None
    want = np.array(photo.truth["page_quad"])
    deviation = min(np.abs(np.roll(quad, k, axis=0) - want).max() for k in range(4))
    assert deviation < 40, (quad, want)
