"""A value the text detector missed, read again from its cell (ocr/cells.py)."""

from __future__ import annotations

import doctest
import json
import math

import cv2
import numpy as np
import pytest
from conftest import ROOT

import ocr.cells as cells_module
from ocr.cells import NOTE, sex_from_cell


def test_doctests():
    assert doctest.testmod(cells_module).failed == 0


def test_no_label_or_no_sex_in_the_cell_reads_nothing():
    import numpy as np

    from domain.models import OcrLine

    page = np.full((300, 600, 3), 255, np.uint8)
    label = OcrLine(text="性别", confidence=1.0, polygon=[(10, 10), (90, 10), (90, 50), (10, 50)])
    assert sex_from_cell(page, [label], lambda crops: [("", 0.0)]) is None
    assert sex_from_cell(page, [label], lambda crops: [("男女", 0.9)]) is None
    other = label.model_copy(update={"text": "姓名"})
    assert sex_from_cell(page, [other], lambda crops: [("男", 0.9)]) is None


@pytest.mark.ocr
def test_the_sex_the_detector_missed_is_read_from_its_cell_by_the_real_recogniser(ocr_engine):
    """Each bundled clean front read with the real OCR, its sex line then taken away (as
    when the detector finds no box around 男): the cell right of 性别 gives it back."""
    from ocr.pipeline import read_page

    truth = [json.loads(line) for line in
             (ROOT / "fixtures" / "idcards" / "truth.jsonl").read_text("utf-8").splitlines()]
    fronts = [t for t in truth if t["doc_type"] == "id_card_front" and t["variant"] == "clean"][:3]
    tried = 0
    for t in fronts:
        image = cv2.imread(str(ROOT / "fixtures" / "idcards" / t["file"]))
        page = read_page(image, ocr_engine, risk=False)
        label = next((ln for ln in page.lines if ln.text.replace(" ", "") == "性别"), None)
        if label is None:
            continue  # 性别男 read as one line: nothing to take away
        tried += 1
        lines = [ln for ln in page.lines if ln.text.strip() not in ("男", "女")]
        found = sex_from_cell(image, lines, ocr_engine.read_crops)
        assert found is not None and found.value == t["fields"]["sex"], t["file"]
        assert found.corrections == [NOTE]
    assert tried, "no front with 性别 on a line of its own among the fixtures"


# --------------------------------------------------------------------------- card rows

def _line(text, x0, y0, x1, y1):
    from domain.models import OcrLine

    return OcrLine(text=text, confidence=0.99, polygon=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_an_empty_row_is_read_from_its_band_with_its_label_and_a_taken_row_is_not():
    import numpy as np

    from ocr.cells import BACK_ROWS, FRONT_ROWS, card_row_lines, missing_rows

    card = np.full((631, 1000, 3), 255, np.uint8)
    # the number and the birth row found; sex, ethnicity and name not
    lines = [_line("出生1990年3月7日", 70, 225, 470, 270),
             _line("110105199003071234", 310, 525, 870, 570)]
    wanted = missing_rows(FRONT_ROWS, {"sex", "ethnicity", "birth_date"})
    assert wanted == ["sex", "ethnicity", "birth"]
    crops = []

    def read(batch):
        crops.extend(c.shape for c in batch)
        return [("男", 0.9), ("汉", 0.4)]

    out = card_row_lines(card, lines, FRONT_ROWS, wanted, read, threshold=0.5)
    assert len(crops) == 2  # the birth row holds a detected line: not read again
    new = out[len(lines):]
    assert [ln.text for ln in new] == ["性别男"]  # 汉 scored below the threshold
    (x0, y0), (x1, y1) = new[0].polygon[0], new[0].polygon[2]
    assert 160 <= x0 < x1 <= 320 and 140 <= y0 < y1 <= 215
    # a label the detector read on the row is not put before the reading again
    labelled = [*lines, _line("性别", 70, 160, 150, 200)]
    out = card_row_lines(card, labelled, FRONT_ROWS, ["sex"], lambda b: [("女", 0.9)])
    assert out[-1].text == "女"
    assert missing_rows(BACK_ROWS, {"valid_until"}) == ["validity"]


def test_a_closed_list_word_is_taken_only_when_it_stands_out():
    from hypothesis import given
    from hypothesis import strategies as st

    from ocr.cells import CLOSED_EMPTY_SLACK, CLOSED_MARGIN, closed_word

    words = ["汉", "满", "回", "藏"]

    @given(st.lists(st.floats(-40, 0), min_size=len(words) + 1, max_size=len(words) + 1))
    def check(scores):
        got = closed_word(scores, words)
        *ws, empty = scores
        ranked = sorted(ws, reverse=True)
        stands_out = (ranked[0] - ranked[1] >= CLOSED_MARGIN
                      and ranked[0] >= empty - CLOSED_EMPTY_SLACK)
        assert (got is not None) == stands_out
        if got is not None:
            assert got[0] == words[ws.index(ranked[0])]
            # each other word is at least 3 nats (a factor e^3) behind
            floor = 1 / (1 + (len(words) - 1) * math.exp(-CLOSED_MARGIN))
            assert floor - 1e-3 <= got[1] <= 1.0

    check()


def test_a_prior_tips_only_an_undecided_reading_of_a_word_the_crop_holds():
    """With the ethnic groups' shares as a prior, the word taken still stands out by the
    margin (posterior), its likelihood is no further below a blank than without it, and
    the rows' reader weighs the prior in only when the pixels alone decide nothing: a
    word the recogniser makes far likelier is kept however rare, a choice the prior
    tipped says so and is capped below every review threshold."""
    import numpy as np
    from hypothesis import given
    from hypothesis import strategies as st

    from domain.ethnic_groups import ethnic_log_prior
    from ocr.calibration import UNSEEN_SOURCE_CAP, calibrate_fields
    from ocr.cells import (
        CLOSED_EMPTY_SLACK,
        CLOSED_MARGIN,
        CLOSED_NOTE,
        FRONT_ROWS,
        PRIOR_NOTE,
        closed_from_row,
        closed_word,
    )

    words = ["汉", "土", "京", "回"]

    @given(st.lists(st.floats(-40, 0), min_size=len(words) + 1, max_size=len(words) + 1))
    def check(scores):
        got = closed_word(scores, words, prior=ethnic_log_prior)
        *ws, empty = scores
        post = [w + ethnic_log_prior(x) for w, x in zip(ws, words, strict=True)]
        ranked = sorted(post, reverse=True)
        best = post.index(ranked[0])
        stands_out = (ranked[0] - ranked[1] >= CLOSED_MARGIN
                      and ws[best] >= empty - CLOSED_EMPTY_SLACK)
        assert (got is not None) == stands_out
        if got is not None:
            assert got[0] == words[best]

    check()

    card = np.full((631, 1000, 3), 230, np.uint8)

    def scorer(table):
        # the same log-likelihoods on every crop: words in `table`, others far behind
        return lambda crops, cands: [[table.get(c[-1:] if c else "", -40.0) if c not in
                                      ("民族", "") else table["blank"] for c in cands]
                                     for _ in crops]

    rare = scorer({"土": -8.0, "汉": -14.0, "京": -13.0, "回": -15.0, "blank": -9.0})
    field = closed_from_row(card, [], FRONT_ROWS, "ethnicity", words, rare, ethnic_log_prior)
    assert field is not None and field.value == "土" and field.corrections == [CLOSED_NOTE]
    undecided = scorer({"土": -9.0, "汉": -9.5, "京": -8.5, "回": -9.2, "blank": -7.0})
    assert closed_from_row(card, [], FRONT_ROWS, "ethnicity", words, undecided) is None
    field = closed_from_row(card, [], FRONT_ROWS, "ethnicity", words, undecided,
                            ethnic_log_prior)
    assert field is not None and field.value == "汉" and field.corrections == [PRIOR_NOTE]
    routed = calibrate_fields({"ethnicity": field}, "id_card_front")["ethnicity"]
    assert routed.confidence <= UNSEEN_SOURCE_CAP
    blank = scorer({"土": -19.0, "汉": -19.5, "京": -18.5, "回": -19.2, "blank": -7.0})
    assert closed_from_row(card, [], FRONT_ROWS, "ethnicity", words, blank,
                           ethnic_log_prior) is None


def test_ctc_likelihood_is_the_sum_over_every_alignment():
    import itertools

    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from ocr.engine import ctc_log_likelihood

    def brute(probs, target):
        total = 0.0
        for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
            collapsed = [c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1])]
            if collapsed == target:
                total += float(np.prod([probs[t, c] for t, c in enumerate(path)]))
        return total

    @settings(max_examples=40, deadline=None)
    @given(st.integers(1, 5), st.lists(st.integers(1, 2), min_size=1, max_size=3),
           st.integers(0, 10_000))
    def check(steps, target, seed):
        rng = np.random.default_rng(seed)
        probs = rng.dirichlet(np.ones(3), size=steps)
        got = ctc_log_likelihood(probs, [(c,) for c in target])
        want = brute(probs, target)
        if want == 0.0:
            assert got == float("-inf") or np.exp(got) < 1e-12
        else:
            assert np.exp(got) == pytest.approx(want, rel=1e-6)

    check()


@pytest.mark.ocr
def test_the_real_recogniser_scores_the_printed_word_of_a_closed_list_highest(ocr_engine):
    """The sex and the ethnicity cells of bundled clean fronts, scored against their closed
    lists with the real recogniser: the printed word is chosen; and a front whose sex and
    ethnicity lines are taken away (the detector found no box) gets them back."""
    from domain.ethnic_groups import ETHNIC_GROUPS
    from domain.models import DocType
    from ocr.cells import CLOSED_NOTE, FRONT_ROWS, closed_from_row
    from ocr.extract import extract
    from ocr.pipeline import _read_empty_rows, read_page
    from ocr.preprocess import prepare

    truth = [json.loads(line) for line in
             (ROOT / "fixtures" / "idcards" / "truth.jsonl").read_text("utf-8").splitlines()]
    fronts = [t for t in truth if t["doc_type"] == "id_card_front" and t["variant"] == "photo"][:3]
    groups = sorted(ETHNIC_GROUPS)
    for t in fronts:
        image = cv2.imread(str(ROOT / "fixtures" / "idcards" / t["file"]))
        trace: dict = {}
        read_page(image, ocr_engine, risk=False, trace=trace)
        card, lines = trace["image"], trace["lines"]
        sex = closed_from_row(card, lines, FRONT_ROWS, "sex", ["男", "女"], ocr_engine.score_texts)
        eth = closed_from_row(card, lines, FRONT_ROWS, "ethnicity", groups, ocr_engine.score_texts)
        assert sex is not None and sex.value == t["fields"]["sex"], t["file"]
        assert eth is not None and eth.value == t["fields"]["ethnicity"], t["file"]
        assert sex.corrections == [CLOSED_NOTE]
        # the row's lines gone: the fields come back from the bands
        row = [ln for ln in lines if any(w in ln.text for w in ("性", "民族", "男", "女"))]
        kept = [ln for ln in lines if ln not in row]
        found = extract(DocType.ID_CARD_FRONT, kept)
        assert found.get("sex") is None or found["sex"].value is None
        prepared = prepare(image)
        prepared.image = card
        out, _ = _read_empty_rows(ocr_engine, prepared, DocType.ID_CARD_FRONT, found, kept)
        assert out["sex"].value == t["fields"]["sex"], t["file"]
        assert out["ethnicity"].value == t["fields"]["ethnicity"], t["file"]


def test_a_validity_period_is_chosen_among_those_its_digits_allow():
    import datetime as dt

    import numpy as np

    from ocr.cells import BACK_ROWS, VALIDITY_NOTE, validity_from_row, validity_periods

    periods = validity_periods(["20450617"], dt.date(2026, 12, 1))
    # 2045 is no start yet; one digit changed makes 2025.06.17, with each period a card has
    assert "2025.06.17-2045.06.17" in periods and "2025.06.17-长期" in periods
    assert not any(p.startswith("2045") for p in periods)
    card = np.full((631, 1000, 3), 255, np.uint8)

    def score(crops, words):  # the recogniser's likelihoods: the true period far ahead
        return [[-5.0 if w == "2025.06.17-2045.06.17" else -20.0 for w in words]]

    got = validity_from_row(card, [], BACK_ROWS, lambda c: [("2045.06.17", 0.7)], score,
                            [".7 2045.06.17"])
    assert got is not None
    start, end = got
    assert (start.value, end.value) == ("2025-06-17", "2045-06-17")
    assert start.corrections == [VALIDITY_NOTE] and start.raw == "2025.06.17-2045.06.17"

    def flat(crops, words):  # nothing stands out: nothing is chosen
        return [[-5.0 for _ in words]]

    assert validity_from_row(card, [], BACK_ROWS, lambda c: [("", 0.0)], flat,
                             ["2025.06.17"]) is None


def test_the_birth_date_the_number_encodes_is_taken_only_when_the_row_says_it():
    import numpy as np

    from ocr.cells import BIRTH_NOTE, FRONT_ROWS, birth_from_row

    card = np.full((631, 1000, 3), 255, np.uint8)
    seen = []

    def says(text):
        def score(crops, words):
            seen.append(list(words))
            return [[-2.0 if w == text else -12.0 for w in words]]
        return score

    got = birth_from_row(card, [], FRONT_ROWS, "2005-11-03", "2005-11-13",
                         lambda c: [("2005年11月13日", 0.8)], says("2005年11月3日"))
    assert got is not None and got.value == "2005-11-03" and got.corrections == [BIRTH_NOTE]
    assert got.raw == "2005-11-13"
    assert seen[-1][0] == "2005年11月3日" and "2005年11月13日" in seen[-1]
    # the row says the date as read: the number does not overrule it
    assert birth_from_row(card, [], FRONT_ROWS, "2005-11-03", "2005-11-13",
                          lambda c: [("2005年11月13日", 0.8)], says("2005年11月13日")) is None


# --------------------------------------------------------------------------- authority

def test_the_real_authorities_are_real_places_and_the_usual_forms():
    from domain.gb11643 import authority_known, authority_names

    names = authority_names()
    assert len(names) == len(set(names)) > 4000
    assert all(authority_known(a) for a in names)
    for a in ("托克逊县公安局", "厦门市公安局思明分局", "上海市公安局浦东分局",
              "重庆市彭水苗族土家族自治县公安局", "北京市公安局丰台分局", "阜康市公安局"):
        assert a in names, a
    assert "和群县公安局" not in names


def test_an_authority_is_chosen_among_the_real_ones_only_when_it_stands_out():
    import numpy as np

    from ocr.cells import AUTHORITY_NOTE, BACK_ROWS, authority_from_row, authority_shortlist

    names = ("新田县公安局", "新县公安局", "田东县公安局", "湘潭市公安局雨湖分局", "且末县公安局")
    # shorter than what was read: never offered (a blur explained by blanks)
    assert "新县公安局" not in authority_shortlist(["新阳快公安局"], names)
    assert authority_shortlist(["公安局"], names) == []  # nothing of a place was read
    card = np.full((631, 1000, 3), 255, np.uint8)
    seen = []

    def says(text):
        def score(crops, words):
            seen.append(list(words))
            return [[-3.0 if w == text else -15.0 for w in words] for _ in crops]
        return score

    got = authority_from_row(card, [], BACK_ROWS, ["湖潭市公安局雨湖分局"], names,
                             lambda crops: [("湖潭市公安局雨湖分局", 0.9)] * len(crops),
                             says("湘潭市公安局雨湖分局"))
    assert got is not None and got.value == "湘潭市公安局雨湖分局"
    assert got.corrections == [AUTHORITY_NOTE] and got.raw == "湖潭市公安局雨湖分局"
    assert "" in seen[-1]  # the empty reading is scored too

    def flat(crops, words):
        return [[-5.0 for _ in words] for _ in crops]

    assert authority_from_row(card, [], BACK_ROWS, ["新阳快公安局"], names,
                              lambda crops: [("", 0.0)] * len(crops), flat) is None


@pytest.mark.ocr
def test_the_real_recogniser_finds_the_printed_authority_among_the_real_ones(ocr_engine):
    """Bundled photographed backs, their authority read with its place's second
    character taken for another (北某市公安局西城分局): the real recogniser's likelihoods
    on the row pick the printed one out of every real bureau the reading resembles."""
    from domain.gb11643 import authority_names
    from ocr.cells import BACK_ROWS, authority_from_row
    from ocr.pipeline import read_page

    truth = [json.loads(line) for line in
             (ROOT / "fixtures" / "idcards" / "truth.jsonl").read_text("utf-8").splitlines()]
    backs = [t for t in truth if t["doc_type"] == "id_card_back" and t["variant"] == "photo"][:3]
    assert backs
    for t in backs:
        image = cv2.imread(str(ROOT / "fixtures" / "idcards" / t["file"]))
        trace: dict = {}
        read_page(image, ocr_engine, risk=False, trace=trace)
        want = t["fields"]["issuing_authority"]
        lines = [ln for ln in trace["lines"] if "公安" not in ln.text and "分局" not in ln.text]
        got = authority_from_row(trace["image"], lines, BACK_ROWS, [want[0] + "某" + want[2:]],
                                 authority_names(), lambda crops: [("", 0.0)] * len(crops),
                                 ocr_engine.score_texts)
        assert got is not None and got.value == want, t["file"]


def test_a_label_misread_into_the_name_is_read_again_from_where_values_start():
    import numpy as np

    from ocr.cells import label_runs_into_value

    card = np.full((631, 1000, 3), 255, np.uint8)
    seen = []

    def read(crops):
        seen.extend(c.shape for c in crops)
        return [("赵芳梅", 0.97, [[("赵", 0.9)], [("芳", 0.9)], [("梅", 0.9)]], [0.9, 0.9, 0.9])
                for _ in crops]

    merged = _line("外名赵芳梅", 70, 85, 300, 130).model_copy(update={"confidence": 0.8})
    birth = _line("出生1987年7月5日", 70, 230, 480, 270)
    out = label_runs_into_value(card, [merged, birth], read)
    assert out[0].text == "姓名赵芳梅" and out[0].confidence == 0.8
    assert out[0].polygon == merged.polygon and len(out[0].alternatives) == 5
    assert out[1] == birth  # another row's line is not touched
    # from the values' column on, with a quarter of the line's height of paper before
    # it and half its height after the line's end (45 px high: 11.25 and 22.5 px)
    assert len(seen) == 1 and seen[0][1] == int(300 + 22.5) - int(160 - 11.25)
    # the label read right, or a line that starts at the values: nothing to do
    for line in (_line("姓名赵芳梅", 70, 85, 300, 130), _line("赵芳梅", 170, 85, 300, 130)):
        assert label_runs_into_value(card, [line, birth], read) == [line, birth]
    assert len(seen) == 1


def test_a_sex_the_pixels_leave_undecided_is_the_numbers_when_they_lean_its_way():
    """Both words score far below a blank (a faint 男 alone in a wide band): no word is
    taken by the pixels alone. The valid number says 男: taken when 男 leads on both
    crops, however faintly; not when 女 leads on either. Routed to a person."""
    import numpy as np

    from domain.models import ExtractedField
    from ocr.calibration import UNSEEN_SOURCE_CAP, calibrate_fields
    from ocr.cells import FRONT_ROWS, SEX_BY_NUMBER_NOTE, closed_from_row, sex_by_number
    from ocr.pipeline import _encoded_sex

    card = np.full((631, 1000, 3), 230, np.uint8)

    def scorer(after: dict, bare: dict):
        def score(crops, texts):
            table = after if texts[0].startswith("性别") else bare
            return [[table.get(t.removeprefix("性别"), -3.0) for t in texts] for _ in crops]
        return score

    faint = scorer({"男": -30.9, "女": -31.2, "": -24.0}, {"男": -9.4, "女": -11.4, "": -3.3})
    assert closed_from_row(card, [], FRONT_ROWS, "sex", ["男", "女"], faint) is None
    got = sex_by_number(card, [], FRONT_ROWS, "男", faint)
    assert got is not None and got.value == "男" and got.corrections == [SEX_BY_NUMBER_NOTE]
    assert 0.5 <= got.confidence < 1.0
    assert sex_by_number(card, [], FRONT_ROWS, "女", faint) is None  # the pixels lean to 男
    split = scorer({"男": -30.0, "女": -31.0}, {"男": -12.0, "女": -11.0})
    assert sex_by_number(card, [], FRONT_ROWS, "男", split) is None
    routed = calibrate_fields({"sex": got}, "id_card_front")["sex"]
    assert routed.confidence <= UNSEEN_SOURCE_CAP
    # the number's 17th digit (the 15th of a first-generation number): odd for a man
    assert _encoded_sex(ExtractedField(value="11010519491231002X")) == "女"
    assert _encoded_sex(ExtractedField(value="110105194912311014")) == "男"
    assert _encoded_sex(ExtractedField(value="110105194912311015")) is None  # invalid
    assert _encoded_sex(ExtractedField(value="110105491231003")) == "男"


def _scorer(table: dict[str, float]):
    """A recogniser's likelihoods of given texts on any crop (unlisted: far less likely)."""
    return lambda crops, texts: [[table.get(t, -50.0) for t in texts] for _ in crops]


def test_a_valid_number_one_digit_away_is_taken_only_when_it_stands_out():
    from ocr.cells import number_from_line, number_note
    from ocr.text import guessed_by_check_digit

    crop = np.zeros((10, 10, 3), np.uint8)
    read = "52232498611145207"  # 522324198611145207 with its 1 dropped
    near = "522324198611145207"
    assert number_from_line(read, crop, "", "", _scorer({read: -2.1, near: -4.2})) == (near, 1.0)
    # the label before it on the line is scored with it
    assert number_from_line(read, crop, "号码", "", _scorer({"号码" + near: -4.2}))[0] == near
    # far less likely than the reading: nothing
    assert number_from_line(read, crop, "", "", _scorer({read: -2.1, near: -13.0})) is None
    # two valid numbers nearly as likely: nothing
    from domain.gb11643 import one_edit_away

    short = "11010519491231002"  # 11010519491231002X with its X dropped, among others
    options = one_edit_away(short)
    assert "11010519491231002X" in options and len(options) >= 2
    close = {short: -1.5, options[0]: -2.0, options[1]: -3.0}
    assert number_from_line(short, crop, "", "", _scorer(close)) is None
    misread = "650295201209246656"  # 0 read as 9
    clear = {misread: -1.5, "650205201209246656": -2.1}
    assert number_from_line(misread, crop, "", "", _scorer(clear))[0] == "650205201209246656"
    # not a number's shape, or valid already: nothing to choose
    assert number_from_line("5223249861114", crop, "", "", _scorer({})) is None
    assert guessed_by_check_digit([number_note(read, near)])


def test_a_printed_line_misread_is_put_back_only_when_the_recogniser_finds_it_as_likely():
    from domain.models import OcrLine
    from ocr.cells import printed_lines

    def line(text):
        return OcrLine(text=text, confidence=0.6, polygon=[(0, 0), (100, 0), (100, 20), (0, 20)],
                       alternatives=[[(ch, 0.5)] for ch in text], char_probs=[0.5] * len(text))

    page = np.zeros((40, 120, 3), np.uint8)
    crop = lambda image, poly: image
    lines = [line("公就身价号码"), line("乔摄风")]
    out = printed_lines(page, lines, crop, _scorer({"公就身价号码": -4.65, "公民身份号码": -5.69}))
    assert [ln.text for ln in out] == ["公民身份号码", "乔摄风"]
    assert out[0].alternatives == [] and out[0].char_probs == []
    # 5 nats less likely: left as read
    assert printed_lines(page, lines, crop, _scorer({"公就身价号码": -2.7, "公民身份号码": -8.1})
                         ) is None
    # too few of its characters to be that line
    assert printed_lines(page, [line("公安局长")], crop, _scorer({"公民身份号码": 0.0})) is None


@pytest.mark.ocr
def test_the_real_recogniser_puts_back_a_dropped_or_misread_digit_and_never_another_number(
        ocr_engine, idcard_truth):
    """The number lines of bundled clean and photo fronts, given with a digit dropped or
    changed: the number printed comes back, or nothing does; never another number."""
    from conftest import value_line

    from ocr.cells import number_from_line

    back = wrong = tried = 0
    for rel, truth in sorted(idcard_truth.items()):
        if truth["doc_type"] != "id_card_front" or truth["variant"] == "hard":
            continue
        number = truth["fields"]["id_number"]
        on_line = value_line(ocr_engine, rel, number)
        if on_line is None:
            continue
        crop, lead, tail = on_line
        for k in (3, 9, 14):
            for off in (number[:k] + number[k + 1:],
                        number[:k] + str((int(number[k]) + 5) % 10) + number[k + 1:]):
                got = number_from_line(off, crop, lead, tail, ocr_engine.score_texts)
                tried += 1
                back += got is not None and got[0] == number
                wrong += got is not None and got[0] != number
    assert tried >= 24 and wrong == 0
    assert back >= 0.8 * tried


def test_an_end_every_likely_period_agrees_on_is_taken_alone():
    """2021.06.19-长期 or 2021.08.19-长期 (hard photo, training seed 727): the month of
    the start is a toss-up, the end is not; the start is left as read."""
    from ocr.cells import BACK_ROWS, PART_SHARE, VALIDITY_NOTE, validity_from_row

    card = np.full((631, 1000, 3), 255, np.uint8)
    likely = {"2021.06.19-长期": -35.4, "2021.08.19-长期": -36.0, "2021.06.10-长期": -40.3}

    def score(crops, words):
        return [[likely.get(w, -60.0) if w else -160.0 for w in words] for _ in crops]

    got = validity_from_row(card, [], BACK_ROWS, lambda c: [("2021.08.191题", 0.6)], score,
                            ["2021.06.194期"])
    assert got is not None
    start, end = got
    assert start is None
    assert end.value == "长期" and end.corrections == [VALIDITY_NOTE]
    assert end.confidence >= PART_SHARE and end.raw is None

    # a blank band says nothing, however the periods compare
    def blank(crops, words):
        return [[likely.get(w, -60.0) if w else -10.0 for w in words] for _ in crops]

    assert validity_from_row(card, [], BACK_ROWS, lambda c: [("2021.08.19", 0.6)], blank,
                             ["2021.06.19"]) is None
