"""Risk signals (issue #18): the portrait found where the card's edge is not the card's (a
screen's device) and under a light falling off across the card, a greyscale file flagged
as a possible copy, the edge band of a screen, and a page called a copy or a screen, not both."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from domain.models import DocType
from fixtures.generator import risk as gen
from ocr.decode import Limits, decode
from ocr.preprocess import prepare
from ocr.risk import assess_risk, find_portrait, is_greyscale, measure

SEED = 4244  # a seed of its own: the model was fitted on others
ROOT = Path(__file__).resolve().parents[1]


@cache
def _front(index: int, kind: str, tier: str) -> bytes:
    return next(o.data for o in gen.risk_outputs(SEED, index, [kind], [tier])
                if o.truth["side"] == "front")


def _present(data: bytes) -> float:
    """The portrait's presence on the front as the pipeline turns it (upright by its
    text: here the better of the two landscape turns)."""
    prepared = prepare(decode(data, Limits())[0].image)
    if prepared.image.shape[0] > prepared.image.shape[1]:
        prepared = prepared.rotated(1)
    return max(find_portrait(prepared).present, find_portrait(prepared.rotated(2)).present)


@pytest.mark.parametrize("tier", ["clean", "photo", "hard"])
def test_portrait_is_found_on_a_card_shown_on_a_screen(tier):
    # the edge found is the device's: the card is a light rectangle inside it
    fronts = [_front(i, "recapture", tier) for i in (0, 2, 4)]
    assert sum(_present(d) >= 0.5 for d in fronts) >= 2


def test_portrait_is_found_on_hard_genuine_fronts():
    found = [_present(_front(i, "genuine", "hard")) >= 0.5 for i in range(4)]
    assert sum(found) >= 3, found


@pytest.mark.parametrize("tier", ["photo", "hard"])
def test_fronts_without_a_face_region_stay_flagged(tier):
    missing = [_present(_front(i, "no_portrait", tier)) < 0.5 for i in range(3)]
    assert sum(missing) >= 2, missing


def test_a_greyscale_file_is_flagged_as_a_possible_copy_and_says_why():
    """A grey file (a 16-bit grey TIFF) has no colour to tell a copy by: a person looks,
    as a cloud API's copy warning on a black-and-white image asks."""
    image = decode((ROOT / "fixtures" / "bad" / "card_16bit.tif").read_bytes(), Limits())[0].image
    assert is_greyscale(image)
    prepared = prepare(image)
    if prepared.image.shape[0] > prepared.image.shape[1]:
        prepared = prepared.rotated(1)
    report, _ = assess_risk(image, prepared, DocType.ID_CARD_FRONT)
    copy = report.signals["photocopy"]
    assert copy.flagged and "greyscale" in copy.reason and copy.region


def test_greyscale_is_no_colour_at_all():
    grey = np.full((60, 80, 3), 128, np.uint8)
    assert is_greyscale(grey) and is_greyscale(grey[..., 0])
    tinted = grey.copy()
    tinted[..., 0] += 1  # a unit of tint (a colour JPEG of a grey copy) is colour
    assert not is_greyscale(tinted)
    # generated photocopies (grey ones too) keep their paper's tint
    for i in range(2):
        o = next(iter(gen.risk_outputs(SEED, i, ["photocopy"], ["clean"])))
        assert not is_greyscale(decode(o.data, Limits())[0].image)


def test_frame_band_sees_the_screen_inside_the_edge_found():
    # the edge found round a card shown on a screen is often the device's: its band is
    # the screen's dark ground; a genuine card's band is its own paper
    def band(data: bytes) -> float:
        image = decode(data, Limits())[0].image
        return measure(image, prepare(image)).features["frame_band"]

    screens = [band(_front(i, "recapture", "photo")) for i in (0, 2, 4, 6)]
    cards = [band(_front(i, "genuine", "photo")) for i in (0, 2, 4, 6)]
    assert max(cards) < 0.15, cards
    assert sum(s > 0.2 for s in screens) >= 2, screens


def test_a_page_is_a_copy_or_a_screen_not_both():
    from domain.models import RiskSignal
    from ocr.risk import _one_of_copy_or_screen

    model = {"signals": {"photocopy@front": {"threshold": 0.6}, "recapture": {"threshold": 0.5}}}
    signals = {"photocopy": RiskSignal(score=0.7, flagged=True, reason="looks like a photocopy: x"),
               "recapture": RiskSignal(score=0.95, flagged=True, reason="looks like a photo: y")}
    _one_of_copy_or_screen(signals, model, "front")
    assert signals["recapture"].flagged and not signals["photocopy"].flagged
    assert signals["photocopy"].score == 0.7 and "rather" in signals["photocopy"].reason
    # one flag alone stays
    alone = {"photocopy": RiskSignal(score=0.7, flagged=True, reason="x"),
             "recapture": RiskSignal(score=0.2, flagged=False, reason="y")}
    _one_of_copy_or_screen(alone, model, "front")
    assert alone["photocopy"].flagged
