"""A name's surname chosen among the known ones by the recogniser's likelihood
(ocr/names.py)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from conftest import value_line

import domain.given_names as given_names_module
import ocr.names as names_module
from ocr.names import SURNAME_MARGIN, choose_given, choose_name, surname_candidates


def test_doctests():
    assert doctest.testmod(names_module).failed == 0
    assert doctest.testmod(given_names_module).failed == 0


def test_every_candidate_keeps_the_rest_of_the_name_as_read():
    from hypothesis import given
    from hypothesis import strategies as st

    han = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)

    @given(st.text(han, min_size=2, max_size=5), st.lists(st.text(han, min_size=1, max_size=2),
                                                          max_size=6))
    def check(name, surnames):
        out = surname_candidates(name, surnames)
        assert out[0] == name and len(out) == len(set(out))
        for cand in out[1:]:
            assert any(cand == s + name[cut:] for s in surnames for cut in (1, 2))

    check()


def _scorer(table: dict[str, float]):
    """A recogniser's likelihoods: those of ``table``, every other text far behind."""
    return lambda crops, texts: [[table.get(t, -60.0) for t in texts] for _ in crops]


def test_a_surname_is_changed_only_when_the_pixels_make_another_far_likelier():
    crop = np.zeros((32, 120, 3), np.uint8)
    surnames = ["衡", "张", "慕容", "帕"]
    got = choose_name("集金", crop, surnames, _scorer({"集金": -11.3, "衡金": -5.8}))
    assert got is not None and got[0] == "衡金" and got[1] > 0.99
    # not far enough ahead: the reading stays
    assert choose_name("集金", crop, surnames,
                       _scorer({"集金": -8.0, "衡金": -8.0 + SURNAME_MARGIN - 0.1})) is None
    # the reading itself the likeliest: nothing to change (帕提古丽 has no listed surname)
    assert choose_name("帕提古丽", crop, surnames, _scorer({"帕提古丽": -1.0})) is None
    # a label read on the same line is scored with every candidate
    got = choose_name("暴容可春", crop, surnames,
                      _scorer({"姓名暴容可春": -14.0, "姓名慕容可春": -6.0}), lead="姓名")
    assert got is not None and got[0] == "慕容可春"
    # a transliterated name with its dot, or a reading with digits, is left as read
    assert choose_name("买买提·艾力", crop, surnames, _scorer({})) is None
    assert choose_name("张3", crop, surnames, _scorer({"张3": -1.0})) is None


@pytest.mark.ocr
def test_the_real_recogniser_puts_back_a_misread_surname(ocr_engine, idcard_truth):
    """The name line of bundled clean fronts, given with its surname misread: scored by
    the real recogniser, the printed surname is put back and the rest kept."""
    from domain.surnames import surnames

    misread = {"白": "自", "平": "乎", "张": "弓", "王": "玉", "李": "季", "刘": "列"}
    done = 0
    for rel, truth in sorted(idcard_truth.items()):
        name = truth["fields"].get("name") or ""
        if not rel.startswith("clean/") or name[:1] not in misread:
            continue
        on_line = value_line(ocr_engine, rel, name)
        assert on_line is not None, rel
        crop, lead, tail = on_line
        wrong = misread[name[0]] + name[1:]
        got = choose_name(wrong, crop, sorted(surnames()), ocr_engine.score_texts,
                          lead=lead, tail=tail)
        assert got is not None and got[0] == name, (rel, wrong, got)
        assert choose_name(name, crop, sorted(surnames()), ocr_engine.score_texts,
                           lead=lead, tail=tail) is None, rel
        done += 1
    assert done >= 2


def test_a_name_whose_surname_was_chosen_goes_to_a_person():
    from domain.models import ExtractedField
    from ocr.calibration import UNSEEN_SOURCE_CAP, calibrate_fields
    from ocr.names import SURNAME_NOTE

    for doc_type, field in (("id_card_front", "name"), ("claim_form", "insured_name")):
        chosen = ExtractedField(value="衡金", confidence=0.999, raw="集金",
                                corrections=[SURNAME_NOTE])
        routed = calibrate_fields({field: chosen}, doc_type)[field]
        assert routed.confidence <= UNSEEN_SOURCE_CAP < 0.85


def test_a_given_name_character_is_changed_when_likelihood_and_prior_together_say_so():
    """The recogniser barely prefers 阐 to 明 on the crop; 明 is 13,000 times commoner
    in given names: 明 is taken. Where the crop plainly shows the rare character, it
    stays; a change says how sure it is; a surname is never touched."""
    from domain.given_names import common_given_chars, given_char_log_prior

    crop = np.zeros((32, 120, 3), np.uint8)
    vocab = common_given_chars(3000)

    def scorer(table):
        return lambda crops, texts: [[table.get(t, -40.0) for t in texts] for _ in crops]

    got = choose_given("阮阐秋", 1, crop, scorer({"阮阐秋": -6.0, "阮明秋": -7.0}), vocab,
                       given_char_log_prior)
    assert got is not None and got[0] == "阮明秋" and 0.0 < got[1] <= 1.0
    assert choose_given("阮阐秋", 1, crop, scorer({"阮阐秋": -2.0, "阮明秋": -20.0}), vocab,
                        given_char_log_prior) is None
    # the surname (before ``start``) stays whatever the scores
    got = choose_given("阐明", 1, crop, scorer({"阐明": -9.0, "明明": -1.0}), vocab,
                       given_char_log_prior)
    assert got is None
    # a label and what follows the name on its line are scored with every candidate
    got = choose_given("童可赖", 1, crop, scorer({"姓名童可赖": -5.0, "姓名童可颖": -5.5}),
                       vocab, given_char_log_prior, lead="姓名")
    assert got is not None and got[0] == "童可颖"


@pytest.mark.ocr
def test_the_real_recogniser_and_the_prior_put_back_a_misread_given_character(
        ocr_engine, idcard_truth):
    """Bundled clean fronts' name lines, given with the last character of the given
    name changed to a rare one (阐): the printed character is put back."""
    from domain.given_names import common_given_chars, given_char_log_prior
    from domain.surnames import surname_of

    done = 0
    for rel, truth in sorted(idcard_truth.items()):
        name = truth["fields"].get("name") or ""
        if not rel.startswith("clean/") or surname_of(name) is None or len(name) < 2:
            continue
        on_line = value_line(ocr_engine, rel, name)
        if on_line is None:
            continue
        crop, lead, tail = on_line
        got = choose_given(name[:-1] + "阐", len(surname_of(name)), crop,
                           ocr_engine.score_texts, common_given_chars(3000),
                           given_char_log_prior, lead=lead, tail=tail)
        assert got is not None and got[0] == name, (rel, got)
        done += 1
        if done == 3:
            break
    assert done == 3
