"""Claim-form values in their normal forms: the text found for a field becomes its normal
form (ARCHITECTURE.md), or None when it cannot be one.

Amounts in figures and in capitals, dates, phone, account, policy and ID numbers, names,
the relationship to the insured, hospital, bank and diagnosis. The extractor (:mod:`ocr.extract.claim`) tries its candidates
for a label through :func:`normalise`; the first plausible one wins.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from decimal import Decimal

from ..text import fold_chinese, parse_date, repair_id_number, strip_spaces

CJK = "\u3400-\u4dbf\u4e00-\u9fff"


def fold_text(text: str) -> str:
    """Text as labels and values are compared: Chinese folded, spaces dropped, brackets and
    colons full width."""
    text = strip_spaces(fold_chinese(text))
    return text.replace("(", "（").replace(")", "）").replace(":", "：")


_NAME_RE = re.compile(rf"^[{CJK}·]{{2,8}}$")
#: A sentence's punctuation: what the narrative (出险经过) has and a name or number has not.
_PROSE_RE = re.compile("[，。；,;]")
_DATE_RUN_RE = re.compile(r"(19|20)\d{2}-\d{1,2}-\d{1,2}")
# Words a form prints where a name is written, never a name: a signature line's label
# (签字, 签名, 盖章) read next to the name's own label, or a date to fill in.
_FORM_WORDS_RE = re.compile("签字|签名|签章|盖章|手印|日期|年月日"
                            # a claim type's check boxes (□伤残 □身故), a label
                            "|伤残|身故|津贴|医疗|疾病|住院|门诊"
                            "|受益人|申请人|被保险人|被保人|投保人|领款人|收款人|出险人|姓名")
#: A row's tick read with the name before it (尹韡镕 ☑本人): the option is no part of it.
_TRAILING_OPTION_RE = re.compile("(本人|配偶|子女|父母|其他)$")
_BOX_GLYPHS = "□☐☑☒✓✔√■▣"
_RELATIONS = ("本人", "配偶", "父母", "父亲", "母亲", "子女", "儿子", "女儿", "兄弟", "姐妹",
              "兄弟姐妹", "祖父母", "外祖父母", "孙子女", "外孙子女", "其他", "丈夫", "妻子",
              "监护人", "法定继承人", "受益人")
_CAPITALS = "零壹贰叁肆伍陆柒捌玖拾佰仟万亿元圆角分整正"
_DIGITS = "壹贰叁肆伍陆柒捌玖"


# Capitals the recogniser takes for look-alikes.
_CAPITAL_MISREADS = str.maketrans({"任": "仟", "伯": "佰", "恰": "拾", "武": "贰"})


def _amount(run: str) -> str | None:
    """12,345.67 / 12345.67 / 12.345.67 (a comma read as a point) -> 12345.67: the last
    point is the decimal one (a comma only when one or two digits end the number), and
    a digit the recogniser adds after the cents is dropped."""
    if "." in run:
        cut = run.rindex(".")
        whole, cents = run[:cut], run[cut + 1:][:2]
    elif m := re.search(r"[,，](\d{1,2})$", run):
        whole, cents = run[: m.start()], m.group(1)
    else:
        whole, cents = run, ""
    whole = re.sub(r"\D", "", whole).lstrip("0") or "0"
    if len(whole) >= 10:
        return None  # ten digits before the point are an account or ID number, not a claim
    # Decimal, not float: a float rounds long amounts.
    return str(Decimal(f"{whole}.{cents or 0}").quantize(Decimal("0.01")))


# What the name of a medical institution ends in or holds.
_INSTITUTION_RE = re.compile("医院|卫生院|卫生室|卫生服务|中心|诊所|门诊|保健院|疗养院|医疗|医学|医科")
# Sentence punctuation: narrative text, not a field's value.
_SENTENCE_RE = re.compile("[。；;！？]|[，,].*[，,。]")

# How the recogniser reads check boxes: empty ones, and ticked or filled ones.
UNCHECKED = "□☐口"
CHECKED = "☑☒✓✔√■▣区団团図"


@functools.lru_cache(maxsize=8)
def option_pattern(options: tuple[str, ...]) -> re.Pattern[str]:
    """A row of check boxes' options: group 1 the box glyph read just before an option
    ("" when none was read), group 2 the option (the longest first)."""
    words = "|".join(sorted(options, key=len, reverse=True))
    return re.compile(rf"([{UNCHECKED}{CHECKED}]?)\s*({words})")


def _option_marks(text: str, options: tuple[str, ...]) -> list[tuple[str, str]]:
    """(mark, option) for each option printed in a row of check boxes; mark is the box
    glyph read just before the option ("" when none was read)."""
    return option_pattern(options).findall(text)


def char_offsets(text: str) -> list[float]:
    """Where each character of a line starts, as a share of the line's width, and 1.0 at
    its end: a Chinese character is as wide as two digits or letters.

    >>> char_offsets("12中")
    [0.0, 0.25, 0.5, 1.0]
    """
    widths = [1.0 if unicodedata.east_asian_width(c) in "WF" else 0.5 for c in text]
    total = sum(widths) or 1.0
    out, run = [0.0], 0.0
    for w in widths:
        run += w
        out.append(run / total)
    return out


def checked_option(text: str, options: tuple[str, ...]) -> str | None:
    """The option ticked in a row of check boxes (本人☑ 配偶☐ ...), or None.

    A box read as ticked decides; when the tick itself was not read (a pen stroke over
    the box), the one option without an empty box in front of it, among three or more
    whose boxes were read, is the ticked one.

    >>> checked_option("□本人 ☑配偶 □子女", ("本人", "配偶", "子女"))
    '配偶'
    >>> checked_option("本人□配偶 □父母□子女□其他", ("本人", "配偶", "父母", "子女", "其他"))
    '本人'
    >>> checked_option("□本人 □配偶 □子女", ("本人", "配偶", "子女")) is None
    True
    """
    marks = _option_marks(text, options)
    if len(marks) < 2:
        return None
    ticked = [opt for mark, opt in marks if mark and mark in CHECKED]
    if ticked:
        return ticked[0] if len(set(ticked)) == 1 else None
    bare = [opt for mark, opt in marks if not mark]
    return bare[0] if len(bare) == 1 and len(marks) >= 3 else None


def normalise(field: str, raw: str) -> str | None:
    """The field's normal form (ARCHITECTURE.md), or None if the text cannot be one."""
    value = fold_text(raw).strip("：:;；,，。.|_ ")
    if not value:
        return None
    if field.endswith("_date"):
        return parse_date(value)
    if field == "phone":
        digits = re.sub(r"\D", "", value)
        if re.fullmatch(r"1[3-9]\d{9}", digits) or re.fullmatch(r"0\d{9,11}", digits):
            return digits
        return None
    if field == "account_number":
        digits = re.sub(r"\D", "", value)
        return digits if 12 <= len(digits) <= 25 and len(digits) >= 0.8 * len(
            re.sub(r"[\s\-]", "", value)) else None
    if field == "claim_amount":
        m = re.search(r"\d[\d,，.]*", value)
        if not m or re.search(rf"[{_CAPITALS}]{{3,}}", value):
            return None
        return _amount(m.group(0).rstrip(",，."))
    if field == "claim_amount_in_words":
        value = value.translate(_CAPITAL_MISREADS)
        words = re.sub(rf"[^{_CAPITALS}]", "", value.replace("人民币", ""))
        # 角 is the character the recogniser drops most; where the grammar of an
        # amount says it must be (元陆陆分, a last 元壹), it is put back.
        words = re.sub(f"([元圆])([{_DIGITS}])([{_DIGITS}])分$", r"\1\2角\3分", words)
        words = re.sub(f"([元圆])([{_DIGITS}])$", r"\1\2角", words)
        return words if len(words) >= 2 and re.search("[元圆]", words) else None
    if field == "insured_id_number":
        run = re.sub(r"[^0-9A-Za-z]", "", value)
        if len(run) not in (15, 18):
            return None
        return repair_id_number(run)[0] if len(run) == 18 else run
    if field == "policy_number":
        if _PROSE_RE.search(value) or re.search(r"\d\s*年.*\d\s*月", value):
            return None  # a sentence, a date in words: the narrative beside the label
        run = re.sub(r"[^0-9A-Za-z\-]", "", value).upper()
        if _DATE_RUN_RE.fullmatch(run):
            return None  # 2023-06-10: a date, never a policy's number
        return run if 6 <= len(run) <= 32 and sum(c.isdigit() for c in run) >= 4 else None
    if field in ("insured_name", "claimant_name", "account_name"):
        if re.search(rf"[{CJK}][\d.\-/ ]*\d[\d.\-/ ]*[{CJK}]", value):
            return None  # words around a number: a sentence (于2026.08.07下午因…)
        if any(c in _BOX_GLYPHS for c in value):
            return None  # a row of check boxes, never a name
        if _PROSE_RE.search(value):
            return None  # a sentence of the narrative (断为右股骨颈骨折。), never a name
        name = re.sub(rf"[^{CJK}·]", "", value)
        if len(name) >= 4:
            name = _TRAILING_OPTION_RE.sub("", name)
        if "·" not in name and len(name) > 6:
            return None  # a Han name has at most six characters (爱新觉罗·… has its dot)
        return name if _NAME_RE.match(name) and not _FORM_WORDS_RE.search(name) else None
    if field == "relationship":
        ticked = checked_option(value, _RELATIONS)
        if ticked is not None:
            return ticked
        marks = _option_marks(value, _RELATIONS)
        if len(marks) >= 2:
            return None  # a row of options whose tick cannot be told: a person decides
        if marks and marks[0][0] and marks[0][0] not in CHECKED:
            return None  # one option behind an empty box (□子女 of a wrapped row): not ticked
        rel = re.sub(rf"[^{CJK}]", "", value)
        return rel if rel in _RELATIONS or (1 <= len(rel) <= 4 and rel.endswith(("父", "母", "子", "女"))) else None
    if field == "hospital":
        h = re.sub(r"\s", "", value)
        # A medical institution says what it is (医院, 卫生院, 中心, 诊所 ...): a
        # diagnosis or a sentence of the narrative next to it does not.
        return h if (len(re.findall(rf"[{CJK}]", h)) >= 4 and _INSTITUTION_RE.search(h)
                     and not _SENTENCE_RE.search(h)) else None
    if field == "bank_name":
        b = re.sub(r"\s", "", value)
        # A bank's name says 银行 and a branch's ends in 分行/支行: a dropped 行 is
        # put back where that grammar is certain.
        if "银行" not in b:  # not the 银 of a place (兴业银行铁岭银州支行)
            b = re.sub("银(?![行川])", "银行", b, count=1)
        b = re.sub("([分支])$", r"\1行", b)
        return b if re.search("银行|信用社|农商|农信|行", b) else None
    if field == "diagnosis":
        d = re.sub(r"\s", "", value)
        # A diagnosis is a name of a condition: not a hospital, not a sentence with dates
        # (the narrative 出险经过 repeats it: 诊断为支气管肺炎。住院治疗 ...).
        if _INSTITUTION_RE.search(d) and re.search("医院|卫生院|诊所", d):
            return None
        if _SENTENCE_RE.search(d) or re.search(r"\d{3,}|\d+[年月日天号]", d) or len(d) > 24:
            return None
        return d if len(re.findall(rf"[{CJK}]", d)) >= 2 else None
    return value
