"""Claim-form extractor: label anchors and line geometry, no template positions.

Labels come from a synonym table held as data (`ocr/claim_labels.json`, or the file
set by `use_labels`, from the setting BACKOFFICE_CLAIM_LABELS). For each label found, the value is looked for
1. after the label on the same line (`标签：值`),
2. to the right on the same row, before the next label (a table's value cell),
3. below, in the same column (a label-above-value box),
and the first candidate that is plausible for the field wins (its normal form:
:mod:`ocr.extract.normalise`).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path

from domain.fields import FieldFamily, field_family
from domain.models import ExtractedField, OcrLine

from ..layout import text_skew
from ..lexicon import LEXICON_NOTE, lexical_score
from ..text import fold_name
from .normalise import _RELATIONS, CHECKED, CJK, UNCHECKED, char_offsets, fold_text, normalise

IGNORE = "_ignore"
# Labels that say "an amount" without saying which (申请金额, or a misread
# 申请金额（?写）): the value's own form decides.
AMOUNT = "_amount"


@lru_cache(maxsize=4)
def _load(path: str | None) -> dict[str, list[str]]:
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = resources.files("ocr").joinpath("claim_labels.json").read_text("utf-8")
    data = json.loads(text)
    return {k: [fold_text(x) for x in v] for k, v in data.items()
            if not k.startswith("_") or k in (IGNORE, AMOUNT)}


_labels_file: str | None = None


def use_labels(path: str | Path | None) -> None:
    """Read claim forms with the label synonyms of this JSON file (None: the bundled
    ``ocr/claim_labels.json``). The application calls it from its settings."""
    global _labels_file
    _labels_file = str(path) if path else None
    _label_index.cache_clear()


def synonyms() -> dict[str, list[str]]:
    """Field name (or `_ignore`) -> normalised printed labels."""
    return _load(_labels_file)


@lru_cache(maxsize=4)
def _label_index(key: int) -> list[tuple[str, str]]:
    pairs = [(label, field) for field, labels in synonyms().items() for label in labels]
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def labels_sorted() -> list[tuple[str, str]]:
    return _label_index(id(synonyms()))


@lru_cache(maxsize=4)
def _by_start(key: int) -> dict[str, list[tuple[str, str]]]:
    """Labels (longest first) under each of their first two characters: a text can only
    start a label, whole or with its first character missing, under its own first one."""
    index: dict[str, list[tuple[str, str]]] = {}
    for label, field in labels_sorted():
        for ch in dict.fromkeys(label[:2]):
            index.setdefault(ch, []).append((label, field))
    return index


def _labels_for(text: str) -> list[tuple[str, str]]:
    return _by_start(id(synonyms())).get(text[:1], [])


def _label_end(text: str, end: int) -> int:
    """Where a label ending at `end` really ends: after a short aside in brackets that
    qualifies it (申请人（受益人）, 金额（元）) and after its colon."""
    aside = re.match(r"（[^（）：]{1,6}）", text[end:])
    if aside and not re.search(r"\d", aside.group(0)):
        end += aside.end()
    while end < len(text) and text[end] in "：:;； ":
        end += 1
    return end


def match_label(text: str, fuzzy: bool = False, words: bool = True
                ) -> tuple[str, str, int] | None:
    """(field, label, end) when `text` starts with a known label (longest wins).

    With `fuzzy`, a long label read with a character or two missing also counts
    (the recogniser drops characters: 与被保险关系, 申请额（写）), but only where it
    covers more of the text than any exact label does; and a label the table does not
    know is read by its words (:func:`label_by_words`), unless ``words`` is False.
    """
    exact = None
    candidates = _labels_for(text)
    for label, field in candidates:
        if text.startswith(label):
            exact = (field, label, _label_end(text, len(label)))
            break
    if not fuzzy:
        return exact
    best = None
    covered = len(exact[1]) if exact else 0
    for label, field in candidates:
        span = _fuzzy_prefix(label, text)
        if span is None or span <= covered:
            continue
        if best is None or span > best[0]:
            best = (span, [(field, label)])
        elif span == best[0] and field not in {f for f, _ in best[1]}:
            best[1].append((field, label))
    if best is None:
        return exact if exact is not None or not words else label_by_words(text)
    span, hits = best
    if words and (read := label_by_words(text)) is not None and read[2] >= span:
        # A label read whole by its words (收款人户名) is no misreading of a table label
        # one character away (收款人姓名).
        return read
    fields = {f for f, _ in hits}
    if len(fields) > 1:
        # Only the two amounts share their long labels (申请金额（大写/小写）); the
        # value's own form then says which one it is.
        if fields != {"claim_amount", "claim_amount_in_words"}:
            return exact
        return AMOUNT, hits[0][1], _label_end(text, span)
    return hits[0][0], hits[0][1], _label_end(text, span)


# --- labels by their words -------------------------------------------------------
#
# A form of another insurer words its labels its own way (出险人, 患者姓名, 事故发生时间,
# 递交日期, 开户网点 ...). A label the table does not know is read by its words: what it
# is about (the qualifier) and what it asks for (the head). The first rule that fits wins,
# so the specific ones come first (申请人与被保险人关系 is a relationship, not a name).

#: (field, words of which one must occur, heads of which one must occur or None)
_WORD_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...] | None], ...] = (
    (IGNORE, ("签名", "签章", "签字", "声明", "经过", "原因", "邮编", "邮政", "邮箱", "住址",
              "地址", "职业", "工作", "性别", "年龄", "报案", "住院号", "门诊号", "入院", "出院",
              "就诊日期", "就诊时间", "客服", "备注", "说明", "注意", "提示"), None),
    ("relationship", ("关系",), ("关系",)),
    ("claim_amount_in_words", ("大写",), None),
    (IGNORE, ("申请人", "领款人", "收款人", "受益人", "索赔人"), ("证号", "证号码", "证件号", "证件号码",
                                                "身份证", "身份证号", "身份证号码")),
    ("insured_id_number", ("身份证", "证件"), None),
    ("account_number", ("账号", "帐号", "卡号", "账户号", "帐户号"), None),
    # 领款人 is the payee: the name the account is in (as the table's 领款人姓名).
    ("account_name", ("户名", "账户名", "帐户名", "开户名", "持卡人", "领款人", "收款人"), None),
    ("bank_name", ("开户行", "开户银行", "收款银行", "网点", "开户机构", "银行名称"), None),
    ("policy_number", ("保单", "保险单", "合同"), ("号", "号码", "编号")),
    (AMOUNT, ("金额", "小写"), None),
    ("phone", ("电话", "手机", "联系方式"), None),
    # 医院诊断 asks for a diagnosis: what a label asks for is its last word.
    ("diagnosis", ("诊断", "疾病", "伤病", "病名", "病情"), None),
    ("hospital", ("医院", "医疗机构", "就诊机构", "就医机构"), None),
    ("accident_date", ("出险", "事故", "发生", "受伤", "意外"), ("日期", "时间")),
    ("application_date", ("申请", "填写", "填表", "递交", "提交", "签署"), ("日期", "时间")),
    ("insured_name", ("被保险人", "被保人", "出险人", "患者", "伤者", "病人", "就诊人"), None),
    ("claimant_name", ("申请人", "受益人", "索赔人"), None),
)
#: How a label without a colon ends: a value hardly ever does (a hospital or a bank's
#: name ends in 医院 or 银行, so those need a qualifier in front: 就诊医院, 开户银行).
_LABEL_HEADS = ("姓名", "名称", "人", "号", "号码", "编号", "日期", "时间", "关系", "电话",
                "手机", "方式", "账号", "帐号", "卡号", "户名", "行", "网点", "金额", "大写",
                "小写", "（元）", "诊断", "结果", "机构")
_QUALIFIED_HEADS = {"医院": ("就诊", "就医", "治疗", "住院", "诊治"),
                    "银行": ("开户", "收款", "领款")}
#: Words that end a value (a hospital's or a bank's name) as well as begin labels.
_VALUE_ENDS = tuple(_QUALIFIED_HEADS)
_WORDS_LABEL_RE = re.compile(rf"^[{CJK}（）]{{2,14}}$")
_LABEL_BEFORE_VALUE = re.compile(rf"^([{CJK}（）]{{2,10}})(?=[0-9A-Za-z¥])")


@lru_cache(maxsize=1)
def _label_starts() -> frozenset[str]:
    return frozenset({w[:2] for _f, words, _h in _WORD_RULES for w in words} | {"与"})


def starts_like_label(text: str) -> bool:
    """Whether a text begins the way labels read by their words begin (出险, 事故, 与 ...)."""
    return text[:1] in _label_starts() or text[:2] in _label_starts()


def label_by_words(text: str) -> tuple[str, str, int] | None:
    """(field, label, end) for a label the table does not know, read by its words: the
    text before a colon, or a whole short text that ends as labels do.

    >>> label_by_words("患者姓名：王五")
    ('insured_name', '患者姓名', 5)
    >>> label_by_words("事故发生时间"), label_by_words("与出险人关系")[0]
    (('accident_date', '事故发生时间', 6), 'relationship')
    >>> label_by_words("事故发生时间2024-01-14")  # no colon: the value begins with a digit
    ('accident_date', '事故发生时间', 6)
    >>> label_by_words("与出险人关系本人")  # the label and its value under it
    >>> label_by_words("人民币（大写）")
    ('claim_amount_in_words', '人民币（大写）', 7)
    >>> label_by_words("北京协和医院"), label_by_words("中国工商银行"), label_by_words("急性阑尾炎")
    (None, None, None)
    """
    colon = text.find("：")
    if 0 < colon <= 14:
        label, end = text[:colon], _label_end(text, colon)
    elif colon < 0 and ((before := _LABEL_BEFORE_VALUE.match(text)) or len(text) <= 10):
        # a whole short text, or one printed before its value without a colon
        # (事故发生时间 2024-01-14: the value begins with a digit or a letter)
        label = before.group(1) if before else text
        end = len(label)
        bare = re.sub(r"（[^（）]*）$", "", label)  # 申请人（受益人）, 申请金额（元）
        qualified = next((q for h, q in _QUALIFIED_HEADS.items() if bare.endswith(h)), None)
        if qualified is not None:
            if not bare.startswith(qualified):
                return None
        elif not (bare.endswith(_LABEL_HEADS) or label.endswith(("（大写）", "（小写）"))):
            return None
    else:
        return None
    if not _WORDS_LABEL_RE.match(label):
        return None
    # A value run into the next label by the detector (重庆市中心医院诊断结果：) is no
    # label: the table's label at its end is, and the line is cut before it.
    # (A qualifier in brackets is no such label: 人民币（大写）.)
    # So is one run into a label read by its words (天津市中心医院 事故发生时间：).
    if not starts_like_label(label) and any(
            match_label(label[i:], words=False)
            or (starts_like_label(label[i:]) and label_by_words(label[i:]))
            for i in range(4, len(label) - 1) if label[i - 1] != "（"):
        return None
    asks = re.sub(r"（[^（）]*）$", "", label)  # 与被保险人关系（请勾选）
    if "关系" in asks and not asks.endswith("关系"):
        return None  # a label and its value run together (与出险人关系 / 本人)
    for field, words, heads in _WORD_RULES:
        if any(w in label for w in words) and (heads is None or asks.endswith(heads)):
            return field, label, end
    return None


def _fuzzy_prefix(label: str, text: str) -> int | None:
    """The length of the start of `text` that is `label` with up to one (labels of 5-6
    characters) or two (7 and more) characters missing, or None."""
    n = len(label)
    allowed = 2 if n >= 7 else 1 if n >= 5 else 0
    for missing in range(1, allowed + 1):
        m = n - missing
        if m < 4:
            break
        if len(text) < m:
            continue
        head = text[:m]
        if head[0] in label[:2] and head[-1] == label[-1] and _is_subsequence(head, label):
            return m
    # One character misread (被保验人姓名), never the first: long labels only.
    # A digit or a Latin letter is never a misread label character: it starts the value
    # (被保险人身份证号 + 5423...).
    if allowed and len(text) >= n and text[0] == label[0] and sum(
            a != b for a, b in zip(text[:n], label, strict=True)) == 1 and not any(
            a != b and a.isascii() for a, b in zip(text[:n], label, strict=True)):
        return n
    return None


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


# A label word followed by one of these is a sentence's verb phrase (诊断为, 医院是).
_VERBS = frozenset("为是于在因")


def find_labels(text: str) -> list[tuple[int, str, str, int]]:
    """Every (start, field, label, end) occurrence that starts a label in the text."""
    out = []
    starts = _by_start(id(synonyms()))
    i = 0
    while i < len(text):
        hit = None
        if text[i] in starts:
            hit = match_label(text[i:], fuzzy=True, words=i == 0)
            if hit and i > 0:
                colon = "：" in text[i:i + hit[2]]
                exact = text.startswith(hit[1], i)
                # A label inside a value only counts after a separator (two inline
                # pairs) or before a colon; a misread one only before a colon. After a
                # comma, only before a colon: prose (…，被保险人体检发现异常).
                if not (colon or (exact and text[i - 1] in " 　：:;；|")):
                    hit = None
        if hit is None and (i == 0 or text[i - 1] in " 　，,;；|" or (
                starts_like_label(text[i:]) and not text.startswith(_VALUE_ENDS, i))):
            # A label not in the table: by its words, and (inside a line) only before
            # a colon, after a separator or where a label would begin (a value the
            # detector ran into the next label: 天津市中心医院 事故发生时间：); not at
            # a word that ends values (重庆市中心医院 | 诊断结果：).
            hit = label_by_words(text[i:])
            if hit and i > 0 and "：" not in text[i:i + hit[2]]:
                hit = None
            if hit and i > 0 and text[i - 1] not in " 　，,;；|" and any(
                    starts_like_label(text[j:]) and (later := label_by_words(text[j:]))
                    and later[0] != hit[0] and j + later[2] == i + hit[2]
                    for j in range(i + 1, i + len(hit[1]) - 1)):
                hit = None  # another label begins further on (医院 | 事故发生时间：)
        if hit and text[i + hit[2]:i + hit[2] + 1] in _VERBS:
            hit = None  # 诊断为肺炎: prose (diagnosed as), not a label and its value
        if hit:
            field, label, end = hit
            out.append((i, field, label, i + end))
            i += end
        else:
            i += 1
    return out


# --- geometry ---------------------------------------------------------------------

@dataclass
class _Line:
    line: OcrLine
    text: str  # normalised
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def h(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


def _same_row(a: _Line, b: _Line) -> bool:
    inter = min(a.y1, b.y1) - max(a.y0, b.y0)
    return inter > 0.5 * min(a.h, b.h)


@dataclass
class _Anchor:
    field: str
    start: _Line  # first line of the label
    end: _Line  # last line of the label (a wrapped label spans two)
    rest: str  # text after the label on its last line
    x0: float
    x1: float
    y0: float
    y1: float
    label: str = ""


_BOX_RE = re.compile(f"[{UNCHECKED}{CHECKED}]")
_SECTION_RE = re.compile(r"^[（(]?[一二三四五六七八九十]+[)）、.]|^第[一二三四五六七八九十]+部分")
# A numbered heading (2.被保险人信息, 二、出险信息) is never a value.
_NUMBERED_RE = re.compile(rf"^(?:\d{{1,2}}[.、．]|[（(]?[一二三四五六七八九十]+[)）、.])\s*[{CJK}]")
# 被保险人 + 资料 is a section heading, not the insured's name.
_HEADING_TAILS = {"信息", "资料", "情况", "基本信息", "基本资料", "声明"}


def _is_heading(text: str) -> bool:
    """A section heading on its own line (事故及就诊信息, 领款人账户信息): never a value."""
    t = text.strip("：: ")
    return (t.endswith(tuple(_HEADING_TAILS)) and len(t) <= 10
            and not re.search(rf"[\d{CHECKED}{UNCHECKED}]", t))


def _anchors(lines: list[_Line]) -> list[_Anchor]:
    anchors: list[_Anchor] = []
    used: set[int] = set()
    for i, ln in enumerate(lines):
        if i in used:
            continue
        if _SECTION_RE.match(ln.text):
            continue  # a section heading such as （二）被保险人资料
        single = match_label(ln.text, fuzzy=True)
        # A label wrapped over two lines in a narrow cell: 被保险人 / 身份证号：. A
        # section heading (领款人账户信息) starts none: the label under it is its own.
        wrapped = None
        heading = ln.text.endswith(tuple(_HEADING_TAILS))
        for j, other in enumerate(lines):
            if heading:
                break
            if j == i or j in used or not (-0.45 * ln.h < other.y0 - ln.y1 < 1.2 * ln.h):
                continue
            if abs(other.x0 - ln.x0) > 1.5 * ln.h:
                continue
            if _between(ln, other, lines):
                continue  # a value between them (领款人 / 倪诗博 / 开户行名称): two labels
            # A label read by its words wraps only when its first line starts as one:
            # otherwise a value would join the label under it (周博 + 就医医院：).
            hit = match_label(ln.text + other.text, fuzzy=True,
                              words=starts_like_label(ln.text))
            if hit and len(hit[1]) > len(ln.text) and (single is None or len(hit[1]) > len(single[1])):
                if _two_rows(ln, other, single, lines):
                    continue
                if single is not None and single[2] >= len(ln.text) and (
                        (hit[0] == IGNORE and single[0] != IGNORE)
                        or len(hit[1]) - len(ln.text) < 2):
                    # A whole label over the form's 填写说明：…, or over a line that would
                    # add one character to it (开户网点 over 注：请用黑色签字笔填写): not one
                    # label.
                    continue
                wrapped = (j, other, hit)
                break
        if wrapped is not None:
            j, other, (field, label, end) = wrapped
            joined = ln.text + other.text
            anchors.append(_Anchor(field, ln, other, joined[end:], min(ln.x0, other.x0),
                                   max(ln.x1, other.x1), ln.y0, other.y1, label))
            used.update((i, j))
            continue
        hits = find_labels(ln.text)
        if hits and hits[0][0] == 0:
            # Two `label：value` pairs on one OCR line: split the line between them.
            at = char_offsets(ln.text)
            for k, (start, field, label, end) in enumerate(hits):
                stop = hits[k + 1][0] if k + 1 < len(hits) else len(ln.text)
                rest = ln.text[end:stop]
                if rest.strip("：: ") in _HEADING_TAILS:
                    field = IGNORE
                x0 = ln.x0 + (ln.x1 - ln.x0) * at[start]
                x1 = ln.x0 + (ln.x1 - ln.x0) * at[end]
                anchors.append(_Anchor(field, ln, ln, rest, x0, x1, ln.y0, ln.y1, label))
            used.add(i)
    return _payee_as_claimant(anchors)


_PAYEE_NAME = re.compile(r"^(领款人|收款人)(姓名|名称)")


def _payee_as_claimant(anchors: list[_Anchor]) -> list[_Anchor]:
    """领款人姓名 (the payee's name) is the account's holder on a form that asks
    nothing else about the account's name; on a form that also asks for the account's
    name (户名, 账户名称), the payee's name is the applicant's, who receives the money."""
    payees = [a for a in anchors if a.field == "account_name" and _PAYEE_NAME.match(a.label)]
    holders = [a for a in anchors if a.field == "account_name" and a not in payees]
    if payees and holders and not any(a.field == "claimant_name" for a in anchors):
        for a in payees:
            a.field = "claimant_name"
    return anchors


def _between(upper: _Line, lower: _Line, lines: list[_Line]) -> bool:
    """Whether another line sits between two stacked lines, across their column."""
    x0, x1 = min(upper.x0, lower.x0), max(upper.x1, lower.x1)
    return any(upper.cy < ln.cy < lower.cy and ln.y0 >= upper.y1 - 0.3 * upper.h
               and ln.y1 <= lower.y0 + 0.3 * lower.h and min(ln.x1, x1) - max(ln.x0, x0) > 0
               for ln in lines if ln is not upper and ln is not lower)


def _two_rows(upper: _Line, lower: _Line, single, lines: list[_Line]) -> bool:
    """Two stacked labels that each fill their line and each have a value to their
    right (被保险人 | 颜福 over 证件号码 | ...) are two rows, not one wrapped label."""
    other = match_label(lower.text, fuzzy=True)  # a label of the table or read by its words
    if single is None or other is None or single[2] < len(upper.text) or other[2] < len(lower.text):
        return False

    def values(label: _Line) -> list[_Line]:
        return [v for v in lines if v is not label and v.x0 > label.x1 and _same_row(v, label)
                and not match_label(v.text)]

    # One value centred on both lines (与出险人 / 关系： beside 本人) is a wrapped label's.
    up, low = {id(v) for v in values(upper)}, {id(v) for v in values(lower)}
    return bool(up - low) and bool(low - up)


def _split_at_labels(ln: _Line) -> list[_Line]:
    """A line cut before each label that does not start it: the detector runs a value
    and the next `标签：` together when they sit close (2023年12月5日诊断:)."""
    cuts = [start for start, _f, _l, _e in find_labels(ln.text) if start > 0]
    if not cuts:
        return [ln]
    at = char_offsets(ln.text)
    width = ln.x1 - ln.x0
    pieces = []
    for a, b in zip([0, *cuts], [*cuts, len(ln.text)], strict=True):
        if ln.text[a:b].strip():
            pieces.append(_Line(ln.line, ln.text[a:b], ln.x0 + at[a] * width, ln.y0,
                                ln.x0 + at[b] * width, ln.y1))
    return pieces


#: How the second line of a name that wrapped in its cell ends (中国邮政储蓄银行锡林郭勒
#: 太仆寺 / 支行), for the fields whose values are an institution's name.
_WRAPPED_TAILS = {"bank_name": ("行", "营业部", "分理处", "储蓄所"),
                  "hospital": ("院", "中心", "诊所", "门诊部", "卫生室")}


def _wrapped_tail(field: str, value: list[_Line], items: list[_Line],
                  label_lines: set[int]) -> _Line | None:
    """The short line right under a value that ends the same name (支行 under a bank's
    name cut at the cell's edge), or None."""
    tails = _WRAPPED_TAILS.get(field)
    if tails is None or value[-1].text.endswith(tails):
        return None
    last = value[-1]
    return next((ln for ln in items if id(ln) not in label_lines and ln is not last
                 and 0 <= ln.y0 - last.y1 + 0.3 * last.h < 0.9 * last.h
                 and abs(ln.x0 - value[0].x0) < last.h and len(ln.text) <= 5
                 and ln.text.endswith(tails)), None)


def _split_under_labels(ln: _Line, labels: list[_Anchor]) -> list[_Line]:
    """A line that spans the columns of two or more labels of the row above, cut at
    the spaces in it where the cut falls between those columns; else the line itself."""
    under = [a for a in labels if min(a.x1, ln.x1) - max(a.x0, ln.x0) > 0.3 * (a.x1 - a.x0)]
    raw = ln.line.text.strip()  # the spaces as read (the normal form drops them)
    if len(under) < 2 or " " not in raw or fold_text(raw) != ln.text:
        return [ln]
    # where each character sits: a CJK character is about twice as wide as a digit
    weights = [1.0 if re.match(f"[{CJK}]", ch) else 0.55 for ch in raw]
    scale = (ln.x1 - ln.x0) / max(sum(weights), 1e-6)
    pieces, start, x = [], 0, ln.x0
    edges = [x]
    for w in weights:
        x += w * scale
        edges.append(x)
    for m in re.finditer(r"\s+", raw):
        cut = edges[m.start()]
        if any(a.x1 <= cut + 0.5 * ln.h and b.x0 >= cut - 0.5 * ln.h
               for a, b in pairwise(sorted(under, key=lambda a: a.x0))):
            if raw[start:m.start()].strip():
                pieces.append(_Line(ln.line, fold_text(raw[start:m.start()]), edges[start],
                                    ln.y0, edges[m.start()], ln.y1))
            start = m.end()
    if not pieces:
        return [ln]
    pieces.append(_Line(ln.line, fold_text(raw[start:]), edges[start], ln.y0, ln.x1, ln.y1))
    return pieces


def value_score(value: str, line: OcrLine, at: list[int] | None = None) -> float | None:
    """The least probability the recogniser gave a character of ``value`` where it stands
    in ``line`` (``at``, else its last occurrence); None when the line has no
    per-character probabilities or does not hold the value as read.

    A line's score is the mean over all its characters, the label's too: one doubtful
    character of a three-character name hardly moves the mean of 被保险人姓名：龚翻一, and
    a name's one rare character is exactly where a look-alike creeps in (翾→翻).

    >>> value_score("龚翻一", OcrLine(text="姓名：龚翻一", confidence=0.9, polygon=[(0, 0)] * 4,
    ...                              char_probs=[1, 1, 1, 0.99, 0.33, 0.98]))
    0.33
    """
    at = _value_at(value, line.text) if at is None else at
    if at is None or len(line.char_probs) != len(line.text):
        return None
    return min(line.char_probs[i] for i in at)


def _value_at(value: str, text: str) -> list[int] | None:
    """Where each character of ``value`` (as folded) stands in the line's own ``text``
    (its last occurrence); None when it is not there or the fold does not keep one
    character for one.

    >>> _value_at("龚翻一", "姓名： 龚 翻一")
    [4, 6, 7]
    """
    if not value:
        return None
    keep = [i for i, c in enumerate(text) if not c.isspace()]
    src = "".join(text[i] for i in keep)
    if len(unicodedata.normalize("NFKC", src)) != len(src):
        return None
    folded = fold_text(src)
    if len(folded) != len(src):
        return None
    k = folded.rfind(value)
    return None if k < 0 else keep[k:k + len(value)]


#: The families whose value is scored by the least probability of its own characters.
_OWN_SCORE = (FieldFamily.NAME, FieldFamily.TEXT)


def _field(field: str, value: str, sources: list[_Line]) -> ExtractedField:
    score = min(s.line.confidence for s in sources)
    family = field_family(field)
    notes: list[str] = []
    if family in _OWN_SCORE and len(sources) == 1:
        # A name or a text (hospital, diagnosis, bank) read from one line: scored by its
        # own characters, not the label's; a name with the characters mainland names
        # are written with put back where the fold changed them (麴, not 曲:
        # ``ocr.text.fold_name``).
        line = sources[0].line
        at = _value_at(value, line.text)
        if at is not None:
            own = value_score(value, line, at)
            score = score if own is None else own
            if family is FieldFamily.NAME:
                value = fold_name("".join(unicodedata.normalize("NFKC", line.text[i])
                                          for i in at))
            elif own is not None and len(line.alternatives) == len(line.text):
                # A text's doubted characters weighed by the words they make (交叉, not
                # 交又): its own curve calibrates the weighed score.
                weighed = lexical_score(value, [line.alternatives[i] for i in at],
                                        [line.char_probs[i] for i in at])
                if weighed is not None and abs(weighed - own) > 1e-4:
                    score, notes = weighed, [LEXICON_NOTE]
    return ExtractedField(
        value=value,
        confidence=round(score, 4),
        boxes=[s.line.polygon for s in sources],
        raw=" ".join(s.line.text for s in sources),
        corrections=notes,
    )


def _levelled_items(lines: list[OcrLine]) -> tuple[list[_Line], float]:
    """The lines cut at their labels, in a frame turned by the text's own skew (a
    photo's rows are not level), and that skew."""
    angle = text_skew(lines)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    items = []
    for line in lines:
        xs = [x * cos_a + y * sin_a for x, y in line.polygon]
        ys = [-x * sin_a + y * cos_a for x, y in line.polygon]
        items += _split_at_labels(_Line(line, fold_text(line.text), min(xs), min(ys), max(xs), max(ys)))
    return items, angle


def label_boxes(lines: list[OcrLine]) -> dict[str, list[tuple[float, float, float, float]]]:
    """Where each field's labels are on the page: field -> the labels' boxes (x0, y0,
    x1, y1 in the lines' pixels, upright around the skew). A label that only says
    "amount" stands for both amounts."""
    items, angle = _levelled_items(lines)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    out: dict[str, list[tuple[float, float, float, float]]] = {}
    for a in _anchors(items):
        if a.field == IGNORE:
            continue
        corners = [(x * cos_a - y * sin_a, x * sin_a + y * cos_a)
                   for x in (a.x0, a.x1) for y in (a.y0, a.y1)]
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        for field in (("claim_amount", "claim_amount_in_words") if a.field == AMOUNT
                      else (a.field,)):
            out.setdefault(field, []).append((min(xs), min(ys), max(xs), max(ys)))
    return out


def extract_claim_form(lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """All claim-form fields that can be found, in normal form."""
    items, _angle = _levelled_items(lines)
    anchors = _anchors(items)
    label_lines = {id(a.start) for a in anchors} | {id(a.end) for a in anchors}
    label_lines |= {id(ln) for ln in items if match_label(ln.text, fuzzy=True)}
    out: dict[str, ExtractedField] = {}
    for anchor in sorted(anchors, key=lambda a: (a.y0, a.x0)):
        if anchor.field == IGNORE:
            continue
        # A label that only says "amount": the value's own form says which one it is.
        fields = ("claim_amount_in_words", "claim_amount") if anchor.field == AMOUNT else (
            anchor.field,)
        fields = tuple(f for f in fields if f not in out)
        if not fields:
            continue
        for value_text, sources in _candidates(anchor, items, anchors, label_lines):
            found = next(((f, v) for f in fields if (v := normalise(f, value_text))), None)
            if found is not None:
                out[found[0]] = _field(found[0], found[1], sources)
                break
    return out


def _beside(ln: _Line, anchor: _Anchor) -> bool:
    """On the label's row: its last line's, or between the lines of a label wrapped over
    two (申请金额 / （大写）, the value centred on both)."""
    return _same_row(ln, anchor.end) or (anchor.start is not anchor.end
                                         and anchor.y0 <= ln.cy <= anchor.y1)


def _under_other_label(ln: _Line, anchor: _Anchor, anchors: list[_Anchor]) -> bool:
    """Whether ``ln`` starts right under another label of a column to the right of this
    one, a label with no value after it on its own line: that label's value, on a row a
    little lower than its label's (a two-column form whose columns' rows do not line up:
    申请日期's date on the row of 事故发生日期, seed 876)."""
    h = anchor.end.h
    return any(a is not anchor and a.x0 > anchor.x1 and not a.rest.strip("：: ")
               and a.y1 <= ln.y0 + 0.5 * h and ln.y0 - a.y1 < 1.0 * h
               and a.x0 - 0.5 * h <= ln.x0 < a.x1 for a in anchors)


def _candidates(anchor: _Anchor, items: list[_Line], anchors: list[_Anchor],
                label_lines: set[int]):
    rest = anchor.rest.strip("：: ")
    if rest:
        yield rest, [anchor.end]
    # To the right on the same row, up to the next label on that row.
    next_label_x = min((a.x0 for a in anchors if a is not anchor and a.x0 > anchor.x1
                        and _same_row(a.end, anchor.end)), default=float("inf"))
    # A value box may start a little inside the label's (boxes touch when they sit close;
    # more when the two boxes share the colon between them: 大写金额： / ：玖佰捌拾壹元整).
    right = [ln for ln in items if id(ln) not in label_lines
             and ln.x0 >= anchor.x1 - (1.0 if ln.text[:1] in "：:" else 0.6) * anchor.end.h
             and ln.x0 < next_label_x and _beside(ln, anchor)
             and not _under_other_label(ln, anchor, anchors)]
    right.sort(key=lambda ln: ln.x0)
    if right:
        tail = _wrapped_tail(anchor.field, right, items, label_lines)
        if tail is not None:
            yield "".join(ln.text for ln in right) + tail.text, [*right, tail]
        yield "".join(ln.text for ln in right), right
        if len(right) > 1:  # the nearest alone, when the row runs on into another value
            yield right[0].text, right[:1]
    # Below: the first row of lines under the label's row that holds this label's value.
    # A row with as many lines as the label row has labels is read cell by cell, in
    # order (a grid's value row under its label row, whatever the alignment); otherwise
    # a line belongs to the label it overlaps most, or failing that the nearest one.
    # A line that sits to the right of another label on its own row is that label's.
    h = anchor.end.h
    row_labels = sorted((a for a in anchors if _same_row(a.end, anchor.end)),
                        key=lambda a: a.x0)

    def owned(ln: _Line) -> bool:
        # A label that has its value after it on its own line (申请人：欧阳安彤) owns
        # nothing further right: the next column's lines need not line up with it.
        # Not past this label, though: a line under this label's column, with this label
        # between it and the other, is this label's (two columns whose rows do not line up).
        return any(a is not anchor and _same_row(a.end, ln) and a.x1 <= ln.x0 + 0.5 * a.end.h
                   and not a.rest.strip("：: ")
                   and not (a.x1 <= anchor.x0 and ln.x0 < anchor.x1) for a in anchors)

    def nearest(ln: _Line) -> _Anchor:
        return max(row_labels, key=lambda a: min(a.x1, ln.x1) - max(a.x0, ln.x0))

    window = sorted((ln for ln in items if id(ln) not in label_lines
                     # (detector boxes of a label and of the value under it may overlap:
                     # a tall written value in a box's corner label, 被保人姓名 / 樊熠)
                     and ln.y0 >= anchor.y1 - 0.5 * h and not _same_row(ln, anchor.end)
                     and ln.y0 - anchor.y1 < 2.5 * h
                     and not owned(ln) and not _NUMBERED_RE.match(ln.text)
                     and not _is_heading(ln.text)),
                    key=lambda ln: (ln.y0, ln.x0))
    nxt_below = [a.y0 for a in anchors if a is not anchor and a.y0 > anchor.y1 - 0.3 * h
                 and min(a.x1, anchor.x1) > max(a.x0, anchor.x0)]
    if nxt_below:
        # A value under its label lies above the next label of the same column (手机：
        # with its number centred far right in its cell, 理赔类型：'s boxes under it).
        window = [ln for ln in window if ln.y0 < min(nxt_below) - 0.3 * h]
    next_row = min((a.y0 for a in anchors if a.y0 > anchor.y1 - 0.3 * h), default=float("inf"))
    if any(min(ln.x1, anchor.x1) > max(ln.x0, anchor.x0) and ln.y0 < next_row
           for ln in window):
        # With a line under the label (above the next row of labels: the boxes of
        # 理赔类型 under 大写 are that row's), none far right of it: the next column's
        # narrative, which no label of this row heads, beside or above the value under
        # this label. A line under another label of this row is that label's, and
        # stays: the row is then read cell by cell (钟离安伟 | 男 | 5323…, s843).
        window = [ln for ln in window if ln.x0 < anchor.x1 + 3 * h or any(
            a is not anchor and min(a.x1, ln.x1) > max(a.x0, ln.x0) for a in row_labels)]
    while window:
        row = sorted((ln for ln in window if _same_row(ln, window[0])), key=lambda ln: ln.x0)
        taken = {id(ln) for ln in row}
        window = [ln for ln in window if id(ln) not in taken]
        # Two cells' values the detector ran together (左手掌软组织挫裂伤 2025/04/06,
        # under 医院诊断 and 出险日期): cut at the space between them.
        row = [piece for ln in row for piece in _split_under_labels(ln, row_labels)]
        if len(row) == len(row_labels):
            mine = [row[next(i for i, a in enumerate(row_labels) if a is anchor)]]
        else:
            mine = [ln for ln in row if nearest(ln) is anchor]
            if any(min(ln.x1, anchor.x1) > max(ln.x0, anchor.x0) for ln in mine):
                # not a line wholly left of the label (□其他 of the row's other column)
                mine = [ln for ln in mine if ln.x1 > anchor.x0 - 0.5 * h]
        if mine:
            text = "".join(ln.text for ln in mine)
            tail = _wrapped_tail(anchor.field, mine, items, label_lines)
            if tail is not None:
                yield text + tail.text, [*mine, tail]
            yield text, mine
            if len(mine) > 1:
                # the line under the label alone, when the row runs on into the next
                # cell's (于家春 then □本人 of the relationship's boxes, s846)
                under = max(mine, key=lambda ln: min(ln.x1, anchor.x1) - max(ln.x0, anchor.x0))
                yield under.text, [under]
            # A row of check boxes wrapped onto the next line (□本人 □父母 □配偶 □子女 /
            # ☑其他): with no tick read on the first, the two rows together.
            nxt = sorted((ln for ln in window if ln.y0 - max(m.y1 for m in mine) < 0.8 * h
                          and ln.x0 >= min(m.x0 for m in mine) - h
                          and ln.x0 <= max(m.x1 for m in mine)), key=lambda ln: ln.x0)
            if nxt and _BOX_RE.search(text) and (_BOX_RE.match(nxt[0].text)
                                                  or nxt[0].text.strip() in _RELATIONS):
                yield text + "".join(ln.text for ln in nxt), mine + nxt
            return
