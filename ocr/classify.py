"""Document classification from the recognised text: which extractor applies."""

from __future__ import annotations

import re

from domain import gb11643
from domain.models import DocType, OcrLine

from .layout import bbox
from .text import choose_id_number, id_checksum_ok, repair_id_number, run_alternatives

# Keywords printed on each document type; OCR may drop a character, so each keyword
# also counts when most of its characters appear in order (see `_fuzzy_in`).
_KEYWORDS: dict[DocType, tuple[str, ...]] = {
    DocType.ID_CARD_FRONT: ("姓名", "性别", "民族", "出生", "住址", "公民身份号码"),
    DocType.ID_CARD_BACK: ("中华人民共和国", "居民身份证", "签发机关", "有效期限"),
    DocType.CLAIM_FORM: (
        "理赔", "索赔", "申请书", "申请表", "保单", "被保险人", "出险", "事故日期",
        "开户", "账号", "诊断", "医院", "申请金额", "申请人",
    ),
}
_ID_NUMBER_RE = re.compile(r"\d{17}[\dXx]")
# 临时居民身份证 with a character of 居民身份证 dropped or misread; 临时 itself must be read.
_TEMPORARY_RE = re.compile(r"临时.?[居民身份证]{2,}|临时居民")
_ID_RUN_RE = re.compile(r"[0-9A-Za-z]{18}")
_VALIDITY_RE = re.compile(r"\d{4}[.\-]\d{2}[.\-]?\d{2}\s*[-—–一]\s*(\d{4}|长期)")


def _fuzzy_in(keyword: str, text: str) -> bool:
    if keyword in text:
        return True
    if len(keyword) < 4:
        return False
    # A long keyword still counts with one character missing or misread.
    for i in range(len(keyword)):
        if keyword[:i] + keyword[i + 1:] in text:
            return True
    return False


def _candidates_make_an_id(line: OcrLine) -> bool:
    """Whether an 18-character run of the line becomes a valid ID number from the
    recogniser's own candidates (a blurred photo's number misread in a digit or two)."""
    for run in _ID_RUN_RE.findall(line.text.replace(" ", "")):
        alternatives = run_alternatives(line.text, line.alternatives, run)
        if alternatives and choose_id_number(alternatives) is not None:
            return True
    return False


# --- medical invoice (begin) ---
# 医疗收费票据: words only an invoice prints (a claim form asks for 医院, 诊断 and an amount
# in 大写, never for a 票据代码 or a 收款单位), then words it shares with other papers.
_INVOICE_STRONG = ("收费票据", "票据代码", "票据号码", "交款人", "收款单位", "开票日期",
                   "医保统筹", "统筹基金", "个人自付", "个人账户支付", "个人自费", "专用章")
_INVOICE_WEAK = ("合计", "大写", "小写", "项目", "金额", "收款人", "门诊", "住院", "票据")


def _invoice_evidence(text: str) -> tuple[float, int]:
    """(score 0..1, number of invoice-only words) for a medical invoice."""
    strong = sum(1 for kw in _INVOICE_STRONG if _fuzzy_in(kw, text))
    weak = sum(1 for kw in _INVOICE_WEAK if kw in text)
    return min(1.0, (strong + 0.5 * weak) / 6), strong
# --- medical invoice (end) ---


# --- bank card (begin) ---
_UNIONPAY_RE = re.compile(r"银联|[a-z]?nion\s*pa|ionpay|unionp", re.IGNORECASE)
_CARD_PRODUCT_RE = re.compile(r"借记卡|信用卡|储蓄卡|贷记卡|龙卡|一卡通|灵通卡|卡通")
_VALID_THRU_RE = re.compile(r"VALID|THRU|MONTH/?YEAR|(?<!\d)(0[1-9]|1[0-2])/\d{2}(?!\d)")


def _bank_card_evidence(text: str, lines: list[OcrLine], id_digits: bool) -> float:
    """Score 0..1 for a bank card: the UnionPay mark, a card product, a bank's name, a
    Luhn-valid 16-19 digit number, a valid-thru date. A card carries little text: a page
    of text (a claim form quotes a bank and an account too) counts half. Digits that
    begin as an ID number's (``id_digits``) are a card front's, not a card's number."""
    from .extract.bankcard import find_bank, number_evidence

    score = 0.0
    if _UNIONPAY_RE.search(text):
        score += 0.35
    if _CARD_PRODUCT_RE.search(text):
        score += 0.25
    bank = find_bank([ln.text for ln in lines])
    if bank is not None and bank[2] >= 0.7:
        score += 0.25
    elif "银行" in text:
        score += 0.15
    number = number_evidence(lines)
    if id_digits:
        number = 0
    score += (0.0, 0.1, 0.35)[number]
    if _VALID_THRU_RE.search(text):
        score += 0.1
    if len(text) > 200:
        score *= 0.5
    return min(1.0, score)
# --- bank card (end) ---


_DIGIT_RUN_RE = re.compile(r"\d{12,}")


def id_number_shaped(run: str) -> bool:
    """Whether a run of 12 or more digits begins as a resident ID number does: a county's
    GB/T 2260 code, then a birth year (1900-2099) and month. A blurred photo's number
    often loses or gains a digit further on and fails every check; its first digits
    still say what it is. A bank card's number (a BIN first) seldom begins so."""
    if len(run) < 12 or not run.isdigit():
        return False
    year, month = int(run[6:10]), int(run[10:12])
    return 1900 <= year <= 2099 and 1 <= month <= 12 and gb11643.county_code(run[:6])


def _id_digits(lines: list[OcrLine]) -> bool:
    """Whether a line holds a run of digits that begins as an ID number's."""
    return any(id_number_shaped(run) for ln in lines
               for run in _DIGIT_RUN_RE.findall(re.sub(r"\s", "", ln.text)))


def _number_row(lines: list[OcrLine]) -> bool:
    """Whether a run of 15 digits or more stands on the row of a 公民身份号码 label: a card
    front's number row, whatever its digits came out as."""
    labels = [bbox(ln) for ln in lines if _fuzzy_in("公民身份号码", ln.text.replace(" ", ""))]
    runs = [bbox(ln) for ln in lines if re.search(r"\d{15,}", re.sub(r"\s", "", ln.text))]
    return any(min(a[3], b[3]) - max(a[1], b[1]) > 0.5 * min(a[3] - a[1], b[3] - b[1])
               for a in labels for b in runs)


def _front_structure(lines: list[OcrLine], id_digits: bool) -> float:
    """Evidence for a card front from its values' shapes, when its pale labels are lost:
    a number that begins as an ID number (``id_digits``), or any long number on the row
    of the number's label; an address that begins with a province."""
    from .extract.idcard import starts_with_province

    score = 0.0
    if id_digits or _number_row(lines):
        score += 0.2
    if any(starts_with_province(ln.text) for ln in lines):
        score += 0.15
    return score


def classify_text(lines: list[OcrLine]) -> tuple[DocType, dict[str, float]]:
    """The most likely document type and the score of each type."""
    text = "".join(line.text for line in lines).replace(" ", "")
    scores: dict[str, float] = {}
    for doc_type, keywords in _KEYWORDS.items():
        hits = sum(1 for kw in keywords if _fuzzy_in(kw, text))
        scores[doc_type.value] = hits / len(keywords)
    # Evidence beyond the pale labels, which low-resolution photos lose first.
    if any(id_checksum_ok(repair_id_number(run)[0]) for run in _ID_RUN_RE.findall(text)) \
            or any(_candidates_make_an_id(line) for line in lines):
        scores[DocType.ID_CARD_FRONT.value] += 0.4
    elif _ID_NUMBER_RE.search(text):
        scores[DocType.ID_CARD_FRONT.value] += 0.2
    if re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text):
        scores[DocType.ID_CARD_FRONT.value] += 0.1
    id_digits = _id_digits(lines)
    if scores[DocType.ID_CARD_FRONT.value] < 0.3:
        scores[DocType.ID_CARD_FRONT.value] += _front_structure(lines, id_digits)
    if _VALIDITY_RE.search(text):
        scores[DocType.ID_CARD_BACK.value] += 0.25
    if "公安局" in text:
        scores[DocType.ID_CARD_BACK.value] += 0.2
    # A claim form quotes ID numbers and names too; many claim keywords outweigh that.
    claim_hits = scores[DocType.CLAIM_FORM.value] * len(_KEYWORDS[DocType.CLAIM_FORM])
    if claim_hits >= 4:
        return DocType.CLAIM_FORM, scores
    # --- medical invoice (begin) ---
    invoice_score, invoice_strong = _invoice_evidence(text)
    scores[DocType.MEDICAL_INVOICE.value] = invoice_score
    if invoice_strong >= 2 and invoice_score >= 0.5:
        return DocType.MEDICAL_INVOICE, scores
    # --- medical invoice (end) ---
    # --- bank card (begin) ---
    scores[DocType.BANK_CARD.value] = round(_bank_card_evidence(text, lines, id_digits), 4)
    # --- bank card (end) ---
    # A temporary card (临时居民身份证) carries a front's fields under its own title: the
    # title makes it its own type, never a normal card.
    temporary = _TEMPORARY_RE.search(text) is not None
    scores[DocType.ID_CARD_TEMPORARY.value] = (
        max(scores[DocType.ID_CARD_FRONT.value], 0.3) + 0.3 if temporary else 0.0)
    if temporary and scores[DocType.ID_CARD_FRONT.value] >= 0.2:
        return DocType.ID_CARD_TEMPORARY, scores
    best = max(scores, key=lambda k: scores[k])
    if scores[best] < 0.3:
        return DocType.UNKNOWN, scores
    return DocType(best), scores
