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


def test_a_wrapped_label_below_the_comb_and_a_long_piece_of_it():
    """Seed 724, photo 0024: the label wrapped (被保险人 / 证件号码：), its second line
    lower than the comb's one-digit pieces, and the first nine boxes read as one piece:
    the row is that of the pieces beside the label and of the pieces on their row, and a
    piece up to 17 characters long is a piece."""
    page = _comb_page("31010920100228362X")
    label = _line("证件号码：", 120, 40, 250, 66)
    pieces = [_line("310109201", 300, 21, 570, 56), _line("0", 570, 26, 600, 50),
              _line("0", 600, 26, 630, 50), _line("2", 630, 26, 660, 50),
              _line("28362X", 690, 21, 840, 56)]
    got = id_number_from_comb(page, [label, *pieces],
                              lambda crops: [("31010920100228362X", 0.99) for _ in crops])
    assert got is not None and got.value == "31010920100228362X"
    # the pieces alone on the label's row (two) are too few for a comb
    assert id_number_from_comb(page, [label, pieces[0], pieces[4]],
                               lambda crops: [("31010920100228362X", 0.99)]) is None


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


def test_a_comb_on_a_tilted_photo_is_levelled_first():
    page = _comb_page("110117200612316773")
    page = np.pad(page, ((150, 150), (0, 0), (0, 0)), constant_values=255)
    label = [(120, 172), (250, 172), (250, 208), (120, 208)]
    pieces = [[(330, 175), (420, 175), (420, 205), (330, 205)],
              [(450, 175), (470, 175), (470, 205), (450, 205)],
              [(480, 175), (530, 175), (530, 205), (480, 205)],
              [(560, 175), (650, 175), (650, 205), (560, 205)]]
    h, w = page.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), -6.0, 1.0)  # 6 degrees down to the right
    tilted = cv2.warpAffine(page, turn, (w, h), borderValue=(255, 255, 255))

    def moved(poly):
        pts = np.asarray(poly, np.float64) @ turn[:, :2].T + turn[:, 2]
        return [(float(x), float(y)) for x, y in pts]

    lines = [OcrLine(text="证件号码：", confidence=0.99, polygon=moved(label))]
    lines += [OcrLine(text=t, confidence=0.99, polygon=moved(p))
              for t, p in zip(("1101", "7", "20", "0612"), pieces, strict=True)]
    got = id_number_from_comb(tilted, lines, lambda crops: [("110117200612316773", 0.99)] * len(crops))
    assert got is not None and got.value == "110117200612316773"
    # the box it reports is on the tilted page: around the comb's middle
    xs = [x for x, _y in got.boxes[0]]
    assert min(xs) < 320 and max(xs) > 800
