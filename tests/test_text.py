"""Text post-processing: folding, ID-number repair, dates; fuzzed with hypothesis."""

from __future__ import annotations

import doctest

from hypothesis import given, settings
from hypothesis import strategies as st

import ocr.text as text_mod
from domain.gb11643 import calc_check_digit
from domain.models import OcrLine
from ocr.classify import classify_text
from ocr.extract import extract
from ocr.extract.idcard import extract_id_card_back, extract_id_card_front
from ocr.text import fold_chinese, id_checksum_ok, parse_date, repair_id_number


def test_doctests():
    assert doctest.testmod(text_mod).failed == 0


def test_fold_variants_to_mainland_simplified():
    assert fold_chinese("漢族") == "汉族"
    assert fold_chinese("叄佰") == "叁佰"
    assert fold_chinese("瑤族") == "瑶族"
    assert fold_chinese("ＡＢ１２") == "AB12"  # full-width digits and letters


def test_repair_records_each_correction():
    value, corrections = repair_id_number("11O105l9491231002x")
    assert value == "11010519491231002X"
    assert corrections == ["O->0 at 3", "l->1 at 7", "x->X at 18"]


def test_repair_never_invents_a_valid_number_from_an_ambiguous_one():
    # Two different single-digit swaps would both fix this check digit: leave it alone.
    value, corrections = repair_id_number("110105194912310021")
    assert corrections == [] and value == "110105194912310021"


@given(st.text(max_size=40))
def test_repair_is_total_and_only_reports_valid_repairs(raw):
    value, corrections = repair_id_number(raw)
    assert isinstance(value, str)
    if corrections:
        assert id_checksum_ok(value)


@given(st.from_regex(r"[0-9]{17}", fullmatch=True))
def test_repair_keeps_valid_numbers(first17):
    number = first17 + calc_check_digit(first17)
    assert repair_id_number(number) == (number, [])
    assert repair_id_number(number.lower()) [0] == number


@given(st.text(max_size=30))
def test_parse_date_total(raw):
    result = parse_date(raw)
    assert result is None or len(result) == 10


_poly = st.tuples(st.floats(0, 2000), st.floats(0, 2000), st.floats(1, 400), st.floats(1, 80))
_line = st.builds(
    lambda t, c, p: OcrLine(text=t, confidence=c, polygon=[
        (p[0], p[1]), (p[0] + p[2], p[1]), (p[0] + p[2], p[1] + p[3]), (p[0], p[1] + p[3])]),
    st.text(alphabet=st.sampled_from(list("姓名性别男女民族汉出生年月日住址公民身份号码签发机关有效期限长期"
                                          "0123456789X.-: 市区路号")), max_size=25),
    st.floats(0, 1), _poly)


@settings(max_examples=200, deadline=None)
@given(st.lists(_line, max_size=12))
def test_extractors_never_raise(lines):
    extract_id_card_front(lines)
    extract_id_card_back(lines)
    doc_type, _ = classify_text(lines)
    extract(doc_type, lines)


@given(st.from_regex(r"[1-6][0-9]{16}", fullmatch=True), st.integers(0, 17),
       st.sampled_from("0123456789X"))
def test_a_digit_changed_by_the_check_digit_alone_is_marked_and_held_back(body, pos, wrong):
    """One digit misread as another: whatever the repair picks (the true number, another
    valid one, or nothing), a digit it changed was chosen by the check digit alone, and the
    extractor keeps it below every review threshold."""
    from ocr.text import GUESSED_CONFIDENCE, guessed_by_check_digit

    number = body + calc_check_digit(body)
    if wrong == "X" and pos != 17:
        wrong = "8"
    raw = number[:pos] + wrong + number[pos + 1:]
    value, corrections = repair_id_number(raw)
    changed = [i for i, (a, b) in enumerate(zip(raw, value, strict=False)) if a != b]
    if changed:
        assert guessed_by_check_digit(corrections), (raw, value, corrections)
    assert GUESSED_CONFIDENCE < 0.85


def line(text: str, y: float):
    """A line of an ID card's text, 30 px high, at height ``y``."""
    from domain.models import OcrLine

    return OcrLine(text=text, confidence=0.99,
                   polygon=[(10, y), (400, y), (400, y + 30), (10, y + 30)])


def test_an_id_card_number_repaired_by_its_check_digit_goes_to_a_person():
    from backoffice.assess import route
    from domain.models import DocType

    lines = [line("姓名王晓明", 10), line("性别男民族汉", 50), line("出生1949年12月31日", 90),
             line("住址北京市朝阳区建国路1号", 130), line("公民身份号码110105194912310028", 200)]
    fields = extract_id_card_front(lines)
    assert fields["id_number"].value == "11010519491231002X"
    assert fields["id_number"].raw == "110105194912310028"
    assert fields["id_number"].confidence <= 0.5
    decision = route(DocType.ID_CARD_FRONT, fields, [], None, min_confidence=0.85,
                     min_id_confidence=0.9)
    assert decision.status == "in_review"
    assert decision.for_field("id_number")


def test_an_id_cards_name_keeps_a_surname_opencc_would_fold():
    lines = [line("姓名麴晓明", 10), line("性别男民族汉", 50), line("出生1949年12月31日", 90),
             line("住址北京市朝阳区建國路1号", 130), line("公民身份号码11010519491231002X", 200)]
    fields = extract_id_card_front(lines)
    assert fields["name"].value == "麴晓明"  # OpenCC: 曲晓明 (s824 had such a miss)
    assert fields["address"].value == "北京市朝阳区建国路1号"  # an address is folded
    for label, want in (("住上", "北京市朝阳区建国路1号"), ("住址", "上海市徐汇区漕溪路1号")):
        rows = [*lines[:3], line(label + want, 130), lines[4]]
        assert extract_id_card_front(rows)["address"].value == want


@given(st.from_regex(r"[1-6][0-9]{5}(19[5-9][0-9]|200[0-9])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])"
                     r"[0-9]{3}", fullmatch=True), st.integers(0, 16), st.data())
def test_choose_id_number_takes_only_the_recognisers_candidates(body, pos, data):
    """A digit misread, the truth among the recogniser's candidates: the decoder returns a
    valid number built only from candidates, or nothing; never an invention."""
    from domain import gb11643
    from ocr.text import choose_id_number

    number = body + calc_check_digit(body)
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[pos]]))
    p_wrong = data.draw(st.floats(0.5, 0.95))
    alts = [[(c, 0.99)] for c in number]
    alts[pos] = [(wrong, p_wrong), (number[pos], 1 - p_wrong)]
    chosen = choose_id_number(alts)
    if chosen is None:
        return
    value, corrections, share = chosen
    gb11643.validate(value)
    assert all(value[i] in {c for c, _ in alts[i]} for i in range(18))
    assert 0 < share <= 1
    if value != number:  # another valid number: only when the misread itself is valid
        assert value == number[:pos] + wrong + number[pos + 1:] and not corrections


def test_choose_id_number_refuses_when_candidates_are_ambiguous():
    from domain import gb11643
    from ocr.text import choose_id_number

    body = "11010519491231002"  # its check character is X
    # Another 17th digit whose number would end in 7: a second valid reading as likely.
    other = next(d for d in "0123456789"
                 if gb11643.calc_check_digit(body[:16] + d) == "7")
    alts = [[(c, 0.99)] for c in body[:16]]
    alts += [[("2", 0.5), (other, 0.5)], [("7", 0.5), ("X", 0.5)]]
    assert choose_id_number(alts) is None
    alts[16] = [("2", 0.9), (other, 0.1)]  # now the recogniser prefers one clearly
    assert choose_id_number(alts)[0] == "11010519491231002X"
    assert choose_id_number([[("1", 0.9)]] * 17) is None  # not 18 characters


def test_an_id_cards_address_starts_at_its_province():
    """What a misread 住址 leaves before the province (亲新疆…, s833) is dropped, and the
    drop is noted; an address that starts at a province, full or short, is left alone."""
    head = [line("姓名王晓明", 10), line("性别男民族汉", 50), line("出生1949年12月31日", 90)]
    tail = [line("公民身份号码11010519491231002X", 200)]
    for printed, want in (("亲新疆维吾尔自治区乌鲁木齐市天山区1号", "新疆维吾尔自治区乌鲁木齐市天山区1号"),
                          ("住亲广西南宁市青秀区2号", "广西南宁市青秀区2号"),
                          ("住上海市徐汇区漕溪路1号", "上海市徐汇区漕溪路1号"),
                          ("住址江西省南昌市东湖区3号", "江西省南昌市东湖区3号")):
        address = extract_id_card_front([*head, line(printed, 130), *tail])["address"]
        assert address.value == want, printed
        assert bool(address.corrections) == (printed[:2] not in ("住址",)), printed
    kept = extract_id_card_front([*head, line("住址州市天河区4号", 130), *tail])["address"]
    assert (kept.value, kept.corrections) == ("州市天河区4号", [])


def test_a_label_box_reaching_into_the_name_reads_no_extra_character():
    """姓名区 | 欧阳华: the label's box overlaps the name's and read the left part of its
    first character (区 of 欧) again; the name is the name's box alone. A name whose own
    box starts after the label's is read as before (区志航: 区 is a surname)."""
    def box(text, x0, x1, y=130, h=45):
        return OcrLine(text=text, confidence=0.95,
                       polygon=[(x0, y), (x1, y), (x1, y + h), (x0, y + h)])

    rest = [box("性别男", 136, 285, 200), box("出生1990年1月2日", 136, 400, 270),
            box("公民身份号码11010519491231002X", 80, 900, 560)]
    lines = [box("姓名区", 136, 256), box("欧阳华", 238, 366), *rest]
    assert extract_id_card_front(lines)["name"].value == "欧阳华"
    lines = [box("姓名名", 67, 191), box("谷燚焱", 171, 294), *rest]
    assert extract_id_card_front(lines)["name"].value == "谷燚焱"
    lines = [box("姓名", 136, 226), box("区志航", 238, 366), *rest]
    assert extract_id_card_front(lines)["name"].value == "区志航"
