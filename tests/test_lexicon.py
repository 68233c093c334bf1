"""The word prior on a text's doubted characters (ocr.lexicon)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocr import lexicon
from ocr.lexicon import DOUBT, in_word, lexical_score, words


def sure(text: str) -> list[list[tuple[str, float]]]:
    return [[(c, 1.0)] for c in text]


def test_the_word_list_holds_jieba_words_and_place_names():
    known = words()
    assert {"交叉", "韧带", "支气管", "巴音郭楞蒙古自治州", "巴音郭楞"} <= known
    assert "交又" not in known


def test_a_doubted_character_that_makes_a_word_is_surer():
    # 右膝前交叉韧带损伤, phone photo, seed 721: 叉 0.75, 又 0.19, 义 0.06
    value = "右膝前交叉韧带损伤"
    alts = sure(value)
    alts[4] = [("叉", 0.749), ("又", 0.19), ("义", 0.06)]
    probs = [1.0] * len(value)
    probs[4] = 0.749
    weighed = lexical_score(value, alts, probs)
    assert weighed is not None and weighed > 0.95


def test_the_candidate_whose_words_cover_the_value_wins_over_one_that_makes_a_word_too():
    """Seed 724, photo 0043: 中国邮政储蓄银行湘西凤凰支行, 凤 0.53 against 风 0.47. Both
    make a word (凤凰; 西风), but only 凤 lets the words cover the name as a reader
    segments it (湘西|凤凰|支行); read 风, 凰 is left alone."""
    value = "中国邮政储蓄银行湘西凤凰支行"
    at = value.index("凤")
    alts, probs = sure(value), [1.0] * len(value)
    alts[at], probs[at] = [("凤", 0.526), ("风", 0.474)], 0.526
    assert lexical_score(value, alts, probs) > 0.9
    misread = value.replace("凤", "风")
    alts[at] = [("风", 0.526), ("凤", 0.474)]
    assert lexical_score(misread, alts, probs) < 0.2
    assert lexicon.coverage("湘西凤凰支行") == 6 > lexicon.coverage("湘西风凰支行")


def test_a_doubted_character_that_breaks_a_word_its_candidate_makes_is_less_sure():
    value = "右膝前交又韧带损伤"
    alts = sure(value)
    alts[4] = [("又", 0.6), ("叉", 0.35)]
    probs = [1.0] * len(value)
    probs[4] = 0.6
    weighed = lexical_score(value, alts, probs)
    assert weighed is not None and weighed < 0.6


def test_a_misread_outside_any_word_is_not_raised():
    # 犬咬伤 read 大咬伤 (seed 721): 大 makes no word with 咬伤, nor does 犬
    alts = [[("大", 0.61), ("犬", 0.35)], [("咬", 1.0)], [("伤", 1.0)]]
    weighed = lexical_score("大咬伤", alts, [0.61, 1.0, 1.0])
    assert weighed is not None and weighed <= 0.61 + 1e-9


def test_sure_characters_keep_their_probability():
    value = "郫都区人民医院"
    probs = [DOUBT + 0.003, 1.0, 1.0, 1.0, 1.0, DOUBT + 0.005, 1.0]
    assert lexical_score(value, sure(value), probs) == pytest.approx(DOUBT + 0.003)


def test_no_candidates_for_a_doubted_character_is_nothing_to_weigh():
    value = "交叉"
    assert lexical_score(value, [[("交", 1.0)], []], [1.0, 0.7]) is None
    assert lexical_score(value, [[("交", 1.0)]], [1.0, 0.7]) is None


# Characters from the private use area: words only where the test says so.
_CHARS = st.sampled_from([chr(c) for c in range(0xE000, 0xE008)])


@st.composite
def readings(draw):
    value = draw(st.text(_CHARS, min_size=1, max_size=8))
    probs, alts = [], []
    for ch in value:
        p = draw(st.floats(0.05, 1.0))
        others = draw(st.lists(st.tuples(_CHARS.filter(lambda c, ch=ch: c != ch),
                                         st.floats(0.0, 1.0)), max_size=2, unique_by=lambda t: t[0]))
        room = 1.0 - p
        scaled = [(c, q * room / max(1.0, sum(q for _, q in others))) for c, q in others]
        probs.append(p)
        alts.append([(ch, p), *scaled])
    return value, alts, probs


@contextmanager
def vocabulary_of(vocabulary: frozenset[str]):
    """The word list replaced for one example."""
    saved = lexicon.words
    lexicon.words = lambda: vocabulary
    try:
        yield
    finally:
        lexicon.words = saved


@given(readings())
def test_without_words_the_score_is_the_least_probability(reading):
    value, alts, probs = reading
    with vocabulary_of(frozenset()):
        assert lexical_score(value, alts, probs) == pytest.approx(min(probs))


@given(readings(), st.sets(st.text(_CHARS, min_size=2, max_size=3), max_size=6))
def test_words_raise_a_doubted_character_that_makes_one_and_lower_one_that_breaks_one(
        reading, vocabulary):
    value, alts, probs = reading
    with vocabulary_of(frozenset(vocabulary)):
        weighed = lexical_score(value, alts, probs)
        assert weighed is not None and 0.0 <= weighed <= 1.0
        # a sure character keeps its probability, so the score is never above it
        assert weighed <= min((p for p in probs if p >= DOUBT), default=1.0) + 1e-12
        for i, p in enumerate(probs):
            if p >= DOUBT:
                continue
            alone = sure(value)
            alone[i] = alts[i]
            score = lexical_score(value, alone, [1.0] * i + [p] + [1.0] * (len(value) - i - 1))
            mine = in_word(value, i)
            theirs = any(in_word(value[:i] + c + value[i + 1:], i) for c, _ in alts[i][1:])
            if mine and not theirs:
                assert score >= p - 1e-12
            if theirs and not mine:
                assert score <= p + 1e-12


def test_a_near_miss_of_a_county_of_the_city_named_before_it():
    """Seed 724, clean and photo 0042: 交通银行阜阳颍东支行 read 颖东 at 0.965 and 0.9945.
    颍东 is a district of 阜阳; 颖东 is no place. The county in its place is offered; a
    real county, the city's own 市, or a name after a city that is no near miss of one
    of its counties offers nothing."""
    from ocr.lexicon import near_counties

    assert near_counties("交通银行阜阳颖东支行") == ["交通银行阜阳颍东支行"]
    assert near_counties("交通银行阜阳颍东支行") == []
    assert near_counties("锦州市中心医院") == []  # 市中 is no near miss of 绥中: 市 is the city's
    assert near_counties("招商银行乌鲁木齐人民路支行") == []
    assert near_counties("中国建设银行拉萨城东支行") == ["中国建设银行拉萨城关支行"]  # the
    # recogniser's likelihood decides that one (ocr.pipeline._near_counties)


def test_a_near_county_doubts_the_value_only_when_the_recogniser_finds_it_nearly_as_likely():
    import numpy as np

    from domain.models import ExtractedField, OcrLine
    from ocr.calibration import UNSEEN_SOURCE_CAP, calibrate_fields
    from ocr.lexicon import PLACE_NOTE
    from ocr.pipeline import PLACE_MARGIN, _near_counties

    box = [(0.0, 0.0), (300.0, 0.0), (300.0, 30.0), (0.0, 30.0)]
    line = OcrLine(text="开户行：交通银行阜阳颖东支行", confidence=0.99, polygon=box)
    field = ExtractedField(value="交通银行阜阳颖东支行", confidence=0.99, boxes=[box])

    class Engine:
        rec_score_thresh = 0.5

        def __init__(self, gap):
            self.gap, self.asked = gap, []

        def crop(self, image, poly):
            return image

        def score_texts(self, crops, texts):
            self.asked.append(texts)
            return [[-0.01, -0.01 - self.gap]]

    class Prepared:
        image = np.zeros((30, 300, 3), np.uint8)

    close = Engine(PLACE_MARGIN - 1)
    got = _near_counties(close, Prepared, {"bank_name": field}, [line])["bank_name"]
    assert close.asked == [["开户行：交通银行阜阳颖东支行", "开户行：交通银行阜阳颍东支行"]]
    assert got.value == field.value and PLACE_NOTE in got.corrections and got.confidence <= 0.99
    # no curve for such a reading: a person confirms it
    calibrated = calibrate_fields({"bank_name": got}, "claim_form")["bank_name"]
    assert calibrated.confidence <= UNSEEN_SOURCE_CAP
    far = Engine(PLACE_MARGIN + 1)
    assert _near_counties(far, Prepared, {"bank_name": field}, [line])["bank_name"] == field
