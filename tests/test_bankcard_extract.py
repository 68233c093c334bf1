"""The bank-card extractor and classification on synthetic OCR lines (no OCR)."""

from __future__ import annotations

from stdnum import luhn

from domain.models import DocType, OcrLine
from ocr.classify import classify_text
from ocr.extract import extract
from ocr.extract.bankcard import choose_card_number, extract_bank_card, find_bank

NUMBER = "6217000012345678907"  # 19 digits
assert luhn.is_valid(NUMBER)


def line(text: str, x: float, y: float, h: float = 40, conf: float = 0.98,
         alternatives=None, char_w: float | None = None) -> OcrLine:
    w = (char_w or h * 0.6) * max(len(text), 1)
    return OcrLine(text=text, confidence=conf,
                   polygon=[(x, y), (x + w, y), (x + w, y + h), (x, y + h)],
                   alternatives=alternatives or [])


def card(*number_lines: OcrLine, extra=()) -> list[OcrLine]:
    return [line("中国建设银行", 120, 50, 44), line("龙卡通", 800, 60, 30),
            line("China Construction Bank", 122, 100, 18), *number_lines, *extra,
            line("银联", 860, 530, 40), line("UnionPay", 860, 575, 16)]


def values(lines):
    return {k: f.value for k, f in extract_bank_card(lines).items()}


def test_groups_split_over_lines_are_joined_in_x_order():
    groups = ["6217", "0000", "1234", "5678", "907"]
    lines = card(*[line(g, 100 + 150 * i, 400, 50) for i, g in reversed(list(enumerate(groups)))])
    got = values(lines)
    assert got["card_number"] == NUMBER
    assert got["bank_name"] == "中国建设银行"
    assert got.get("card_holder") is None


def test_one_line_with_spaces_and_a_6_13_grouping():
    assert values(card(line("621700 0012345678907", 90, 400, 50)))["card_number"] == NUMBER


def test_the_valid_thru_date_on_the_number_row_is_not_part_of_it():
    lines = card(line("6217 0000 1234 5678", 60, 560, 36), line("907", 430, 560, 36),
                 line("VALID THRU 08/29", 560, 562, 30))
    assert values(lines)["card_number"] == NUMBER


def test_a_look_alike_letter_is_read_as_its_digit_when_luhn_agrees():
    got = extract_bank_card(card(line("6217 0O00 1234 5678 9O7", 90, 400, 50)))
    assert got["card_number"].value == NUMBER
    assert got["card_number"].corrections


def test_a_misread_digit_is_repaired_from_the_recogniser_candidates():
    misread = NUMBER[:9] + "7" + NUMBER[10:]  # 2 read as 7
    assert not luhn.is_valid(misread)
    text = " ".join([misread[:4], misread[4:8], misread[8:12], misread[12:16], misread[16:]])
    alts = []
    for k, ch in enumerate(text):
        if ch == " ":
            alts.append([(" ", 0.99)])
        elif k == text.index(misread[8:12]) + 1:
            alts.append([("7", 0.55), ("2", 0.40), ("1", 0.02)])
        else:
            alts.append([(ch, 0.99)])
    got = extract_bank_card(card(line(text, 90, 400, 50, alternatives=alts)))
    assert got["card_number"].value == NUMBER
    assert "7->2" in got["card_number"].corrections[0]
    assert got["card_number"].confidence < 0.9


def test_an_unrepairable_number_is_returned_as_read_with_a_low_confidence():
    misread = NUMBER[:9] + "7" + NUMBER[10:]
    got = extract_bank_card(card(line(misread, 90, 400, 50)))
    assert got["card_number"].value == misread
    assert got["card_number"].confidence <= 0.5


def test_choose_card_number_needs_a_clear_winner():
    alts = [[(c, 0.99)] for c in NUMBER[:-1]] + [[("4", 0.5)]]
    assert choose_card_number(alts) is None  # no candidate for the check digit
    two = [[(c, 0.99)] for c in NUMBER]
    two[3] = [("9", 0.5), ("7", 0.45)]  # 7 is right; is another digit as likely?
    two[5] = [("3", 0.5), ("0", 0.45)]
    got = choose_card_number(two)
    assert got is None or luhn.is_valid(got[0])


def test_holder_chinese_not_confused_with_product_or_bank_names():
    lines = card(line(NUMBER, 90, 400, 50), extra=[line("王秀英", 70, 540, 36),
                                                   line("借记卡", 700, 540, 30)])
    assert values(lines)["card_holder"] == "王秀英"


def test_holder_pinyin_split_over_two_lines():
    lines = card(line(NUMBER, 90, 400, 50), extra=[line("ZHANG", 70, 540, 32),
                                                   line("WEIMIN", 190, 541, 32)])
    assert values(lines)["card_holder"] == "ZHANG WEIMIN"


def test_english_bank_names_and_labels_are_not_holders():
    lines = [line("BANK OF CHINA", 120, 100, 20), line("长城电子借记卡", 700, 60, 30),
             line(NUMBER, 90, 400, 50), line("VALID THRU", 400, 470, 14),
             line("银联", 860, 530, 40)]
    got = values(lines)
    assert got["bank_name"] == "中国银行"
    assert got.get("card_holder") is None


def test_bank_synonyms_to_the_normal_form():
    assert find_bank(["浦发银行"])[0] == "上海浦东发展银行"
    assert find_bank(["邮储银行"])[0] == "中国邮政储蓄银行"
    assert find_bank(["ICBC"])[0] == "中国工商银行"
    assert find_bank(["INDUSTRIAL AND COMMERCIAL BANK OF CHINA"])[0] == "中国工商银行"
    assert find_bank(["POSTAL SAVINGS BANK OF CHINA"])[0] == "中国邮政储蓄银行"
    assert find_bank(["中国民生银 "])[0] == "中国民生银行"  # one character lost
    assert find_bank(["招商银行", "BANK OF CHINA"])[0] == "招商银行"  # Chinese name first
    assert find_bank(["中国工商银行", "中国银行"])[0] == "中国工商银行"
    assert find_bank(["借记卡", "VALID THRU"]) is None


def test_classified_as_bank_card_and_extracted_through_the_registry():
    lines = card(line(NUMBER, 90, 400, 50), extra=[line("王秀英", 70, 540, 36)])
    doc_type, scores = classify_text(lines)
    assert doc_type is DocType.BANK_CARD, scores
    fields = extract(doc_type, lines)
    assert set(fields) == {"card_number", "bank_name", "card_holder"}


def test_id_cards_and_claim_forms_keep_their_type():
    front = [line("姓名 王秀英", 80, 100), line("性别 女 民族 汉", 80, 170),
             line("出生 1949 年 12 月 31 日", 80, 240), line("住址 北京市朝阳区建国路88号", 80, 310),
             line("公民身份号码 11010519491231002X", 80, 540)]
    assert classify_text(front)[0] is DocType.ID_CARD_FRONT
    claim = [line(t, 60, 60 + 50 * i, 30) for i, t in enumerate([
        "人身保险理赔申请书", "保单号：P2025000123", "被保险人：王秀英", "出险日期：2024-05-03",
        "就诊医院：北京协和医院", "诊断：急性阑尾炎", "申请金额：12345.67", "开户银行：中国工商银行",
        "账户名：王秀英", f"账号：{NUMBER}", "申请人签名："])]
    assert classify_text(claim)[0] is DocType.CLAIM_FORM
    # a claim form photographed badly: few claim labels read, the bank and account are
    few = [line(t, 60, 60 + 50 * i, 30) for i, t in enumerate([
        "理赔申请书", "保单号：P2025000123", "被保险人：王秀英", "出险日期：2024-05-03",
        "就诊医院：北京协和医院", "申请人签名：", "开户银行：中国工商银行", f"账号：{NUMBER}"])]
    assert classify_text(few)[0] is DocType.CLAIM_FORM
