"""Medical invoice (医疗收费票据) extractor: label anchors and line geometry, no positions.

For each label found (票据代码, 票据号码, 开票日期, 交款人 / 患者姓名 / 姓名, 收款单位（章）/
医疗机构, 合计（大写）/（小写）, 医保统筹（基金）支付 / 统筹基金支付, 个人自付 / 个人支付), the
value is looked for
1. after the label on the same line (``标签：值``, several pairs on one line are split),
2. to the right on the same row, before the next label (a ruled grid's value cell),
3. below, under the label (a box with the label above the value),
and the first candidate that is plausible for the field wins. Look-alike labels that are
no field (交款人统一社会信用代码, 个人账户支付, 个人自费, 收款人, 门诊号 ...) are anchors too, so
their values are never taken for a field's.

The items (``name:amount;...``) come from the table under the header row that names
项目（名称）and 金额: each item name is paired with the amount of its own group's 金额
column on the same row, row by row and group by group, in print order; the rows from
合计 on are not items.

The invoice kind (门诊 / 住院) is read from the title.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from domain import cn_amount
from domain.models import ExtractedField, OcrLine

from ..layout import text_skew
from .normalise import CJK, fold_text, normalise

IGNORE = "_ignore"
AMOUNT = "_amount"  # 合计 / 金额合计 alone: the value's own form says figures or words

#: (printed label, field), longest first when matched.
_LABELS: tuple[tuple[str, str], ...] = (
    ("交款人统一社会信用代码", IGNORE), ("统一社会信用代码", IGNORE), ("社会信用代码", IGNORE),
    ("票据代码", "invoice_code"), ("票据号码", "invoice_number"), ("票据号", "invoice_number"),
    ("开票日期", "invoice_date"),
    ("交款人", "patient_name"), ("患者姓名", "patient_name"), ("病人姓名", "patient_name"),
    ("姓名", "patient_name"),
    ("收款单位（章）", "hospital"), ("收款单位（盖章）", "hospital"), ("收款单位", "hospital"),
    ("医疗机构名称", "hospital"), ("医疗机构", "hospital"),
    ("金额合计（大写）", "total_amount_in_words"), ("合计金额（大写）", "total_amount_in_words"),
    ("合计（大写）", "total_amount_in_words"), ("（大写）", "total_amount_in_words"),
    ("大写", "total_amount_in_words"),
    ("金额合计（小写）", "total_amount"), ("合计金额（小写）", "total_amount"),
    ("合计（小写）", "total_amount"), ("（小写）", "total_amount"), ("小写", "total_amount"),
    ("金额合计", AMOUNT), ("合计金额", AMOUNT), ("合计", AMOUNT),
    ("医保统筹基金支付", "insurance_paid"), ("医保统筹支付", "insurance_paid"),
    ("统筹基金支付", "insurance_paid"), ("基金支付", "insurance_paid"),
    ("统筹支付", "insurance_paid"),
    ("个人自付", "self_paid"), ("个人支付", "self_paid"),
    # look-alikes that are no field
    ("个人账户支付", IGNORE), ("账户支付", IGNORE), ("个人现金支付", IGNORE),
    ("个人自费", IGNORE), ("其他支付", IGNORE), ("校验码", IGNORE), ("门诊号", IGNORE),
    ("住院号", IGNORE), ("医保类型", IGNORE), ("医保编号", IGNORE), ("性别", IGNORE),
    ("复核人", IGNORE), ("收款人", IGNORE), ("就诊日期", IGNORE), ("住院时间", IGNORE),
    ("住院日期", IGNORE), ("业务流水号", IGNORE), ("备注", IGNORE),
)
_SORTED = sorted(_LABELS, key=lambda p: len(p[0]), reverse=True)
_LABEL_CHARS = frozenset(c for label, _ in _LABELS for c in label[:1])
# Labels long enough to be recognised with one character misread or missing.
_FUZZY_MIN = 4
_SEPARATORS = " 　：:，,;；|）)"

# Rows that end the item table.
_TABLE_END_RE = re.compile("合计|大写|小写|统筹|支付|医保|收款|备注|基金")
_AMOUNT_RUN_RE = re.compile(r"[¥￥]?\d[\d,]*[.．]\d{1,2}")
_NAME_RUN_RE = re.compile(rf"[{CJK}][{CJK}（）()]+")


# --- labels ---------------------------------------------------------------------


def _match_at(text: str, i: int) -> tuple[str, str, int] | None:
    """(field, label, end) of the label starting at text[i], exact or (long labels) with
    one character misread or missing; None when no label starts there."""
    for label, field in _SORTED:
        if text.startswith(label, i):
            return field, label, i + len(label)
    best = None
    for label, field in _SORTED:
        n = len(label)
        if n < _FUZZY_MIN or text[i:i + 1] != label[0]:
            continue
        seg = text[i:i + n]
        # one character misread (the last only in long labels: 个人自付 / 个人自费 differ
        # in their last)
        if len(seg) == n and sum(a != b for a, b in zip(seg, label, strict=True)) == 1 \
                and (seg[-1] == label[-1] or n >= 6):
            best = best or (field, label, i + n)
        short = text[i:i + n - 1]
        if len(short) == n - 1 and short[-1] == label[-1] and _subsequence(short, label):
            best = best or (field, label, i + n - 1)
    return best


def _subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def find_labels(text: str) -> list[tuple[int, str, str, int]]:
    """Every (start, field, label, end) label in a (folded) line. A label inside a line
    counts after a separator or a figure (two ``标签：值`` pairs run together) or before a
    colon."""
    out = []
    i = 0
    while i < len(text):
        hit = _match_at(text, i) if text[i] in _LABEL_CHARS or text[i] in "（" else None
        if hit and i > 0:
            prev = text[i - 1]
            colon = text[hit[2]:hit[2] + 1] in ("：", ":")
            if not (colon or prev in _SEPARATORS or prev.isdigit()):
                hit = None
        if hit:
            field, label, end = hit
            while end < len(text) and text[end] in "：: ":
                end += 1
            out.append((i, field, label, end))
            i = end
        else:
            i += 1
    return out


# --- geometry ---------------------------------------------------------------------


@dataclass
class _Line:
    line: OcrLine
    text: str  # folded
    raw: str  # as read (spaces kept)
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def h(self) -> float:
        return max(self.y1 - self.y0, 1.0)

    def x_at(self, k: float, n: int) -> float:
        return self.x0 + (self.x1 - self.x0) * k / max(n, 1)


def _same_row(a, b) -> bool:
    inter = min(a.y1, b.y1) - max(a.y0, b.y0)
    return inter > 0.5 * min(a.y1 - a.y0, b.y1 - b.y0)


@dataclass
class _Anchor:
    field: str
    line: _Line
    rest: str  # text after the label, up to the next label on the line
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def h(self) -> float:
        return self.line.h


def _deskewed(lines: list[OcrLine]) -> list[_Line]:
    angle = text_skew(lines)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    out = []
    for line in lines:
        xs = [x * cos_a + y * sin_a for x, y in line.polygon]
        ys = [-x * sin_a + y * cos_a for x, y in line.polygon]
        out.append(_Line(line, fold_text(line.text), line.text, min(xs), min(ys), max(xs),
                         max(ys)))
    return out


def _anchors(items: list[_Line]) -> list[_Anchor]:
    anchors = []
    for ln in items:
        hits = find_labels(ln.text)
        if not hits:
            continue
        if hits[0][0] > 0:
            # A first label inside the line counts after 备注： or after a stray mark
            # (a seal's stroke read as a figure), not after a value's words.
            prefix = ln.text[:hits[0][0]].strip("：: ")
            if prefix != "备注" and re.search(f"[{CJK}]", prefix):
                continue
        n = len(ln.text)
        for k, (start, field, _label, end) in enumerate(hits):
            stop = hits[k + 1][0] if k + 1 < len(hits) else n
            anchors.append(_Anchor(field, ln, ln.text[end:stop], ln.x_at(start, n),
                                   ln.x_at(end, n), ln.y0, ln.y1))
    return anchors


def _candidates(anchor: _Anchor, items: list[_Line], anchors: list[_Anchor],
                label_lines: set[int]):
    rest = anchor.rest.strip("：: ")
    if rest:
        yield rest, [anchor.line]
    h = anchor.h
    nxt = min((a.x0 for a in anchors if a is not anchor and a.x0 > anchor.x1 - 0.2 * h
               and _same_row(a.line, anchor.line)), default=float("inf"))
    right = sorted((ln for ln in items if id(ln) not in label_lines and ln is not anchor.line
                    and ln.x0 >= anchor.x1 - 0.6 * h and ln.x0 < nxt
                    and _same_row(ln, anchor.line)), key=lambda ln: ln.x0)
    if right:
        yield right[0].text, right[:1]
        if len(right) > 1:
            yield "".join(ln.text for ln in right), right
    # Below: a box with the label over its value (the value starts under the label and
    # stays left of the next label of the label's row).
    below = sorted((ln for ln in items if id(ln) not in label_lines
                    and ln.y0 >= anchor.y1 - 0.4 * h and ln.y0 - anchor.y1 < 1.6 * h
                    and not _same_row(ln, anchor.line)
                    and ln.x0 >= anchor.x0 - 1.5 * h and ln.x0 < min(nxt, anchor.x1 + 3 * h)),
                   key=lambda ln: (ln.y0, ln.x0))
    if below:
        row = [ln for ln in below if _same_row(ln, below[0])]
        yield "".join(ln.text for ln in row), row


# --- values -----------------------------------------------------------------------

_CAPITALS = "零壹贰叁肆伍陆柒捌玖拾佰仟万亿元圆角分整正"


def normalise_invoice(field: str, raw: str) -> str | None:
    """A field's normal form from the text found for it, or None."""
    value = fold_text(raw).strip("：:;；,，。.|_ ")
    if not value:
        return None
    if field in ("invoice_code", "invoice_number"):
        value = re.sub(r"^(?:No|NO|N0|№)\.?", "", value)
        digits = re.sub(r"\D", "", value)
        alnum = re.sub(r"[^0-9A-Za-z]", "", value)
        lo, hi = (6, 14) if field == "invoice_code" else (6, 20)
        return digits if lo <= len(digits) <= hi and len(digits) >= len(alnum) - 1 else None
    if field == "invoice_date":
        return normalise("invoice_date", value)
    if field == "patient_name":
        return normalise("insured_name", value)
    if field == "hospital":
        value = re.sub(r"^[（(]?盖?章?[)）][：:]?|^[（(]盖?章[：:]?", "", value)
        return normalise("hospital", value)
    if field == "total_amount_in_words":
        return normalise("claim_amount_in_words", value)
    if field in ("total_amount", "insurance_paid", "self_paid"):
        if not re.search(r"\d[.．,]\d{2}(?!\d)|\d\.\d", value.replace("．", ".")):
            return None  # an amount is printed with its cents
        return normalise("claim_amount", value.replace("¥", "").replace("￥", ""))
    return value


def _kind(items: list[_Line]) -> tuple[str, _Line] | None:
    """门诊 / 住院 from the title (a line with 票据 or 收费), else from 门诊号 / 住院号."""
    titles = sorted((ln for ln in items if re.search("票据|收费|发票", ln.text)
                     and re.search("门诊|住院", ln.text)), key=lambda ln: ln.y0)
    for ln in titles:
        m = re.search("门诊|住院", re.sub("门诊号|住院号", "", ln.text))
        if m:
            return m.group(0), ln
    for ln in items:
        m = re.search("(门诊|住院)(?:号|时间|日期)", ln.text)
        if m:
            return m.group(1), ln
    return None


# --- items table ------------------------------------------------------------------


@dataclass
class _Run:
    kind: str  # name / amount
    text: str
    x: float
    line: _Line


def _runs(ln: _Line) -> list[_Run]:
    """The item names and amounts in a line, each with its x (interpolated by
    character): one OCR line may hold cells run together (83.37护理费)."""
    text = ln.raw
    n = len(text)
    out = []
    for m in _AMOUNT_RUN_RE.finditer(text):
        out.append(_Run("amount", m.group(0), ln.x_at((m.start() + m.end()) / 2, n), ln))
    for m in _NAME_RUN_RE.finditer(text):
        out.append(_Run("name", m.group(0), ln.x_at(m.start() + 0.5, n), ln))
    return out


_HEADER_WORDS_RE = re.compile("项目名称|项目|名称|金额|数量|单位|备注|规格")


def _header(items: list[_Line]) -> tuple[list[_Line], list[tuple[str, float]]] | None:
    """(header lines, columns (kind, x centre)) of the item table: the topmost line that
    names 项目 with the lines beside it, when they also name 金额."""
    for first in sorted((ln for ln in items if "项目" in ln.text or ln.text == "名称"),
                        key=lambda ln: ln.y0):
        row = [ln for ln in items if ln is first or _same_row(ln, first)]
        cols = []
        for ln in row:
            n = len(ln.text)
            for m in _HEADER_WORDS_RE.finditer(ln.text):
                word = m.group(0)
                if word == "金额" and re.match("金额合计|金额（?[大小]写", ln.text[m.start():]):
                    continue
                kind = ("name" if word in ("项目名称", "项目", "名称") else
                        "amount" if word == "金额" else "other")
                cols.append((kind, ln.x_at((m.start() + m.end()) / 2, n)))
        kinds = [k for k, _ in cols]
        if "name" in kinds and "amount" in kinds:
            return row, sorted(cols, key=lambda c: c[1])
    return None


def _overlap(a: _Line, b: _Line) -> float:
    return (min(a.y1, b.y1) - max(a.y0, b.y0)) / min(a.h, b.h)


def _items(items: list[_Line]) -> tuple[list[tuple[str, str]], list[_Line]] | None:
    """The items in print order: each name with the amount of its group's 金额 column that
    shares its row; rows are counted per group (a photo's rows need not be level)."""
    found = _header(items)
    if found is None:
        return None
    header, cols = found
    name_cols = [x for k, x in cols if k == "name"]
    amount_cols = [x for k, x in cols if k == "amount"]
    if len(amount_cols) < len(name_cols):
        return None
    top = max(ln.y1 for ln in header) - 0.3 * min(ln.h for ln in header)
    ends = [ln.y0 for ln in items if ln.y0 > top and _TABLE_END_RE.search(ln.text)
            and not any(ln is h for h in header)]
    bottom = min(ends, default=float("inf"))
    names: dict[int, list[_Run]] = {}
    amounts: dict[int, list[_Run]] = {}
    for ln in items:
        cy = (ln.y0 + ln.y1) / 2
        if not top < cy < bottom or any(ln is h for h in header):
            continue
        for run in _runs(ln):
            xs = name_cols if run.kind == "name" else amount_cols
            g = min(range(len(xs)), key=lambda i: abs(xs[i] - run.x))
            (names if run.kind == "name" else amounts).setdefault(g, []).append(run)
    placed: list[tuple[int, int, str, str, list[_Line]]] = []
    for g, runs in names.items():
        free = list(amounts.get(g, []))
        for rank, run in enumerate(sorted(runs, key=lambda r: r.line.y0)):
            best = max(free, key=lambda a: _overlap(a.line, run.line), default=None)
            if best is None or _overlap(best.line, run.line) < 0.3:
                continue
            free.remove(best)
            name = re.sub(rf"[^{CJK}（）]", "", fold_text(run.text))
            amount = normalise("claim_amount", best.text.replace("¥", "").replace("￥", ""))
            if len(name) >= 2 and amount is not None:
                placed.append((rank, g, name, amount, [run.line, best.line]))
    placed.sort(key=lambda p: (p[0], p[1]))
    out = [(name, amount) for _, _, name, amount, _ in placed]
    sources = [ln for p in placed for ln in p[4]]
    return (out, sources) if out else None


# --- the extractor ------------------------------------------------------------------


def _field(value: str, sources: list[_Line]) -> ExtractedField:
    unique = list({id(s): s for s in sources}.values())
    return ExtractedField(value=value,
                          confidence=round(min(s.line.confidence for s in unique), 4),
                          boxes=[s.line.polygon for s in unique],
                          raw=" ".join(s.line.text for s in unique))


def _parse_words(words: str | None) -> Decimal | None:
    if not words:
        return None
    try:
        return cn_amount.parse(words)
    except Exception:  # noqa: BLE001 - any unreadable capitals
        return None


def extract_medical_invoice(lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """All medical-invoice fields that can be found, in normal form."""
    items = _deskewed(lines)
    anchors = _anchors(items)
    label_lines = {id(a.line) for a in anchors if not a.rest.strip("：: ")}
    out: dict[str, ExtractedField] = {}
    for anchor in sorted(anchors, key=lambda a: (a.y0, a.x0)):
        if anchor.field == IGNORE:
            continue
        fields = (("total_amount_in_words", "total_amount") if anchor.field == AMOUNT
                  else (anchor.field,))
        fields = tuple(f for f in fields if f not in out)
        if not fields:
            continue
        for text, sources in _candidates(anchor, items, anchors, label_lines):
            hit = next(((f, v) for f in fields if (v := normalise_invoice(f, text))), None)
            if hit is not None:
                out[hit[0]] = _field(hit[1], sources)
                break
    if "hospital" not in out:
        found = _hospital_anywhere(items)
        if found is not None:
            out["hospital"] = found
    kind = _kind(items)
    if kind is not None:
        out["invoice_kind"] = _field(kind[0], [kind[1]])
    table = _items(items)
    if table is not None:
        pairs, sources = table
        out["items"] = _field(";".join(f"{n}:{a}" for n, a in pairs), sources)
        _vote_total(out, pairs)
    return out


def _hospital_anywhere(items: list[_Line]) -> ExtractedField | None:
    """The medical institution's name where its label was not read (a seal stamped over
    收款单位): a line that is an institution's name, and nothing else, lowest first (the
    收款单位 sits at the foot, the title at the head)."""
    for ln in sorted(items, key=lambda ln: -ln.y1):
        if re.search("票据|收费|发票", ln.text):
            continue
        value = normalise_invoice("hospital", re.sub(r"^[^：]{0,9}：", "", ln.text))
        if value is not None and re.search("(医院|卫生院|中心|保健院|诊所)$", value) \
                and not re.search("收款|单位|章", value):
            return _field(value, [ln])
    return None


_VOTE_NOTE = "total from the capitals, which the items' sum confirms"


def _vote_total(out: dict[str, ExtractedField], pairs: list[tuple[str, str]]) -> None:
    """The total is printed twice (figures, capitals) and is the items' sum: when the
    figures were not read or disagree with both others, which agree, the figures are
    the capitals' amount."""
    items_sum = sum((Decimal(a) for _, a in pairs), Decimal("0.00"))
    words = out.get("total_amount_in_words")
    in_words = _parse_words(words.value if words else None)
    figures = out.get("total_amount")
    if in_words is not None and in_words == items_sum and (
            figures is None or figures.value is None or Decimal(figures.value) != items_sum):
        conf = min(words.confidence, out["items"].confidence) if words else 0.0
        out["total_amount"] = ExtractedField(value=f"{items_sum:.2f}", confidence=conf,
                                             boxes=words.boxes if words else [],
                                             raw=words.raw if words else None,
                                             corrections=[_VOTE_NOTE])
