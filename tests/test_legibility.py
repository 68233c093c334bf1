"""Could a person read each field of a degraded card photo (fixtures/generator/legibility.py),
and the benchmark's count over the legible ones (backoffice/accuracy.py)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from backoffice.accuracy import AccuracyTable
from fixtures.generator.idcard import CARD_H, CARD_W
from fixtures.generator.legibility import (
    MIN_RATIO,
    blur_width,
    card_legibility,
    field_legibility,
    washout,
)

FLAT = [[0, 0], [CARD_W, 0], [CARD_W, CARD_H], [0, CARD_H]]
NAME = [(186, 95, 300, 135)]  # a name's box on a card 1012 px wide: 40 px high


def _half(quad, k=0.5):
    return [[x * k, y * k] for x, y in quad]


def test_a_flat_sharp_card_is_legible_everywhere():
    got = field_legibility(NAME, (CARD_W, CARD_H), FLAT, {}, dense=True)
    assert got == {"legible": True, "glyph_px": 40.0, "blur_px": 1.0, "washed": 0.0}


def test_blur_against_the_glyphs_height_decides_and_digits_tolerate_more():
    small = _half(FLAT)  # the card 506 px wide: the name 20 px high
    motion = {"blur": {"motion": [8, 30.0]}}
    dense = field_legibility(NAME, (CARD_W, CARD_H), small, motion, dense=True)
    simple = field_legibility(NAME, (CARD_W, CARD_H), small, motion, dense=False)
    assert dense["glyph_px"] == 20.0 and dense["blur_px"] == 8.0
    assert 20 / 8 < MIN_RATIO["dense"] and not dense["legible"]
    assert 20 / 8 >= MIN_RATIO["simple"] and simple["legible"]
    # a Gaussian of sigma s blurs every stroke: wider than a motion blur of 2.355 s
    assert blur_width({"blur": {"gaussian": 2.0}}) > 2.355 * 2.0
    assert blur_width({"blur_sigma": 1.0}) == blur_width({"blur": {"gaussian": 1.0}})
    assert blur_width({}) == 1.0


def test_a_highlight_over_the_value_washes_it_out_and_one_beside_it_does_not():
    over = {"glare": [[243, 115, 80, 40, 0.0, 0.95]]}
    beside = {"glare": [[800, 500, 80, 40, 0.0, 0.95]]}
    assert not field_legibility(NAME, (CARD_W, CARD_H), FLAT, over, dense=True)["legible"]
    assert field_legibility(NAME, (CARD_W, CARD_H), FLAT, beside, dense=True)["legible"]
    import numpy as np

    centre = washout(over["glare"], np.array([[243.0, 115.0], [1000.0, 600.0]]))
    assert centre[0] == pytest.approx(0.95) and centre[1] < 1e-6


def test_a_highlight_recorded_without_its_strength_asks_for_a_new_set():
    with pytest.raises(ValueError, match="regenerate"):
        field_legibility(NAME, (CARD_W, CARD_H), FLAT, {"glare": [[243, 115, 80, 40]]}, True)


def test_the_committed_cards_say_which_fields_a_person_can_read():
    truth = [json.loads(line) for line in
             (ROOT / "fixtures" / "idcards" / "truth.jsonl").read_text("utf-8").splitlines()]
    for t in truth:
        assert set(t["legibility"]) == set(t["fields"]), t["file"]
        if t["variant"] != "hard":
            assert all(v["legible"] for v in t["legibility"].values()), t["file"]
    hard = [v["legible"] for t in truth if t["variant"] == "hard" for v in t["legibility"].values()]
    assert 0 < sum(hard) < len(hard)  # some hard fields are lost to a reader, not all
    # a card's legibility is a pure function of what the truth records
    t = next(t for t in truth if t["variant"] == "hard")
    assert card_legibility({}, (CARD_W, CARD_H), t["card_quad"], t["render"]) == {}


def test_the_accuracy_table_counts_legible_fields_and_wholly_legible_images():
    acc = AccuracyTable()
    base = {"variant": "hard", "doc_type": "id_card_back"}
    acc.add({**base, "file": "a.jpg", "fields": {"x": "1", "y": "2"},
             "legibility": {"x": {"legible": True}, "y": {"legible": False}}},
            "id_card_back", {"x": "1", "y": "0"})
    acc.add({**base, "file": "b.jpg", "fields": {"x": "1", "y": "2"},
             "legibility": {"x": {"legible": True}, "y": {"legible": True}}},
            "id_card_back", {"x": "1", "y": "0"})
    acc.add({**base, "file": "c.jpg", "fields": {"x": "1"}}, "id_card_back", {"x": "1"})
    assert acc.legible["hard"] == [2, 3]  # x, x right; b's y wrong
    assert acc.legible_docs["hard"] == [1, 2]  # b alone is wholly legible
    assert [m["legible"] for m in acc.misses] == [False, True]
