"""Resident identity card extractors (front and back), by labels and line geometry.

They read rows of text, not pixel positions of one template, so a card photographed
at another scale or with labels missed by the detector still reads.
"""

from __future__ import annotations

import functools
import re

from domain import gb11643
from domain.models import ExtractedField, OcrLine

from ..layout import Row, bbox, group_rows
from ..text import (
    DATE_RE,
    GUESSED_CONFIDENCE,
    choose_id_number,
    fold_chinese,
    fold_name,
    guessed_by_check_digit,
    id_checksum_ok,
    parse_date,
    repair_id_number,
    run_alternatives,
    strip_spaces,
)

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
# (± and + are what the recogniser writes for a digit it cannot make out: 5421321953102±±734)
_ID_RUN = re.compile(r"[0-9A-Za-z|!〇○×乂±+]{15,}")
_LABEL_PREFIX = {
    "name": re.compile(r"^[姓娃性]{0,2}\s*名"),  # 姓姓名: a label read twice
    "sex": re.compile(r"性\s*[别別]"),
    "ethnicity": re.compile(r"[民尺]\s*族"),
    "birth": re.compile(r"^出\s*生"),
    # 址 misread as 上 (s824), but not 住址上海市 with its 址 dropped
    "address": re.compile(r"^[住往佳]\s*(?:[址扯]|上(?!海))"),
    "id_label": re.compile(r"公民身份号码|公民身份号|身份号码|号码"),
}


def _field(value: str | None, rows_or_lines, raw: str | None = None,
           corrections: list[str] | None = None, penalty: float = 1.0) -> ExtractedField:
    lines: list[OcrLine] = []
    for item in rows_or_lines:
        lines.extend(item.lines if isinstance(item, Row) else [item])
    confidence = min((ln.confidence for ln in lines), default=0.0) if value else 0.0
    return ExtractedField(
        value=value,
        confidence=round(confidence * penalty, 4),
        boxes=[ln.polygon for ln in lines],
        raw=raw,
        corrections=corrections or [],
    )


def province_first(address: str) -> tuple[str, str | None]:
    """The address from its province on: a card's address begins with its province
    (GB/T 2260, full or short name), so one or two characters before a province's name
    are what is left of a misread label (址 read as 亲: 亲新疆维吾尔自治区…). Returns the
    address and the correction made, if any.

    >>> province_first("亲新疆维吾尔自治区乌鲁木齐市天山区")
    ('新疆维吾尔自治区乌鲁木齐市天山区', 'dropped 亲 before the province (GB/T 2260)')
    >>> province_first("上海市浦东新区"), province_first("广州市天河区")
    (('上海市浦东新区', None), ('广州市天河区', None))
    """
    names = _province_starts()
    if address.startswith(names):
        return address, None
    for k in (1, 2):
        if address[k:].startswith(names):
            return address[k:], f"dropped {address[:k]} before the province (GB/T 2260)"
    return address, None


def address_start(text: str) -> int:
    """Where the address begins on its first line as read: after its label (住址, or
    what is left of it before a province's name).

    >>> address_start("住址湖南省浦潭市"), address_start("生湖南省浦潭市"), address_start("去司哈尼族")
    (2, 1, 0)
    """
    label = _LABEL_PREFIX["address"].match(text)
    if label:
        return label.end()
    address, dropped = province_first(text)
    return len(text) - len(address) if dropped else 0


def starts_with_province(text: str) -> bool:
    """Whether a line reads as an address: at least six Chinese characters from a
    province's name on (one or two before it are a misread label's).

    >>> starts_with_province("住址西藏自治区昌都地区理"), starts_with_province("广东省")
    (True, False)
    """
    address, _ = province_first(_cjk_only(text))
    return len(address) >= 6 and address.startswith(_province_starts())


@functools.cache
def _province_starts() -> tuple[str, ...]:
    return tuple(form for p in gb11643.provinces() for form in gb11643.province_forms(p))


def _cjk_only(text: str, keep: str = "·") -> str:
    return re.sub(rf"[^{_CJK}{re.escape(keep)}]", "", text)



def _label_boxes_cut(row: Row, rows: list[Row]) -> Row:
    """``row`` without the boxes that lie wholly in the labels' column, left of where
    its value starts: a label misread (姓名 as n名, 住址 as 佳修 and 20) is no part of
    the value. The labels' column is where the lines that read as a label start
    (性别, 出生, 住址, 公民身份号码 on other rows); a box is the label's when it starts
    there and ends before the row's next box begins. A value split into two boxes
    (欧阳 | 华) starts right of the labels and is kept whole.

    >>> def ln(text, x0, x1):
    ...     return OcrLine(text=text, confidence=0.9, polygon=[(x0, 100), (x1, 100), (x1, 140), (x0, 140)])
    >>> rows = [Row([ln("出生", 71, 186)]), Row([ln("住址", 73, 161)])]
    >>> _label_boxes_cut(Row([ln("n名", 68, 155), ln("庄犇涵", 164, 294)]), rows).text
    '庄犇涵'
    >>> _label_boxes_cut(Row([ln("欧阳", 170, 260), ln("华", 268, 310)]), rows).text
    '欧阳华'
    """
    if len(row.lines) < 2:
        return row
    starts = [bbox(ln)[0] for other in rows if other is not row for ln in other.lines
              if any(p.search(strip_spaces(ln.text)) for k, p in _LABEL_PREFIX.items()
                     if k != "name")]
    if not starts:
        return row
    column = sorted(starts)[len(starts) // 2]
    h = max(bbox(ln)[3] - bbox(ln)[1] for ln in row.lines)
    value = next((ln for ln in sorted(row.lines, key=lambda ln: bbox(ln)[0])
                  if bbox(ln)[0] > column + h), None)
    if value is None:
        return row
    vx = bbox(value)[0]
    labels = [ln for ln in row.lines if ln is not value and bbox(ln)[0] <= column + 0.6 * h
              and bbox(ln)[2] <= vx + 0.3 * h and len(_cjk_only(ln.text)) <= 3]
    if not labels:
        return row
    return Row([ln for ln in row.lines if ln not in labels])


def number_in_run(run: str) -> tuple[str, str | None]:
    """The number in a run longer than one: the 18 characters of it that make a valid
    number (GB 11643: check digit, birth date, region), the last such when several. A
    misread label runs on into the number as letters and digits (公民身份号码 read R09:
    R09652122198007307535). Returns the number, or the run as it is when no part of it is
    valid, and the correction made.

    >>> number_in_run("R09652122198007307535")
    ('652122198007307535', 'dropped R09 before the number (a misread label)')
    >>> number_in_run("652122198007307535"), number_in_run("12652122198007307536")
    (('652122198007307535', None), ('12652122198007307536', None))
    """
    if len(run) <= 18:
        return run, None
    valid = [i for i in range(len(run) - 17) if gb11643.is_valid(run[i:i + 18].upper())]
    if not valid:
        return run, None
    at = valid[-1]
    before, after = run[:at], run[at + 18:]
    dropped = " and ".join(part for part in (
        f"{before} before the number (a misread label)" if before else "",
        f"{after} after it" if after else "") if part)
    return run[at:at + 18], f"dropped {dropped}"


def _find_id_row(rows: list[Row]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for i, row in enumerate(rows):
        text = strip_spaces(row.text)
        text = _LABEL_PREFIX["id_label"].sub("", text)
        for m in _ID_RUN.finditer(text):
            run = m.group(0)
            if sum(c.isdigit() for c in run) < 12:
                continue
            if best is None or len(run) >= len(best[1]):
                best = (i, run)
    return best


def extract_id_card_front(lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """name, sex, ethnicity, birth_date, address, id_number from a card front."""
    rows = group_rows(lines)
    out: dict[str, ExtractedField] = {}
    if not rows:
        return out
    width = max(bbox(ln)[2] for ln in lines)

    id_hit = _find_id_row(rows)
    id_index = id_hit[0] if id_hit else next(
        # no number read: its label still ends the rows above it (the address's)
        (i for i, row in enumerate(rows) if re.search("公民身份|身份号码", strip_spaces(row.text))),
        len(rows))
    if id_hit:
        number, trimmed = number_in_run(id_hit[1])
        value, corrections = repair_id_number(number)
        corrections = [trimmed, *corrections] if trimmed else corrections
        penalty = 0.97 if corrections else 1.0
        field = _field(value, [rows[id_hit[0]]], raw=id_hit[1], corrections=corrections,
                       penalty=penalty)
        if guessed_by_check_digit(corrections):
            field.confidence = min(field.confidence, GUESSED_CONFIDENCE)
        out["id_number"] = field

    upper = rows[:id_index]
    texts = [strip_spaces(row.text) for row in upper]
    name_i = next((i for i, t in enumerate(texts[:3]) if _LABEL_PREFIX["name"].search(t)), None)
    sex_i = next((i for i, t in enumerate(texts) if i != name_i and (
        _LABEL_PREFIX["sex"].search(t) or _LABEL_PREFIX["ethnicity"].search(t)
        or re.search(r"[男女]", t[:6]))), None)
    after_sex = (sex_i + 1) if sex_i is not None else 0
    birth_i = next((i for i, t in enumerate(texts) if i >= after_sex and i != name_i and (
        _LABEL_PREFIX["birth"].search(t) or DATE_RE.search(t)
        or re.search(r"\d{4}\s*年", t))), None)
    after_birth = (birth_i + 1) if birth_i is not None else after_sex
    addr_i = next((i for i, t in enumerate(texts) if i >= after_birth - 1 and i not in (
        name_i, sex_i, birth_i) and _LABEL_PREFIX["address"].search(t)), None)
    # Labels are printed in pale ink and sometimes missed: fall back on the order of
    # the rows on every card (name, sex/ethnicity, birth, address, number).
    if name_i is None:
        if sex_i is not None and sex_i >= 1:
            name_i = sex_i - 1
        elif upper and sex_i != 0 and birth_i != 0:
            name_i = 0

    if name_i is not None:
        row = _label_boxes_cut(upper[name_i], rows)
        text = strip_spaces(row.text)
        text = _LABEL_PREFIX["name"].sub("", text, count=1)
        first = strip_spaces(row.lines[0].text)
        label = _LABEL_PREFIX["name"].match(first)
        if (label and len(row.lines) > 1 and len(first) - label.end() == 1
                and bbox(row.lines[0])[2] > bbox(row.lines[1])[0]):
            # The label's box reaches into the value's and read part of its first
            # character again (姓名区 | 欧阳华, 姓名名 | 谷燚焱): the value's box alone.
            text = strip_spaces("".join(ln.text for ln in row.lines[1:]))
        name = fold_name(_cjk_only(text))
        out["name"] = _field(name or None, [row], raw=row.text)

    if sex_i is not None:
        row = upper[sex_i]
        text = fold_chinese(strip_spaces(row.text))
        m = re.search(r"[男女]", text)
        out["sex"] = _field(m.group(0) if m else None, [row], raw=row.text)
        eth = None
        m_eth = _LABEL_PREFIX["ethnicity"].search(text)
        if m_eth:
            eth = _cjk_only(text[m_eth.end():])
        elif m:
            rest = text[m.end():]
            # The label 民族 may be misread; its 族 still marks where the value starts.
            if "族" in rest[:3]:
                rest = rest[rest.index("族") + 1:]
            eth = re.sub(r"^[民族]+", "", _cjk_only(rest))
        if eth:
            eth = re.sub(r"族$", "", eth)
        out["ethnicity"] = _field(eth or None, [row], raw=row.text)

    if birth_i is not None:
        row = upper[birth_i]
        out["birth_date"] = _field(parse_date(row.text), [row], raw=row.text)

    start = addr_i if addr_i is not None else (
        (birth_i + 1) if birth_i is not None else None)
    if start is not None and addr_i is None and birth_i is not None:
        # No address label seen: the address starts on the row after the birth date.
        start = birth_i + 1
    if start is not None and start < len(upper):
        addr_rows = []
        for row in upper[start:]:
            # Lines in the portrait area (right third) are not part of the address.
            kept = [ln for ln in row.lines if bbox(ln)[0] < 0.66 * width]
            if kept:
                addr_rows.append(Row(kept) if addr_rows else _label_boxes_cut(Row(kept), rows))
        parts = []
        for k, row in enumerate(addr_rows):
            text = strip_spaces(row.text)
            if k == 0:
                text = _LABEL_PREFIX["address"].sub("", text, count=1)
            parts.append(text)
        # The recogniser's vocabulary holds a few LaTeX tokens (frac, sqrt...); a run of
        # lower-case letters cannot be part of a printed Chinese address.
        address = re.sub(r"[a-z]{2,}", "", fold_chinese("".join(parts)))
        address = re.sub(r"[^0-9A-Za-z\-#" + _CJK + r"()（）·]", "", address).lstrip("-#·")
        address, dropped = province_first(address)
        out["address"] = _field(address or None, addr_rows, raw=" | ".join(r.text for r in addr_rows),
                                corrections=[dropped] if dropped else None)
    if id_hit:
        _decode_id_number(out, rows[id_hit[0]], id_hit[1])
    return out


#: The confidence a number taken from the recogniser's other candidates keeps at most:
#: below the ID-number review threshold, so a person confirms it.
CANDIDATE_CONFIDENCE = 0.85


def _decode_id_number(out: dict[str, ExtractedField], row: Row, run: str) -> None:
    """When the number as read is not valid (or only its check digit chose a repair),
    take the valid number that the recogniser's own per-character candidates support,
    agreeing with the printed birth date and sex (:func:`ocr.text.choose_id_number`)."""
    field = out["id_number"]
    if id_checksum_ok(field.value or "") and not guessed_by_check_digit(field.corrections):
        return
    if len(run) != 18:
        return
    alternatives = next((a for line in row.lines
                         if (a := run_alternatives(line.text, line.alternatives, run))), None)
    if alternatives is None:
        return
    birth = out.get("birth_date")
    sex = out.get("sex")
    chosen = choose_id_number(alternatives, birth_date=birth.value if birth else None,
                              sex=sex.value if sex else None)
    if chosen is None:
        return
    value, corrections, share = chosen
    if not corrections:
        return
    out["id_number"] = field.model_copy(update={
        "value": value, "corrections": corrections,
        "confidence": round(min(field.confidence, share, CANDIDATE_CONFIDENCE), 4)})


_RANGE_RE = re.compile(
    r"(\d{4}\s*[.\-/·。,，]\s*\d{1,2}\s*[.\-/·。,，]\s*\d{1,2})\s*[-—–~一至_]*\s*"
    r"(\d{4}\s*[.\-/·。,，]\s*\d{1,2}\s*[.\-/·。,，]\s*\d{1,2}|长\s*期|长|期)?"
)


def extract_id_card_back(lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """issuing_authority, valid_from, valid_until from a card back."""
    rows = group_rows(lines)
    out: dict[str, ExtractedField] = {}
    auth_i = valid_i = None
    for i, row in enumerate(rows):
        text = strip_spaces(row.text)
        if auth_i is None and re.search(r"签发|机关", text):
            auth_i = i
        if (valid_i is None and (re.search(r"有效|期限", text) or _RANGE_RE.search(text))
                and re.search(r"\d{4}", text)):
            valid_i = i
    if auth_i is None:
        # The pale label lost (a blurred photo): the authority is still the row that
        # names a public security bureau, above the validity.
        auth_i = next((i for i, row in enumerate(rows)
                       if (valid_i is None or i < valid_i)
                       and re.search(r"公安|分局|安局", strip_spaces(row.text))), None)
    if auth_i is not None:
        end = valid_i if valid_i is not None and valid_i > auth_i else auth_i + 1
        used = rows[auth_i:end]
        text = "".join(strip_spaces(r.text) for r in used)
        text = re.sub(r"^.*?(签发机关|机关|签发)", "", text, count=1)
        authority = _after_misread_label(fold_chinese(_cjk_only(text)))
        out["issuing_authority"] = _field(authority or None, used, raw=text)
    if valid_i is not None:
        row = rows[valid_i]
        text = fold_chinese(strip_spaces(row.text))
        text = re.sub(r"^.*?(有效期限|期限|有效)", "", text, count=1)
        m = _RANGE_RE.search(text)
        digits = re.sub(r"\D", "", text)
        if len(digits) in (16, 8) and not (m and parse_date(m.group(1)) and (
                m.group(2) and (parse_date(m.group(2)) or "长" in m.group(2) or "期" in m.group(2)))):
            # Separators lost by OCR (2018.0821-长期): read the digits as YYYYMMDD pairs.
            start_date = parse_date(digits[:8])
            end_date = parse_date(digits[8:16]) if len(digits) == 16 else (
                "长期" if re.search("长|期", text) else None)
            if start_date:
                out["valid_from"] = _field(start_date, [row], raw=row.text)
                out["valid_until"] = _field(end_date, [row], raw=row.text)
                return out
        if m:
            out["valid_from"] = _field(parse_date(m.group(1)), [row], raw=row.text,
                                       penalty=_padding_penalty(m.group(1)))
            until_raw = m.group(2) or ""
            if "长" in until_raw or "期" in until_raw or "长期" in text:
                until = "长期"
            else:
                until = parse_date(until_raw) if until_raw else None
            out["valid_until"] = _field(until, [row], raw=row.text,
                                        penalty=_padding_penalty(until_raw) if until else 1.0)
    return out


#: A card back prints every month and day with two digits (2023.07.31): one read with
#: one (2023.07.3) lost a digit, and its reading is doubted (a person sees it).
SHORT_PART_PENALTY = 0.5


def _padding_penalty(date_text: str) -> float:
    """:data:`SHORT_PART_PENALTY` for a back's date read with a one-digit month or day.

    >>> _padding_penalty("2023.07.3"), _padding_penalty("2023.07.31")
    (0.5, 1.0)
    """
    parts = re.findall(r"\d+", date_text)
    return SHORT_PART_PENALTY if len(parts) == 3 and min(map(len, parts[1:])) < 2 else 1.0


def _after_misread_label(authority: str) -> str:
    """An authority with its label 签发机关 misread before it (答发权关, 警发机美) dropped:
    four characters sharing two with the label, or two to four sharing one before a
    GB/T 2260 place name.

    >>> _after_misread_label("答发权关科尔沁右翼中旗公安局"), _after_misread_label("警发机美宁渡市公安局")
    ('科尔沁右翼中旗公安局', '宁渡市公安局')
    >>> _after_misread_label("发展县公安局"), _after_misread_label("关岭县公安局")
    ('发展县公安局', '关岭县公安局')
    """
    names = gb11643.place_names()
    for k in (4, 3, 2):
        head, rest = authority[:k], authority[k:]
        if len(rest) < 4:
            continue
        shared = len(set(head) & set("签发机关"))
        if (k == 4 and shared >= 2) or (shared and any(
                rest[:n] in names for n in range(2, min(len(rest), 12) + 1))):
            return rest
    return authority


_TEMPORARY_TITLE = re.compile(r"临时|共和国|身份证$")


def extract_id_card_temporary(lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """A temporary card (临时居民身份证): the front's fields (name, sex, ethnicity,
    birth_date, address, id_number) and its validity (valid_from, valid_until), all on
    one side under the title."""
    rows = group_rows(lines)
    title = [ln for row in rows[:2] for ln in row.lines
             if _TEMPORARY_TITLE.search(strip_spaces(ln.text))]
    validity = [ln for row in rows for ln in row.lines
                if re.search(r"有效|期限", strip_spaces(ln.text))
                or _RANGE_RE.search(strip_spaces(ln.text)) and re.search(
                    r"\d{4}\D+\d{1,2}\D+\d{1,2}\D+\d{4}", strip_spaces(ln.text))]
    skip = {id(ln) for ln in title + validity}
    out = extract_id_card_front([ln for ln in lines if id(ln) not in skip])
    if validity:
        back = extract_id_card_back(validity)
        for name in ("valid_from", "valid_until"):
            if name in back:
                out[name] = back[name]
    return out
