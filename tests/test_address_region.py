"""A card's address region chosen among the real ones by the recogniser (ocr/address.py)."""

from __future__ import annotations

import doctest
import json

import cv2
import numpy as np
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

import ocr.address as address_module
from domain.gb11643 import address_prefixes
from ocr.address import candidate_lines, choose_region, region_end


def test_doctests():
    assert doctest.testmod(address_module).failed == 0


def test_every_prefix_is_a_province_then_places():
    from domain.gb11643 import known_places, provinces

    prefixes = address_prefixes()
    assert len(prefixes) > 5000
    assert all(p.startswith(provinces()) for p in prefixes)
    assert all(known_places(p) for p in prefixes[::50])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(address_prefixes()), st.text("路街号村镇组0123456789", min_size=2, max_size=12),
       st.integers(5, 12))
def test_a_region_put_back_keeps_the_rest_as_read(prefix, rest, width):
    """Whatever the region and where the lines break, each candidate is the region and
    then the rest exactly as read, over as many lines as were read."""
    text = prefix + rest
    lines = [text[i:i + width] for i in range(0, len(text), width)]
    misread = lines[0][:1] + "某" + lines[0][2:]  # one character of the region misread
    for split in candidate_lines(prefix, [misread, *lines[1:]]):
        assert len(split) == len(lines)
        assert "".join(split) == text
    assert region_end(prefix, text) == len(prefix)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("湖南省湘潭市雨湖区内蒙古某路1号", max_size=14), min_size=1, max_size=3))
def test_any_reading_gives_candidates_of_as_many_lines(lines):
    """However short, long or empty the lines read, every candidate has their number
    of lines and holds the region and the rest of what was read."""
    prefixes = ("湖南省湘潭市雨湖区", "内蒙古自治区兴安盟科尔沁右翼前旗")
    for prefix in prefixes:
        end = region_end(prefix, "".join(lines))
        for split in candidate_lines(prefix, lines):
            assert len(split) == len(lines)
            assert "".join(split) == prefix + "".join(lines)[end:]
    crops = [np.zeros((48, 300, 3), np.uint8)] * len(lines)
    got = choose_region(lines, crops, prefixes, lambda b, t: [[-1.0 * len(x) for x in t]])
    assert got is None or len(got[0]) == len(lines)


def test_the_region_is_taken_only_when_it_stands_out():
    prefixes = ("湖南省湘潭市雨湖区", "湖南省湘潭市岳塘区", "湖南省湘潭市湘潭县")
    crops = [np.zeros((48, 400, 3), np.uint8), np.zeros((48, 300, 3), np.uint8)]
    lines = ["湖南省浦潭市雨湖区翠苑", "29栋6单元2004号"]

    def says(first_line):
        def score(batch, texts):
            return [[-2.0 if t in (first_line, lines[1]) else -14.0 for t in texts]]
        return score

    got = choose_region(lines, crops, prefixes, says("湖南省湘潭市雨湖区翠苑"))
    assert got is not None and got[0] == ["湖南省湘潭市雨湖区翠苑", "29栋6单元2004号"]
    assert got[1] > 0.99
    # a label before the region is scored with it and kept out of the value
    seen = []

    def with_label(batch, texts):
        seen.extend(texts)
        return [[-2.0 if t.endswith("湘潭市雨湖区翠苑") or t == lines[1] else -14.0 for t in texts]]

    got = choose_region(lines, crops, prefixes, with_label, lead="住址")
    assert got is not None and got[0][0] == "湖南省湘潭市雨湖区翠苑"
    assert "住址湖南省湘潭市雨湖区翠苑" in seen
    # two regions alike: nothing is chosen; an address already real: nothing to do
    assert choose_region(lines, crops, prefixes, lambda b, t: [[-2.0] * len(t)]) is None
    assert choose_region(["湖南省湘潭市雨湖区翠苑"], crops[:1], prefixes, says("")) is None


@pytest.mark.ocr
def test_the_real_recogniser_puts_back_a_misread_region(ocr_engine):
    """Bundled photographed fronts, one character of the address's region taken for
    another in the first line as read: the real recogniser's likelihoods on the line
    crops give the printed region back, the rest of the address as read."""
    from ocr.pipeline import read_page

    truth = [json.loads(line) for line in
             (ROOT / "fixtures" / "idcards" / "truth.jsonl").read_text("utf-8").splitlines()]
    fronts = [t for t in truth if t["doc_type"] == "id_card_front" and t["variant"] == "photo"][:3]
    assert fronts
    prefixes = address_prefixes()
    tried = 0
    for t in fronts:
        image = cv2.imread(str(ROOT / "fixtures" / "idcards" / t["file"]))
        trace: dict = {}
        page = read_page(image, ocr_engine, risk=False, trace=trace)
        assert page.fields["address"].value == t["fields"]["address"], t["file"]
        printed = t["address_lines"]
        found = [next(ln for ln in trace["lines"] if ln.text.replace(" ", "").endswith(text))
                 for text in printed]
        crops = [ocr_engine.crop(trace["image"], np.asarray(ln.polygon, np.float32))
                 for ln in found]
        region = next(p for p in prefixes if t["fields"]["address"].startswith(p))
        at = min(len(region), len(printed[0])) - 2  # a place's character on the first line
        misread = printed[0][:at] + "未" + printed[0][at + 1:]
        lead = found[0].text.replace(" ", "")[:-len(printed[0])]
        got = choose_region([misread, *printed[1:]], crops, prefixes, ocr_engine.score_texts,
                            lead=lead)
        assert got is not None and got[0] == printed, t["file"]
        tried += 1
    assert tried == len(fronts)


@pytest.mark.ocr
def test_an_address_end_the_detector_missed_on_its_own_row_is_read_back(ocr_engine,
                                                                       idcard_truth):
    """Bundled fronts whose address wraps its last characters onto a row of their own
    (04室, 02号): that row's detected line taken away, as when the detector finds no box
    around a word so short, the row under the address gives them back."""
    from conftest import FIXTURES

    from domain.models import DocType
    from ocr.address import TAIL_NOTE
    from ocr.extract import extract
    from ocr.pipeline import _address_tail, read_page
    from ocr.preprocess import Prepared

    done = 0
    for rel, truth in sorted(idcard_truth.items()):
        tail = (truth.get("address_lines") or ["", "too long"])[-1]
        if truth["variant"] == "hard" or len(tail) > 4:
            continue
        trace: dict = {}
        read_page(cv2.imread(str(FIXTURES / "idcards" / rel)), ocr_engine, risk=False,
                  trace=trace)
        kept = [ln for ln in trace["lines"] if ln.text.replace(" ", "") != tail]
        assert len(kept) == len(trace["lines"]) - 1, rel
        found = extract(DocType.ID_CARD_FRONT, kept)
        want = truth["fields"]["address"]
        assert found["address"].value == want[:-len(tail)], rel
        prepared = Prepared(image=trace["image"], to_original=trace["to_original"])
        out, lines = _address_tail(ocr_engine, prepared, found, kept)
        assert out["address"].value == want and TAIL_NOTE in out["address"].corrections, rel
        assert len(lines) == len(kept) + 1
        # read whole, nothing is added
        whole = extract(DocType.ID_CARD_FRONT, trace["lines"])
        assert _address_tail(ocr_engine, prepared, whole, trace["lines"])[0] == whole, rel
        done += 1
    assert done >= 4
