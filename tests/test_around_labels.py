"""Values the detector missed, looked for again around their labels (ocr/around_labels.py)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from domain.models import ExtractedField, OcrLine
from ocr import around_labels
from ocr.around_labels import NOTE, lines_around, regions


def test_doctests():
    assert doctest.testmod(around_labels).failed == 0


def _line(text: str, box: tuple[float, float, float, float]) -> OcrLine:
    x0, y0, x1, y1 = box
    return OcrLine(text=text, confidence=0.99, polygon=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_only_lines_the_page_did_not_have_are_read_and_kept():
    """The detector, run again on a neighbourhood, finds the label again (not new), a
    value (new) and a smudge the recogniser reads below the threshold (dropped)."""
    image = np.full((400, 900, 3), 255, np.uint8)
    label = _line("户名", (100, 100, 160, 130))
    seen: list[tuple[int, int]] = []

    def detect(crop):
        seen.append(crop.shape[:2])
        # in the crop's pixels: the neighbourhood starts at (70, 85)
        return [np.float32([(30, 15), (90, 15), (90, 45), (30, 45)]),   # the label again
                np.float32([(32, 52), (90, 52), (90, 84), (32, 84)]),   # the value under it
                np.float32([(300, 60), (320, 60), (320, 70), (300, 70)])]  # a smudge

    def read(crops):
        assert len(crops) == 2
        return [("庞瑄", 0.97), ("一", 0.2)]

    found = lines_around(image, [label], [(100, 100, 160, 130)], detect,
                         lambda img, poly: img[10:20, 10:20], read, 0.5)
    assert seen == [(205 - 85, 160 + 450 - 70)]
    assert [ln.text for ln in found] == ["庞瑄"]
    assert found[0].polygon[0] == (102.0, 137.0)  # back in the page's pixels


def test_no_neighbourhood_more_than_the_cap():
    labels = [(100, 100 + 200 * i, 160, 130 + 200 * i) for i in range(6)]
    assert len(regions(labels, (2000, 900))) == 6
    calls = []
    lines_around(np.full((2000, 900, 3), 255, np.uint8), [], labels,
                 lambda crop: calls.append(crop) or [], lambda img, p: img, lambda c: [], 0.5)
    assert len(calls) == around_labels.MAX_REGIONS


@pytest.mark.ocr
def test_a_value_the_first_pass_did_not_see_is_found_around_its_label(ocr_engine):
    """A bundled wide form read by the real OCR, with the account holder's line taken
    out of what the first pass saw (as the detector left 庞瑄 out on seed 724 clean
    0028): looked for again around its label, it is found and read, and says so;
    the other fields are as they were."""
    from conftest import FIXTURES

    from backoffice.accuracy import load_truth, split_key
    from domain.models import DocType
    from ocr.decode import decode
    from ocr.extract import extract
    from ocr.pipeline import _values_around_labels, read_page

    folder = FIXTURES / "claims-wide"
    items = [(k, v) for k, v in sorted(load_truth(folder / "truth.jsonl").items())
             if v["variant"] == "clean"]
    key, item = items[0]
    name, page = split_key(key)
    trace: dict = {}
    read_page(decode((folder / name).read_bytes())[page].image, ocr_engine, risk=False,
              trace=trace)
    lines = trace["lines"]
    found = extract(DocType.CLAIM_FORM, lines)
    holder = found["account_name"]
    assert holder.value == item["fields"]["account_name"]
    without = [ln for ln in lines if ln.polygon not in holder.boxes]
    assert len(without) == len(lines) - 1
    missing = extract(DocType.CLAIM_FORM, without)
    assert missing.get("account_name") is None or missing["account_name"].value is None

    class Prepared:
        image = trace["image"]

    fields, more = _values_around_labels(ocr_engine, Prepared, missing, without)
    assert fields["account_name"].value == item["fields"]["account_name"]
    assert NOTE in fields["account_name"].corrections
    assert len(more) > len(without)
    assert {k: f.value for k, f in fields.items() if k != "account_name"} == {
        k: f.value for k, f in missing.items() if k != "account_name"}
    assert isinstance(fields["account_name"], ExtractedField)
