"""The accuracy floor on claim forms of layouts and styles the extractor was not built
on: a small fixed set from the wide generator (`fixtures/claims-wide`, seed 2027: one
form per layout, including the held-out grid, cornerbox and twocol, with narratives, Kai
values and ticked boxes), clean and photographed. The figures that matter are measured on
fresh seeds by `bench/bench_extract.py` (README "Benchmarks"); this set only guards the
floor in the suite."""

from __future__ import annotations

import pytest
from conftest import FIXTURES

from backoffice.accuracy import AccuracyTable, load_truth, split_key
from ocr.pipeline import read_document

pytestmark = [pytest.mark.ocr, pytest.mark.slow]
WIDE = FIXTURES / "claims-wide"
# Read at this commit: clean 87/90, photo 86/90. One or two fields of slack, no more.
CLEAN_FLOOR = 0.95
PHOTO_FLOOR = 0.93


@pytest.fixture(scope="module")
def wide_accuracy(ocr_engine) -> AccuracyTable:
    acc = AccuracyTable()
    for key, truth in sorted(load_truth(WIDE / "truth.jsonl").items()):
        rel, page = split_key(key)
        reading = read_document((WIDE / rel).read_bytes(), ocr_engine)[page]
        acc.add({**truth, "layout": truth["variant"]}, reading.doc_type.value,
                {k: f.value for k, f in reading.fields.items()})
    return acc


def _rate(acc: AccuracyTable, group: str) -> float:
    hits, total = acc.by_group()[group]
    return hits / total


def test_every_layout_is_a_claim_form(wide_accuracy):
    for group in ("clean", "photo"):
        assert wide_accuracy.type_hits[group] == wide_accuracy.type_total[group] == 6


def test_clean_wide_forms_floor(wide_accuracy):
    assert _rate(wide_accuracy, "clean") >= CLEAN_FLOOR, wide_accuracy.misses


def test_photographed_wide_forms_floor(wide_accuracy):
    assert _rate(wide_accuracy, "photo") >= PHOTO_FLOOR, wide_accuracy.misses
