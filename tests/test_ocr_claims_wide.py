"""The accuracy floor on claim forms of layouts and styles the extractor was not built
on: a small fixed set from the wide generator (`fixtures/claims-wide`, seed 2027: one
form per layout, including the held-out grid, cornerbox and twocol, with narratives, Kai
values and ticked boxes), clean and photographed. The figures that matter are measured on
fresh seeds by `bench/bench_extract.py` (README "Benchmarks"); this set only guards the
floor in the suite."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, rate, read_accuracy

from backoffice.accuracy import AccuracyTable

pytestmark = [pytest.mark.ocr, pytest.mark.slow]
WIDE = FIXTURES / "claims-wide"
# Read at this commit: clean 87/90, photo 86/90. One or two fields of slack, no more.
CLEAN_FLOOR = 0.95
PHOTO_FLOOR = 0.93


@pytest.fixture(scope="module")
def wide_accuracy(ocr_engine) -> AccuracyTable:
    return read_accuracy(WIDE, ocr_engine)


def test_every_layout_is_a_claim_form(wide_accuracy):
    for group in ("clean", "photo"):
        assert wide_accuracy.type_hits[group] == wide_accuracy.type_total[group] == 6


def test_clean_wide_forms_floor(wide_accuracy):
    assert rate(wide_accuracy, "clean") >= CLEAN_FLOOR, wide_accuracy.misses


def test_photographed_wide_forms_floor(wide_accuracy):
    assert rate(wide_accuracy, "photo") >= PHOTO_FLOOR, wide_accuracy.misses
