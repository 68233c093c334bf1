"""A value the text detector missed, read again from its cell (ocr/cells.py)."""

from __future__ import annotations

import doctest
import json

import cv2
import pytest
from conftest import ROOT

import ocr.cells as cells_module
from ocr.cells import NOTE, sex_from_cell


def test_doctests():
    assert doctest.testmod(cells_module).failed == 0


def test_no_label_or_no_sex_in_the_cell_reads_nothing():
    import numpy as np

    from domain.models import OcrLine

    page = np.full((300, 600, 3), 255, np.uint8)
    label = OcrLine(text="性别", confidence=1.0, polygon=[(10, 10), (90, 10), (90, 50), (10, 50)])
    assert sex_from_cell(page, [label], lambda crops: [("", 0.0)]) is None
    assert sex_from_cell(page, [label], lambda crops: [("男女", 0.9)]) is None
    other = label.model_copy(update={"text": "姓名"})
    assert sex_from_cell(page, [other], lambda crops: [("男", 0.9)]) is None


@pytest.mark.ocr
def test_the_sex_the_detector_missed_is_read_from_its_cell_by_the_real_recogniser(ocr_engine):
    """Each bundled clean front read with the real OCR, its sex line then taken away (as
    when the detector finds no box around 男): the cell right of 性别 gives it back."""
    from ocr.pipeline import read_page

    truth = [json.loads(line) for line in
             (ROOT / "fixtures" / "idcards" / "truth.jsonl").read_text("utf-8").splitlines()]
    fronts = [t for t in truth if t["doc_type"] == "id_card_front" and t["variant"] == "clean"][:3]
    tried = 0
    for t in fronts:
        image = cv2.imread(str(ROOT / "fixtures" / "idcards" / t["file"]))
        page = read_page(image, ocr_engine, risk=False)
        label = next((ln for ln in page.lines if ln.text.replace(" ", "") == "性别"), None)
        if label is None:
            continue  # 性别男 read as one line: nothing to take away
        tried += 1
        lines = [ln for ln in page.lines if ln.text.strip() not in ("男", "女")]
        found = sex_from_cell(image, lines, ocr_engine.read_crops)
        assert found is not None and found.value == t["fields"]["sex"], t["file"]
        assert found.corrections == [NOTE]
    assert tried, "no front with 性别 on a line of its own among the fixtures"
