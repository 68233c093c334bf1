"""Constraints as decoders (ocr/decoders.py): the ethnicity, the amount written twice and
dates that exist, chosen among the recogniser's own candidates, never invented."""

from __future__ import annotations

import doctest
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

import domain.ethnic_groups as ethnic_groups_module
import domain.surnames as surnames_module
import ocr.decoders as decoders_module
import ocr.extract.idcard as idcard_module
from domain import cn_amount
from domain.ethnic_groups import ETHNIC_GROUPS, ethnic_group
from domain.models import DocType, ExtractedField, OcrLine
from ocr.decoders import (
    MARGIN,
    choose_amounts,
    choose_authority,
    choose_date,
    choose_ethnicity,
    choose_surname,
    decided_by_constraint,
    decode_fields,
)
from ocr.extract.claim import extract_claim_form
from ocr.extract.idcard import extract_id_card_front
from ocr.text import GUESSED_CONFIDENCE, parse_date


def test_doctests():
    assert doctest.testmod(decoders_module).failed == 0
    assert doctest.testmod(ethnic_groups_module).failed == 0
    assert doctest.testmod(surnames_module).failed == 0
    assert doctest.testmod(idcard_module).failed == 0


def test_a_misread_label_in_the_labels_column_is_no_part_of_the_value():
    """A flattened front whose 姓名 was read as n名 and 住址 as 佳修 with a stray 20
    inside it, each in a box of its own left of the value: the name and the address
    are the values' boxes alone; a name the detector split in two keeps both parts."""
    lines = [
        _line("n名", 68, 105, h=43, char_w=43), _line("庄犇涵", 164, 100, h=50, char_w=43),
        _line("性别", 70, 170, h=45, char_w=45), _line("女", 180, 170, h=45, char_w=45),
        _line("出生", 71, 243, h=45, char_w=45), _line("1987年7月5日", 164, 238, h=50),
        _line("佳修", 66, 309, h=30, char_w=37), _line("20", 94, 317, h=7, char_w=12),
        _line("上海市徐汇区书香名邸20", 171, 300, h=50, char_w=36),
        _line("栋2单元601号", 173, 350, h=50, char_w=32),
        _line("公民身份号码", 68, 525, h=42, char_w=29),
        _line("310104198707054062", 315, 520, h=55, char_w=30),
    ]
    out = extract_id_card_front(lines)
    assert out["name"].value == "庄犇涵"
    assert out["address"].value == "上海市徐汇区书香名邸20栋2单元601号"
    split = [ln for ln in lines if ln.text not in ("n名", "庄犇涵")]
    split += [_line("欧阳", 170, 100, h=50, char_w=43), _line("华", 268, 100, h=50, char_w=43)]
    assert extract_id_card_front(split)["name"].value == "欧阳华"
    # the label read twice on the value's line (a photo of seed 872): no part of the name
    twice = [ln for ln in lines if ln.text not in ("n名", "庄犇涵")]
    twice.append(_line("姓姓名令狐妍珍", 68, 100, h=50, char_w=43))
    assert extract_id_card_front(twice)["name"].value == "令狐妍珍"


def _sure(text: str, p: float = 0.99) -> list[list[tuple[str, float]]]:
    return [[(c, p)] for c in text]


def _line(text: str, x: float, y: float, alternatives=None, confidence: float = 0.95,
          h: float = 30.0, char_w: float = 30.0) -> OcrLine:
    w = char_w * len(text)
    return OcrLine(text=text, confidence=confidence,
                   polygon=[(x, y), (x + w, y), (x + w, y + h), (x, y + h)],
                   alternatives=alternatives or [])


# --- ethnicity ----------------------------------------------------------------------


def test_a_misread_ethnicity_takes_the_candidate_that_is_a_group():
    chosen = choose_ethnicity("汊", [[("汊", 0.6), ("汉", 0.3), ("汀", 0.1)]])
    assert chosen is not None
    value, notes, _share = chosen
    assert value == "汉"
    assert notes and decided_by_constraint(notes)


def test_an_ethnicity_no_candidate_makes_known_is_left():
    assert choose_ethnicity("汊", [[("汊", 0.6), ("汀", 0.3)]]) is None
    assert choose_ethnicity("汊", []) is None  # no candidates at all


def test_two_groups_equally_likely_are_not_decided():
    # 土 and 水 are both groups; a misread 士 with both as candidates at the same odds.
    assert choose_ethnicity("士", [[("士", 0.5), ("土", 0.25), ("水", 0.24)]]) is None
    # ... but one clearly likelier than the other is taken.
    assert choose_ethnicity("士", [[("士", 0.5), ("土", 0.4), ("水", 0.1)]])[0] == "土"


def test_id_front_ethnicity_decoded_through_the_pipeline_step():
    row = "性别男民族汊"
    alts = _sure(row)
    alts[-1] = [("汊", 0.55), ("汉", 0.42), ("汀", 0.03)]
    lines = [_line("姓名张三", 20, 20),
             _line(row, 20, 70, alternatives=alts, confidence=0.97),
             _line("出生1990年3月7日", 20, 120),
             _line("住址北京市东城区东华门街道1号", 20, 170),
             _line("公民身份号码110101199003070011", 20, 300)]
    fields = extract_id_card_front(lines)
    assert fields["ethnicity"].value == "汊"
    decoded = decode_fields(DocType.ID_CARD_FRONT, fields, lines)
    eth = decoded["ethnicity"]
    assert eth.value == "汉"
    assert eth.raw == fields["ethnicity"].raw  # the reading kept
    assert eth.confidence <= min(fields["ethnicity"].confidence, GUESSED_CONFIDENCE)
    assert decided_by_constraint(eth.corrections)
    # every other field untouched
    assert {k: v for k, v in decoded.items() if k != "ethnicity"} == {
        k: v for k, v in fields.items() if k != "ethnicity"}


def test_lines_without_candidates_change_nothing():
    lines = [_line("性别男民族汊", 20, 70)]
    fields = {"ethnicity": ExtractedField(value="汊", confidence=0.9, boxes=[lines[0].polygon],
                                          raw=lines[0].text)}
    assert decode_fields(DocType.ID_CARD_FRONT, fields, lines) == fields


def test_a_field_whose_lines_are_not_found_is_left():
    alts = _sure("民族汊")
    alts[-1] = [("汊", 0.5), ("汉", 0.45)]
    lines = [_line("民族汊", 20, 70, alternatives=alts)]
    fields = {"ethnicity": ExtractedField(value="汊", confidence=0.9,
                                          boxes=[[(0, 0), (1, 0), (1, 1), (0, 1)]],
                                          raw="something else")}
    assert decode_fields(DocType.ID_CARD_FRONT, fields, lines) == fields


_CJK_POOL = sorted({c for g in ETHNIC_GROUPS for c in g} | set("汊汀士大木古尔克"))


@st.composite
def _ethnic_alternatives(draw):
    n = draw(st.integers(1, 4))
    alts = []
    for _ in range(n):
        chars = draw(st.lists(st.sampled_from(_CJK_POOL), min_size=1, max_size=3, unique=True))
        probs = sorted(draw(st.lists(st.floats(0.02, 1.0), min_size=len(chars),
                                     max_size=len(chars))), reverse=True)
        alts.append(list(zip(chars, probs, strict=True)))
    return alts


@settings(max_examples=300, deadline=None)
@given(_ethnic_alternatives())
def test_ethnicity_only_ever_uses_offered_characters(alts):
    value = "".join(a[0][0] for a in alts)
    chosen = choose_ethnicity(value, alts)
    if ethnic_group(value) is not None:
        assert chosen is None  # a known group is never changed
        return
    if chosen is None:
        return
    new, notes, share = chosen
    assert ethnic_group(new) is not None
    assert len(new) == len(value)
    for ch, cands in zip(new, alts, strict=True):
        assert ch in {c for c, _ in cands}
    assert len(notes) == sum(a != b for a, b in zip(new, value, strict=True))
    assert 0.0 < share <= 1.0


@given(st.sampled_from(sorted(ETHNIC_GROUPS)), st.data())
def test_a_known_group_is_never_changed(group, data):
    alts = [[(c, 0.6)] + [(o, 0.3) for o in data.draw(st.lists(
        st.sampled_from(_CJK_POOL), max_size=2, unique=True)) if o != c] for c in group]
    assert choose_ethnicity(group, alts) is None


# --- names --------------------------------------------------------------------------


def test_a_doubted_first_character_takes_the_candidate_that_makes_a_surname():
    alts = _sure("复侯俊悦")
    alts[0] = [("复", 0.55), ("夏", 0.40), ("复", 0.05)]
    value, notes, share = choose_surname("复侯俊悦", alts)
    assert value == "夏侯俊悦" and decided_by_constraint(notes) and 0 < share <= 1


def test_a_name_read_with_confidence_or_without_han_characters_is_left():
    sure = _sure("复侯俊悦", 0.95)
    sure[0] = [("复", 0.95), ("夏", 0.04)]
    assert choose_surname("复侯俊悦", sure) is None  # not doubted
    weak = _sure("复侯俊悦")
    weak[0] = [("复", 0.6), ("夏", 0.06)]  # a candidate too weak to take
    assert choose_surname("复侯俊悦", weak) is None
    assert choose_surname("买买提·艾力", _sure("买买提·艾力", 0.5)) is None
    assert choose_surname("ZHANG SAN", _sure("ZHANG SAN", 0.5)) is None


def test_two_surnames_equally_likely_are_not_decided():
    alts = _sure("复明")
    alts[0] = [("复", 0.4), ("夏", 0.3), ("夐", 0.05)]
    alts[1] = [("明", 0.99)]
    assert choose_surname("复明", alts)[0] == "夏明"
    alts[0] = [("复", 0.4), ("夏", 0.3), ("袁", 0.29)]  # 夏 and 袁 both surnames
    assert choose_surname("复明", alts) is None


def test_a_claim_forms_name_is_decoded_after_the_extractor():
    row = "被保险人姓名：复侯俊悦"
    alts = _sure(row)
    alts[7] = [("复", 0.52), ("夏", 0.45)]
    lines = [_line(row, 20, 20, alternatives=alts, confidence=0.9)]
    fields = {"insured_name": ExtractedField(value="复侯俊悦", confidence=0.52,
                                             boxes=[lines[0].polygon], raw=row)}
    decoded = decode_fields(DocType.CLAIM_FORM, fields, lines)["insured_name"]
    assert decoded.value == "夏侯俊悦"
    assert decoded.raw == row and decided_by_constraint(decoded.corrections)
    assert decoded.confidence <= GUESSED_CONFIDENCE


_HAN = "王李张刘复夏侯俊悦晓明扎西顿珠礼学翾笪袁"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(_HAN), st.floats(0.02, 1.0)),
                         min_size=1, max_size=3), min_size=2, max_size=4))
def test_a_surname_is_only_ever_taken_from_the_recognisers_candidates(alts):
    from domain.surnames import surname_of

    name = "".join(a[0][0] for a in alts)
    chosen = choose_surname(name, alts)
    if chosen is None:
        return
    new, notes, _share = chosen
    assert surname_of(name) is None and surname_of(new) is not None
    assert len(new) == len(name) and len(notes) == 1
    for k, (ch, cands) in enumerate(zip(new, alts, strict=True)):
        assert ch in {c for c, _ in cands}
        if ch != name[k]:
            assert k in (0, 1)


# --- amounts ------------------------------------------------------------------------


def test_one_misread_digit_is_put_right_by_the_words():
    figures = "¥1,284.50"  # 3 read as 8
    f_alts = _sure(figures)
    f_alts[4] = [("8", 0.6), ("3", 0.35), ("6", 0.05)]
    words = "壹仟贰佰叁拾肆元伍角"
    chosen = choose_amounts(figures, f_alts, words, _sure(words))
    assert chosen is not None
    new_f, new_w, f_notes, w_notes = chosen
    assert new_f == "¥1,234.50" and new_w is None
    assert f_notes and not w_notes and decided_by_constraint(f_notes)


def test_one_misread_capital_is_put_right_by_the_figures():
    figures = "1234.50"
    words = "壹仟贰佰叁拾肆元伍角"
    misread = words.replace("叁", "参")  # a character that is no capital
    w_alts = _sure(misread)
    w_alts[misread.index("参")] = [("参", 0.5), ("叁", 0.45)]
    new_f, new_w, f_notes, w_notes = choose_amounts(figures, _sure(figures), misread, w_alts)
    assert new_f is None and new_w == words and w_notes and not f_notes


def test_amounts_that_cannot_be_told_apart_are_left():
    # The figures could be 1234.50 (3) or the words 壹仟贰佰捌拾肆 (8): equally likely.
    figures = "1284.50"
    f_alts = _sure(figures)
    f_alts[2] = [("8", 0.5), ("3", 0.45)]
    words = "壹仟贰佰叁拾肆元伍角"
    w_alts = _sure(words)
    w_alts[4] = [("叁", 0.5), ("捌", 0.45)]
    assert choose_amounts(figures, f_alts, words, w_alts) is None


def test_no_candidate_that_agrees_leaves_both():
    figures = "1284.50"
    f_alts = _sure(figures)
    f_alts[2] = [("8", 0.6), ("6", 0.4)]
    assert choose_amounts(figures, f_alts, "壹仟贰佰叁拾肆元伍角", []) is None


def test_claim_form_amounts_decoded_after_the_extractor():
    fig_text = "¥1,284.50"
    f_alts = _sure(fig_text)
    f_alts[4] = [("8", 0.6), ("3", 0.38)]
    lines = [_line("申请金额（小写）：", 20, 20), _line(fig_text, 300, 20, alternatives=f_alts),
             _line("申请金额（大写）：", 20, 80), _line("壹仟贰佰叁拾肆元伍角", 300, 80)]
    fields = extract_claim_form(lines)
    assert fields["claim_amount"].value == "1284.50"
    assert fields["claim_amount_in_words"].value == "壹仟贰佰叁拾肆元伍角"
    decoded = decode_fields(DocType.CLAIM_FORM, fields, lines)
    amount = decoded["claim_amount"]
    assert amount.value == "1234.50"
    assert amount.raw == fields["claim_amount"].raw
    assert amount.confidence <= min(fields["claim_amount"].confidence, GUESSED_CONFIDENCE)
    assert decided_by_constraint(amount.corrections)
    assert decoded["claim_amount_in_words"] == fields["claim_amount_in_words"]


_DIGIT_POOL = "0123456789"
_WORD_POOL = "零壹贰叁肆伍陆柒捌玖拾佰仟万元角分整"


@st.composite
def _amount_case(draw):
    cents = draw(st.integers(1, 10**8))
    amount = Decimal(cents) / 100
    figures = f"{amount:.2f}"
    words = cn_amount.format(amount)

    def noisy(text, pool):
        alts = []
        for c in text:
            others = draw(st.lists(st.sampled_from(pool), max_size=2, unique=True))
            p = draw(st.floats(0.3, 1.0))
            alts.append([(c, p)] + [(o, p * draw(st.floats(0.05, 0.99)))
                                    for o in others if o != c])
        return alts

    return figures, noisy(figures, _DIGIT_POOL), words, noisy(words, _WORD_POOL)


@settings(max_examples=150, deadline=None)
@given(_amount_case())
def test_figures_and_words_that_agree_are_never_changed(case):
    figures, f_alts, words, w_alts = case
    assert choose_amounts(figures, f_alts, words, w_alts) is None


@settings(max_examples=150, deadline=None)
@given(_amount_case(), st.data())
def test_amount_decoder_only_takes_offered_characters(case, data):
    figures, f_alts, words, w_alts = case
    # Misread one figure to one of its candidates (or to a digit not offered).
    i = data.draw(st.sampled_from([k for k, c in enumerate(figures) if c.isdigit()]))
    wrong = data.draw(st.sampled_from([d for d in _DIGIT_POOL if d != figures[i]]))
    read = figures[:i] + wrong + figures[i + 1:]
    f_alts = [list(a) for a in f_alts]
    f_alts[i] = [(wrong, 0.6)] + [(c, p * 0.5) for c, p in f_alts[i] if c != wrong]
    chosen = choose_amounts(read, f_alts, words, w_alts)
    if chosen is None:
        return
    new_f, new_w, f_notes, w_notes = chosen
    for new, old, alts in ((new_f, read, f_alts), (new_w, words, w_alts)):
        if new is None:
            continue
        assert len(new) == len(old)
        for k, (a, b) in enumerate(zip(new, old, strict=True)):
            if a != b:
                assert a in {c for c, _ in alts[k]}
    f_value = Decimal(new_f or read) if (new_f or read).replace(".", "").isdigit() else None
    # (the words as the decoder reads them: in their normal form when they have one, so
    # 叁拾壹元伍壹分 is 31.51, its 角 not printed)
    assert f_value == decoders_module._amount_words(new_w or words)
    assert len(f_notes) + len(w_notes) <= 2


# --- dates --------------------------------------------------------------------------


def test_month_thirteen_takes_the_offered_digit():
    text = "2023年13月05日"
    alts = _sure(text)
    alts[6] = [("3", 0.6), ("2", 0.3)]
    assert choose_date(text, alts)[0] == "2023-12-05"


def test_thirtieth_of_february_with_no_offered_way_out_is_left():
    text = "2023.02.30"
    assert choose_date(text, _sure(text)) is None
    alts = _sure(text)
    alts[8] = [("3", 0.6), ("8", 0.3)]  # 02.80 does not exist either
    assert choose_date(text, alts) is None


def test_two_dates_equally_likely_are_not_decided():
    text = "2023年13月05日"
    alts = _sure(text)
    alts[5] = [("1", 0.6), ("0", 0.3)]  # 03
    alts[6] = [("3", 0.6), ("2", 0.3)]  # 12
    assert choose_date(text, alts) is None


def test_id_front_birth_date_that_does_not_exist_is_decoded():
    row = "出生1990年3月37日"
    alts = _sure(row)
    alts[row.index("37")] = [("3", 0.7), ("0", 0.25)]
    lines = [_line("姓名张三", 20, 20), _line("性别男民族汉", 20, 70),
             _line(row, 20, 120, alternatives=alts),
             _line("住址北京市东城区东华门街道1号", 20, 170),
             _line("公民身份号码110101199003070011", 20, 300)]
    fields = extract_id_card_front(lines)
    assert fields["birth_date"].value is None
    decoded = decode_fields(DocType.ID_CARD_FRONT, fields, lines)
    assert decoded["birth_date"].value == "1990-03-07"
    assert decoded["birth_date"].confidence <= GUESSED_CONFIDENCE
    assert decided_by_constraint(decoded["birth_date"].corrections)


@st.composite
def _date_case(draw):
    y = draw(st.integers(1950, 2030))
    mo = draw(st.integers(0, 19))
    d = draw(st.integers(0, 39))
    sep = draw(st.sampled_from(["年月日", "..", "--"]))
    text = (f"{y}年{mo:02d}月{d:02d}日" if sep == "年月日"
            else f"{y}{sep[0]}{mo:02d}{sep[1]}{d:02d}")
    alts = []
    for c in text:
        if c.isdigit():
            others = draw(st.lists(st.sampled_from(_DIGIT_POOL), max_size=2, unique=True))
            alts.append([(c, 0.6)] + [(o, draw(st.floats(0.02, 0.4))) for o in others if o != c])
        else:
            alts.append([(c, 0.99)])
    return text, alts


@settings(max_examples=300, deadline=None)
@given(_date_case())
def test_date_decoder_keeps_real_dates_and_takes_only_offered_digits(case):
    text, alts = case
    chosen = choose_date(text, alts)
    if parse_date(text) is not None:
        assert chosen is None
        return
    if chosen is None:
        return
    value, notes = chosen
    assert parse_date(value) == value
    assert 1 <= len(notes) <= 2
    # the digits of the chosen date are those of the text, or offered at their place
    digits_read = [(k, c) for k, c in enumerate(text) if c.isdigit()]
    chosen_digits = value.replace("-", "")
    assert len(chosen_digits) == len(digits_read)
    for (k, c), new in zip(digits_read, chosen_digits, strict=True):
        assert new == c or new in {o for o, _ in alts[k]}


def test_a_margin_is_a_ratio_above_one():
    assert MARGIN > 1.0


def test_valid_fields_pass_through_decode_fields_unchanged():
    row = "性别男民族汉"
    alts = _sure(row)
    alts[-1] = [("汉", 0.6), ("汊", 0.3)]
    lines = [_line("姓名张三", 20, 20), _line(row, 20, 70, alternatives=alts),
             _line("出生1990年3月7日", 20, 120, alternatives=_sure("出生1990年3月7日")),
             _line("住址北京市东城区东华门街道1号", 20, 170),
             _line("公民身份号码110101199003070011", 20, 300)]
    fields = extract_id_card_front(lines)
    assert decode_fields(DocType.ID_CARD_FRONT, fields, lines) == fields


def test_id_back_second_date_decoded_first_left():
    from ocr.extract.idcard import extract_id_card_back

    row = "有效期限2015.03.04-2035.03.34"
    alts = _sure(row)
    alts[len(row) - 2] = [("3", 0.6), ("0", 0.35)]
    lines = [_line("签发机关北京市公安局东城分局", 20, 20), _line(row, 20, 70, alternatives=alts)]
    fields = extract_id_card_back(lines)
    assert fields["valid_from"].value == "2015-03-04" and fields["valid_until"].value is None
    decoded = decode_fields(DocType.ID_CARD_BACK, fields, lines)
    assert decoded["valid_until"].value == "2035-03-04"
    assert decoded["valid_from"] == fields["valid_from"]


def test_a_rule_that_passes_because_of_a_decoded_value_vouches_for_nothing():
    """汊 decoded to 汉 makes id_card.ethnicity_known pass; that pass must not carry the
    value (held at the decoder's confidence) straight through."""
    from backoffice.assess import route
    from domain.models import CheckResult, Severity

    fields = {name: ExtractedField(value="x", confidence=0.99)
              for name in ("name", "sex", "birth_date", "address", "id_number")}
    check = CheckResult(rule="id_card.ethnicity_known", passed=True, severity=Severity.ERROR,
                        message="ok")
    kwargs = {"min_confidence": 0.85, "min_id_confidence": 0.9}
    read = {**fields, "ethnicity": ExtractedField(value="汉", confidence=0.5)}
    assert route(DocType.ID_CARD_FRONT, read, [check], None, **kwargs).status == "approved"
    decoded = {**fields, "ethnicity": ExtractedField(
        value="汉", confidence=0.5, raw="汊",
        corrections=["汊->汉 at 1 (recogniser candidate, p=0.40; by constraint: known ethnicity)"])}
    decision = route(DocType.ID_CARD_FRONT, decoded, [check], None, **kwargs)
    assert decision.status == "in_review"
    assert [r.field for r in decision.reasons] == ["ethnicity"]


# --- a claim form's account number: the Luhn digit as a tie-breaker ----------------


def _account_fields(number: str, alts):
    row = "银行账号：" + number
    lines = [_line(row, 20, 20, alternatives=_sure("银行账号：") + alts, confidence=0.95)]
    return lines, {"account_number": ExtractedField(value=number, confidence=0.9,
                                                    boxes=[lines[0].polygon], raw=row)}


def test_a_doubted_account_digit_takes_the_candidate_the_luhn_digit_favours():
    from stdnum import luhn

    good = "621700001000123" + luhn.calc_check_digit("621700001000123")
    wrong = good[:5] + ("8" if good[5] != "8" else "3") + good[6:]
    alts = _sure(wrong)
    alts[5] = [(wrong[5], 0.55), (good[5], 0.4)]
    lines, fields = _account_fields(wrong, alts)
    decoded = decode_fields(DocType.CLAIM_FORM, fields, lines)["account_number"]
    assert decoded.value == good
    assert decided_by_constraint(decoded.corrections)
    assert decoded.confidence <= GUESSED_CONFIDENCE
    # no candidate that passes: left as read (accounts without a Luhn digit exist)
    lines, fields = _account_fields(wrong, _sure(wrong))
    assert decode_fields(DocType.CLAIM_FORM, fields, lines) == fields


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"62[0-9]{14,17}", fullmatch=True), st.integers(0, 15), st.data())
def test_an_account_number_only_ever_takes_offered_digits(number, pos, data):
    from stdnum import luhn

    alts = _sure(number)
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != number[pos]]))
    alts[pos] = [(number[pos], data.draw(st.floats(0.3, 0.9))), (other, 0.1 + 0.2 * pos / 16)]
    lines, fields = _account_fields(number, alts)
    decoded = decode_fields(DocType.CLAIM_FORM, fields, lines)["account_number"]
    if luhn.is_valid(number):
        assert decoded == fields["account_number"]  # a valid number is never changed
    elif decoded.value != number:
        assert luhn.is_valid(decoded.value)
        assert decoded.value == number[:pos] + other + number[pos + 1:]
        assert decided_by_constraint(decoded.corrections)


# --- issuing authority ------------------------------------------------------------

_AUTHORITIES = ["花垣县公安局", "北京市公安局门头沟分局", "和静县公安局", "上海市公安局长宁分局",
                "重庆市梁平县公安局", "葫芦岛市公安局南票分局"]
# look-alikes a recogniser might offer, some of which make other real places
_LOOKALIKE = {"垣": "埔垢恒", "沟": "公钩构", "静": "群净靖", "宁": "字守", "票": "栗漂",
              "平": "乎苹", "花": "化华", "局": "姆居"}


def test_a_doubted_character_of_the_place_takes_the_candidate_that_makes_it_real():
    alts = _sure("和群县公安局")
    alts[1] = [("群", 0.55), ("静", 0.40)]
    value, notes, share = choose_authority("和群县公安局", alts)
    assert value == "和静县公安局" and share == 1.0
    assert notes and "by constraint" in notes[0]
    assert choose_authority("和群县公安局", _sure("和群县公安局", 0.95)) is None  # not doubted
    assert choose_authority("和静县公安局", alts) is None  # already real places
    assert choose_authority("和静县公安", _sure("和静县公安", 0.5)) is None  # 局 lost: not put back


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_AUTHORITIES), st.data())
def test_an_authority_is_only_ever_spelt_from_the_recognisers_candidates(authority, data):
    """A misread authority is changed only to real places, only with the characters the
    recogniser offered, and a real one never."""
    from domain.gb11643 import authority_known

    alts = []
    for c in authority:
        offered = data.draw(st.lists(st.sampled_from(_LOOKALIKE.get(c, "一")), max_size=2,
                                     unique=True))
        first = data.draw(st.sampled_from([c, *offered]))
        p = data.draw(st.floats(0.3, 0.99))
        alts.append([(first, p)] + [(o, (1 - p) / 2) for o in [c, *offered] if o != first])
    read = "".join(a[0][0] for a in alts)
    chosen = choose_authority(read, alts)
    if authority_known(read):
        assert chosen is None
        return
    if chosen is None:
        return
    new, notes, _share = chosen
    assert authority_known(new) and len(new) == len(read)
    assert 1 <= len(notes) <= 2
    for ch, cands in zip(new, alts, strict=True):
        assert ch in {c for c, _p in cands}


def test_full_width_digits_read_in_a_number_are_the_ordinary_ones():
    from ocr.engine import _HALF_WIDTH

    assert "1201061992111５6657".translate(_HALF_WIDTH) == "120106199211156657"
    assert "６５３ＡＢｘ".translate(_HALF_WIDTH) == "653ABx"
    assert "姓名：钱思伟，（男）".translate(_HALF_WIDTH) == "姓名：钱思伟，（男）"  # not punctuation


def test_a_number_not_read_still_ends_the_address_at_its_label():
    lines = [
        _line("姓名钱思伟", 60, 83), _line("性别男", 61, 159), _line("民族汉", 311, 155),
        _line("出生1992年11月15日", 64, 225), _line("住址天津市红桥区中山路30号", 65, 292),
        _line("公民身份号码", 71, 526), _line("12010619±±", 304, 514),
    ]
    out = extract_id_card_front(lines)
    assert out["address"].value == "天津市红桥区中山路30号"


def test_a_misread_label_run_on_into_the_number_is_dropped():
    lines = [
        _line("姓名钱思伟", 60, 83), _line("性别男", 61, 159), _line("民族汉", 311, 155),
        _line("出生1980年7月30日", 64, 225), _line("住址新疆维吾尔自治区吐鲁番地区", 65, 292),
        _line("R09652122198007307535", 304, 514),
    ]
    out = extract_id_card_front(lines)
    assert out["id_number"].value == "652122198007307535"
    assert out["id_number"].raw == "R09652122198007307535"
    assert out["id_number"].corrections == ["dropped R09 before the number (a misread label)"]
    assert out["address"].value == "新疆维吾尔自治区吐鲁番地区"
