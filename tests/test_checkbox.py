"""Check boxes read from the pixels when the recogniser did not read the tick."""

from __future__ import annotations

import doctest
import json

import cv2
import numpy as np
import pytest

from domain.models import OcrLine
from ocr import checkbox
from ocr.calibration import UNSEEN_SOURCE_CAP, calibrate_fields, use_calibration
from ocr.checkbox import relationship_from_boxes, ticked_by_pixels

OPTIONS = ("本人", "配偶", "子女", "父母")


def _row(marks: list[str], box: int = 28) -> tuple[np.ndarray, OcrLine]:
    """A row of check boxes 130 px apart, each marked: '' empty, 'v' a √ inside, 'f'
    filled; the words are drawn as grey bars (no font needed)."""
    page = np.full((80, 140 * len(marks) + 40, 3), 255, np.uint8)
    for i, mark in enumerate(marks):
        x, y = 20 + 140 * i, 25
        cv2.rectangle(page, (x, y), (x + box, y + box), (0, 0, 0), 2)
        cv2.rectangle(page, (x + box + 10, y + 4), (x + box + 70, y + box - 4), (90, 90, 90), -1)
        if mark == "v":
            cv2.line(page, (x + 5, y + 15), (x + 12, y + 24), (0, 0, 0), 3)
            cv2.line(page, (x + 12, y + 24), (x + 24, y + 4), (0, 0, 0), 3)
        elif mark == "t":  # a thin pen tick, two pixels wide at most (a tenth of the box)
            cv2.line(page, (x + 6, y + 15), (x + 12, y + 23), (0, 0, 0), 1, cv2.LINE_AA)
            cv2.line(page, (x + 12, y + 23), (x + 23, y + 6), (0, 0, 0), 1, cv2.LINE_AA)
        elif mark == "p":  # a √ drawn past the box's top, its long stroke upright at the end
            cv2.line(page, (x + 5, y + 15), (x + 12, y + 24), (0, 0, 0), 3)
            cv2.line(page, (x + 12, y + 24), (x + 22, y + 4), (0, 0, 0), 3)
            cv2.line(page, (x + 22, y + 4), (x + 23, y - 12), (0, 0, 0), 3)
        elif mark == "f":
            cv2.rectangle(page, (x, y), (x + box, y + box), (0, 0, 0), -1)
    w = page.shape[1]
    line = OcrLine(text=" ".join("□" + o for o in OPTIONS[:len(marks)]), confidence=0.93,
                   polygon=[(15, 22), (w - 15, 22), (w - 15, 58), (15, 58)])
    return page, line


def test_doctests():
    assert doctest.testmod(checkbox).failed == 0


@pytest.mark.parametrize(("marks", "want"), [
    (["", "v", "", ""], "配偶"),
    (["f", "", ""], "本人"),
    (["", "", "", "v"], "父母"),
])
def test_the_box_holding_the_tick_decides(marks, want):
    page, line = _row(marks)
    option, score = ticked_by_pixels(page, line)
    assert option == want and 0.5 <= score <= 1.0


@pytest.mark.parametrize("marks", [["", "", ""], ["v", "v", ""], ["f", "f", "", ""]])
def test_no_tick_or_two_ticks_decide_nothing(marks):
    page, line = _row(marks)
    assert ticked_by_pixels(page, line) is None


def test_boxes_that_do_not_match_the_options_decide_nothing():
    page, line = _row(["", "v", ""])
    line = line.model_copy(update={"text": "□本人 □配偶 □子女 □父母"})  # 4 named, 3 drawn
    assert ticked_by_pixels(page, line) is None


def test_a_value_from_the_pixels_says_so_and_is_calibrated_by_its_own_curve(tmp_path):
    page, line = _row(["", "", "v", ""])
    field = relationship_from_boxes(page, [line])
    assert field is not None and field.value == "子女"
    assert field.corrections == [checkbox.NOTE]
    assert 0.5 <= field.confidence <= 1.0 and field.ocr_confidence is None
    # Without a curve of its own (a text curve does not count), below every threshold.
    table = tmp_path / "cal.json"
    table.write_text(json.dumps({"curves": {"claim_form/choice": {"x": [0, 1], "y": [1, 1]}}}))
    use_calibration(table)
    try:
        got = calibrate_fields({"relationship": field}, "claim_form")["relationship"]
        assert got.confidence <= UNSEEN_SOURCE_CAP < 0.85
        assert got.ocr_confidence == field.confidence
        own = tmp_path / "own.json"
        own.write_text(json.dumps({"curves": {
            "claim_form/choice@pixels": {"x": [0.5, 1.0], "y": [0.9, 0.97]}}}))
        use_calibration(own)
        got = calibrate_fields({"relationship": field}, "claim_form")["relationship"]
        assert 0.9 <= got.confidence <= 0.97
    finally:
        use_calibration(None)
    # Two rows that disagree: nobody can tell.
    other, other_line = _row(["v", "", "", ""])
    both = np.vstack([page, other])
    shifted = other_line.model_copy(update={"polygon": [(x, y + page.shape[0])
                                                         for x, y in other_line.polygon]})
    assert relationship_from_boxes(both, [line, shifted]) is None


def test_a_thin_pen_tick_among_empty_boxes():
    page, line = _row(["", "", "t", ""])
    assert ticked_by_pixels(page, line)[0] == "子女"
    # as thin as grain: not a tick when the other boxes hold ink too
    page, line = _row(["", "", "t", ""])
    cv2.circle(page, (20 + 14, 25 + 14), 3, (0, 0, 0), -1)
    assert ticked_by_pixels(page, line) is None


def test_a_tick_drawn_past_the_top_of_its_box():
    page, line = _row(["", "p", "", ""])
    assert ticked_by_pixels(page, line)[0] == "配偶"


def test_a_character_taken_for_a_box_is_left_out():
    """A character with a square's strokes (口, 母) among the words is no box: the boxes
    are those where the text says they are."""
    page, line = _row(["", "", "v", ""])
    x = 20 + 140 * 1 + 28 + 40  # in 配偶's words, right after its box
    cv2.rectangle(page, (x, 27), (x + 24, 51), (0, 0, 0), 2)
    cv2.line(page, (x + 4, 39), (x + 20, 39), (0, 0, 0), 3)
    assert ticked_by_pixels(page, line)[0] == "子女"


def test_an_option_whose_box_was_not_read_and_a_wrapped_gap():
    """□本人 父母 口配偶 子女: two boxes the recogniser dropped (a tick over one), the
    spaces of the text narrower than the gaps on the page."""
    page, line = _row(["", "", "", "v"])
    line = line.model_copy(update={"text": "□本人 配偶 口子女 父母"})
    assert ticked_by_pixels(page, line)[0] == "父母"


@pytest.mark.ocr
@pytest.mark.slow
def test_ticks_read_from_the_pixels_of_real_forms(ocr_engine):
    """On the bundled wide forms read by the real OCR, the pixels of every row of options
    (``read_page``'s trace: the page and lines as read) show the ticked box the truth
    holds, whenever they decide (bench/bench_ticks.py measures this on whole sets)."""
    from conftest import FIXTURES

    from backoffice.accuracy import load_truth, split_key
    from ocr.decode import decode
    from ocr.pipeline import read_page

    folder = FIXTURES / "claims-wide"
    decided = 0
    for key, item in sorted(load_truth(folder / "truth.jsonl").items()):
        want = item["fields"].get("relationship")
        if not want or item["variant"] not in ("clean", "photo"):
            continue
        name, page = split_key(key)
        trace: dict = {}
        read_page(decode((folder / name).read_bytes())[page].image, ocr_engine, risk=False,
                  trace=trace)
        assert trace["image"].ndim == 3 and trace["lines"]
        field = relationship_from_boxes(trace["image"], trace["lines"])
        if field is not None:
            decided += 1
            assert field.value == want, key
    assert decided >= 2


def test_a_slanted_row_with_small_boxes_and_no_glyph_read_for_the_ticked_one():
    """Seed 721, photo 0026: a row at 8 degrees whose ticked box (before 本人) the
    recogniser did not read, the boxes 18 px in a line box 43 px tall. Unlevelled, the
    line's bounding box was twice as tall again and no box was found."""
    page = np.full((260, 760, 3), 255, np.uint8)
    for i in range(4):
        x, y = 60 + 150 * i, 120
        cv2.rectangle(page, (x, y), (x + 18, y + 18), (0, 0, 0), 2)
        cv2.rectangle(page, (x + 26, y + 2), (x + 70, y + 16), (90, 90, 90), -1)
        if i == 0:
            cv2.line(page, (x + 3, y + 9), (x + 8, y + 15), (0, 0, 0), 2)
            cv2.line(page, (x + 8, y + 15), (x + 16, y + 2), (0, 0, 0), 2)
    # the text starts after the first box: its glyph was not read
    level = np.float32([(82, 108), (700, 108), (700, 151), (82, 151)])
    turn = cv2.getRotationMatrix2D((380.0, 130.0), 8.0, 1.0)
    slanted = cv2.warpAffine(page, turn, (760, 260), borderValue=(255, 255, 255))
    polygon = [tuple(map(float, p)) for p in cv2.transform(level[None], turn)[0]]
    line = OcrLine(text="本人 □配偶 □子女 □父母", confidence=0.86, polygon=polygon)
    found = ticked_by_pixels(slanted, line)
    assert found is not None and found[0] == "本人"


def test_a_row_wrapped_onto_a_second_line_is_read_as_one_row():
    """Seed 879, clean 0011: □本人 □父母 □配偶 □子女 on one line and ☑其他 (a √ read
    as an empty box) on the next; the tick is in the box of the second line."""
    page = np.full((160, 620, 3), 255, np.uint8)

    def box(x: int, y: int, ticked: bool = False) -> None:
        cv2.rectangle(page, (x, y), (x + 22, y + 22), (0, 0, 0), 2)
        cv2.rectangle(page, (x + 30, y + 3), (x + 80, y + 19), (90, 90, 90), -1)
        if ticked:
            cv2.line(page, (x + 4, y + 11), (x + 10, y + 19), (0, 0, 0), 3)
            cv2.line(page, (x + 10, y + 19), (x + 20, y + 3), (0, 0, 0), 3)

    for i in range(4):
        box(20 + 140 * i, 30)
    box(20, 80, ticked=True)
    first = OcrLine(text="□本人 □父母 □配偶 □子女", confidence=0.93,
                    polygon=[(15, 24), (560, 24), (560, 58), (15, 58)])
    second = OcrLine(text="□其他", confidence=0.97,
                     polygon=[(15, 74), (110, 74), (110, 108), (15, 108)])
    assert ticked_by_pixels(page, first) is None  # alone, its boxes are all empty
    field = relationship_from_boxes(page, [first, second])
    assert field is not None and field.value == "其他"
    assert field.boxes == [first.polygon, second.polygon]
    # a line under the row that is not made of options only is no part of it
    prose = second.model_copy(update={"text": "□其他 本人声明"})
    assert relationship_from_boxes(page, [first, prose]) is None


def test_a_row_of_options_with_no_box_glyph_read_is_still_a_row():
    """Seed 724, clean 0027: filled and empty boxes read as nothing (本人 配偶子女 父母
    其他): a line of three options or more and nothing else is a row of boxes. Two
    options, or options in prose, are not."""
    page, line = _row(["", "", "f", ""])
    bare = line.model_copy(update={"text": "本人 配偶 子女 父母"})
    field = relationship_from_boxes(page, [bare])
    assert field is not None and field.value == "子女"
    assert relationship_from_boxes(page, [bare.model_copy(update={"text": "本人 配偶"})]) is None
    prose = bare.model_copy(update={"text": "本人授权配偶子女父母查询"})
    assert relationship_from_boxes(page, [prose]) is None
