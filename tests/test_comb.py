"""An ID number printed one digit per box (a comb), which the text detector cuts into
pieces: found from the pixels and read again as one line (ocr/comb.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT

from domain.models import OcrLine
from ocr.comb import NOTE, comb_walls, id_number_from_comb, packed_digits


def _comb_page(digits: str, pitch: int = 30, x0: int = 300, y0: int = 20, h: int = 40):
    page = np.full((y0 + h + 20, x0 + pitch * len(digits) + 100, 3), 255, np.uint8)
    _ = cv2.rectangle(page, (x0 - 12, y0 - 4), (x0 + pitch * len(digits) + 12, y0 + h + 4),
                      (0, 0, 0), 2)  # the table cell around the comb
    for i, d in enumerate(digits):
        x = x0 + pitch * i
        _ = cv2.line(page, (x, y0), (x, y0 + h), (0, 0, 0), 2)
        _ = cv2.putText(page, d, (x + 7, y0 + h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    x = x0 + pitch * len(digits)
    _ = cv2.line(page, (x, y0), (x, y0 + h), (0, 0, 0), 2)
    _ = cv2.line(page, (x0, y0), (x, y0), (0, 0, 0), 2)
    _ = cv2.line(page, (x0, y0 + h), (x, y0 + h), (0, 0, 0), 2)
    return page


def _line(text, x0, y0, x1, y1):
    return OcrLine(text=text, confidence=0.99, polygon=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_the_walls_of_the_comb_are_found_past_the_digits_read_and_the_cell_border():
    page = _comb_page("110117200612316773")
    # the detector saw only some digits in the middle
    walls = comb_walls(page, (390, 28, 510, 55))
    assert walls is not None and len(walls) == 19
    assert walls[0] == 300 and walls[-1] == 300 + 30 * 18


def test_the_boxes_are_packed_into_one_line_without_walls():
    page = _comb_page("110117200612316773")
    walls = comb_walls(page, (390, 28, 510, 55))
    crop = packed_digits(page, walls, 22, 58)
    assert crop.shape[1] < walls[-1] - walls[0]  # tighter than the comb
    ink = (cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) < 128)
    assert not ink.all(axis=0).any()  # no wall left: no column is ink from top to bottom


def test_only_a_valid_number_on_the_insured_id_row_is_taken():
    page = _comb_page("110117200612316773")
    label = _line("证件号码：", 120, 22, 250, 58)
    pieces = [_line("1101", 330, 25, 420, 55), _line("7", 450, 25, 470, 55),
              _line("20", 480, 25, 530, 55)]

    def reads(text):
        return lambda crops: [(text, 0.99) for _ in crops]

    got = id_number_from_comb(page, [label, *pieces], reads("110117200612316773"))
    assert got is not None and got.value == "110117200612316773" and got.corrections == [NOTE]
    # a reading whose check digit fails is not taken
    assert id_number_from_comb(page, [label, *pieces], reads("110117200612316774")) is None
    # no insured ID label on the row: nothing is taken
    other = _line("申请人电话：", 120, 22, 250, 58)
    assert id_number_from_comb(page, [other, *pieces], reads("110117200612316773")) is None


@pytest.mark.ocr
@pytest.mark.slow
def test_a_table_form_with_its_id_number_in_boxes_reads_the_number(ocr_engine, tmp_path):
    # Form 6 of the wide set of seed 816: a table layout whose ID number is printed in a
    # comb; the detector cut it into 8 pieces and the page read no number before.
    subprocess.run([sys.executable, "-m", "fixtures.generator", "claims", "--wide", "--seed",
                    "816", "--start", "6", "--count", "1", "--variants", "clean", "--out",
                    str(tmp_path), "-q"], check=True, cwd=ROOT)
    from ocr.pipeline import read_page

    truth = json.loads((tmp_path / "truth.jsonl").read_text("utf-8").splitlines()[0])
    assert truth["render"]["id_boxes"] and truth["layout"] == "table"
    reading = read_page(cv2.imread(str(tmp_path / truth["file"])), ocr_engine, risk=False)
    field = reading.fields["insured_id_number"]
    assert field.value == truth["fields"]["insured_id_number"]
    assert NOTE in field.corrections
