"""The attribution of lost legible fields (bench/bench_legible.py): where a field that a
person can read was lost, and whether the recogniser itself prefers the wrong reading."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "bench"))

import bench_legible

from domain.models import DocType, ExtractedField
from ocr.pipeline import PageReading, read_page


def test_a_page_not_read_as_its_type_and_a_field_not_found_are_told_apart():
    """Neither needs the recogniser: the page's type, then whether the field has a value."""
    unknown = PageReading(doc_type=DocType.UNKNOWN)
    assert bench_legible.place(None, {}, unknown, "id_card_front", "name", "张三") == ("page", None)
    front = PageReading(doc_type=DocType.ID_CARD_FRONT,
                        fields={"name": ExtractedField(value=None, confidence=0.0)})
    assert bench_legible.place(None, {}, front, "id_card_front", "name", "张三") == (
        "not found", None)
    assert bench_legible.place(None, {}, front, "id_card_front", "sex", "男") == (
        "not found", None)
    # a value from no detected line (a row read from its band, say) is not scored
    banded = PageReading(doc_type=DocType.ID_CARD_FRONT, fields={"name": ExtractedField(
        value="张三", confidence=0.5, boxes=[[(0, 0), (10, 0), (10, 5), (0, 5)]])})
    assert bench_legible.place(None, {}, banded, "id_card_front", "name", "张四") == (
        "not scored", None)


def test_the_crops_of_a_fields_lines_are_joined_at_one_height():
    class Cropper:
        def crop(self, image, poly):
            x0, y0 = poly.min(axis=0).astype(int)
            x1, y1 = poly.max(axis=0).astype(int)
            return image[y0:y1, x0:x1]

    image = np.zeros((100, 300, 3), np.uint8)
    boxes = [[(0, 0), (200, 0), (200, 24), (0, 24)], [(0, 50), (60, 50), (60, 62), (0, 62)]]
    joined = bench_legible.joined_crop(Cropper(), image, boxes)
    assert joined.shape[0] == bench_legible._JOIN_HEIGHT
    # 200x24 -> 400 wide, a gap of 24, 60x12 -> 240 wide
    assert joined.shape[1] == 400 + 24 + 240


@pytest.mark.ocr
def test_a_wrong_truth_is_the_recognisers_and_its_own_reading_is_within_reach(
        ocr_engine, idcard_truth):
    """On bundled phone photos of fronts (flattened from a perspective), the lines of a
    name and of a two-line address read right: the value as read is within reach of
    itself (gap 0), and another name or street, which the pixels do not show, is one the
    recogniser prefers the reading to, by several nats. A crop cut in the wrong frame,
    or upside down, would not tell them apart."""
    done = 0
    for rel, truth in sorted(idcard_truth.items()):
        if not rel.startswith("photo/") or truth["doc_type"] != "id_card_front":
            continue
        trace: dict = {}
        reading = read_page(cv2.imread(str(FIXTURES / "idcards" / rel)), ocr_engine,
                            risk=False, trace=trace)
        for field, other in (("name", "欧阳建国"), ("address", None)):
            got = reading.fields.get(field)
            if got is None or got.value != truth["fields"][field] or (
                    field == "address" and len(got.boxes) < 2):
                continue
            assert bench_legible.place(ocr_engine, trace, reading, "id_card_front", field,
                                       got.value) == ("within reach", 0.0), rel
            wrong = other or got.value[:-4] + "人民广场"
            where, gap = bench_legible.place(ocr_engine, trace, reading, "id_card_front",
                                             field, wrong)
            assert where == "recogniser" and gap > 5.0, (rel, field, gap)
            done += 1
    assert done >= 4
