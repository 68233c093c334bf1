"""Bank card extractor (front side): card number, issuing bank, holder's name.

Read from the text and the rows it forms, not from the positions of one template:

* ``card_number``: the digit groups of one row joined (the recogniser often gives each
  group, or a few, as a line of its own), among the row's runs of 16 to 19 digits the one
  that passes the Luhn check; a run that fails it is repaired from the recogniser's own
  candidates for its characters when exactly one change of one digit makes it pass and
  that reading is clearly likelier than any other (never a guess the recogniser did
  not propose). A number that no candidate makes valid is returned as read, with a low
  confidence (the rule ``bank_card.luhn`` sends it to a person).
* ``bank_name``: the printed name, matched against a synonym table held as data
  (``ocr/bank_names.json``: 工商银行 / ICBC / INDUSTRIAL AND COMMERCIAL BANK OF CHINA ->
  中国工商银行), Chinese names first, then English names and initials, then a half-read
  name alone on its line, then a product name only one bank issues (龙卡, 牡丹灵通卡 ...).
* ``card_holder``: a line of 2-4 Chinese characters, or of two or three words in capital
  Latin letters (pinyin), that is not the bank's name, a card product, a label or a
  mark; None when the card prints no name.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from stdnum import luhn

from domain.models import ExtractedField, OcrLine

from ..layout import Row, bbox, group_rows
from ..text import GUESSED_CONFIDENCE, fold_chinese

BANK_NAMES_FILE = Path(__file__).resolve().parents[1] / "bank_names.json"

# Letters the recogniser returns for digits in embossed numbers: tried only inside a
# token that is mostly digits, and kept only when the Luhn check then passes.
_LOOKALIKES = {"O": "0", "o": "0", "D": "0", "Q": "0", "〇": "0", "I": "1", "l": "1",
               "|": "1", "L": "1", "!": "1", "Z": "2", "z": "2", "S": "5", "s": "5",
               "G": "6", "b": "6", "T": "7", "B": "8", "g": "9", "q": "9"}
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"

#: Words on a card that are never the holder's name.
_NOT_NAMES = {
    "借记卡", "信用卡", "储蓄卡", "贷记卡", "准贷记卡", "银联", "有效期", "有效期至", "金卡",
    "白金卡", "钻石卡", "普卡", "龙卡", "一卡通", "闪付", "芯片卡", "社保卡", "理财卡",
    "储蓄", "借记", "信用", "银行", "持卡人", "签名", "卡号", "中国",
}
_NOT_LATIN = {
    "VALID", "THRU", "FROM", "GOOD", "MONTH", "YEAR", "UNIONPAY", "UNION", "PAY", "BANK",
    "DEBIT", "CREDIT", "CARD", "CHINA", "PLATINUM", "GOLD", "CLASSIC", "QUICKPASS", "VISA",
    "MASTERCARD", "EXPIRES", "END", "MEMBER", "SINCE", "CO", "LTD", "OF", "AND", "THE",
    "ATM", "IC", "CUP", "JCB", "AMEX", "DINERS", "WORLD", "SIGNATURE", "INFINITE", "PREMIUM",
}
_PRODUCT_RE = re.compile(r"(卡|卡通|信用|借记|储蓄)$")


@dataclass(frozen=True)
class BankTable:
    """The synonym table: text -> normal form, per kind of match."""

    names: dict[str, str]
    english: dict[str, str]
    initials: dict[str, str]
    stems: dict[str, str]
    products: dict[str, str]
    #: English names without BANK, OF, CO., LTD. (CHINAMINSHENG, HUAXIA ...)
    english_cores: tuple[str, ...] = ()

    @property
    def normal_forms(self) -> frozenset[str]:
        return frozenset(self.names.values())


def _squash(text: str) -> str:
    """Upper case, NFKC, spaces and punctuation dropped: for English names."""
    return re.sub(r"[^0-9A-Z]", "", unicodedata.normalize("NFKC", text).upper())


@functools.lru_cache(maxsize=4)
def bank_table(path: str | None = None) -> BankTable:
    data = json.loads(Path(path or BANK_NAMES_FILE).read_text("utf-8"))
    names, english, initials, stems, products = {}, {}, {}, {}, {}
    cores: set[str] = set()
    for normal, entry in data["banks"].items():
        for n in [normal, *entry.get("names", [])]:
            names[fold_chinese(n)] = normal
        for e in entry.get("english", []):
            english[_squash(e)] = normal
            words = re.findall(r"[A-Za-z]+", e.upper())
            cores.add("".join(w for w in words if w not in ("BANK", "OF", "CO", "LTD")))
        for i in entry.get("initials", []):
            initials[i.upper()] = normal
        for s in entry.get("stems", []):
            stems[fold_chinese(s)] = normal
        for p in entry.get("products", []):
            products[fold_chinese(p)] = normal
    return BankTable(names, english, initials, stems, products, tuple(sorted(cores - {""})))


def _one_off(a: str, b: str) -> bool:
    """``a`` is ``b`` with one character misread or dropped (for names of 4+ characters)."""
    if len(b) < 4:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    if len(a) == len(b) - 1:
        return any(b[:i] + b[i + 1:] == a for i in range(len(b)))
    return False


def find_bank(texts: list[str], table: BankTable | None = None) -> tuple[str, int, float] | None:
    """The bank named in ``texts`` (one text per line or row): (normal form, index of the
    text, strength 1.0 name, 0.9 English or initials, 0.8 one character off, 0.7 a
    half-read stem alone on its line, 0.5 a product only that bank issues), or None."""
    table = table or bank_table()
    folded = [fold_chinese(re.sub(r"\s+", "", t)) for t in texts]
    best: tuple[str, int, float, int] | None = None

    def offer(normal: str, i: int, strength: float, length: int) -> None:
        nonlocal best
        if best is None or (strength, length) > (best[2], best[3]):
            best = (normal, i, strength, length)

    for i, t in enumerate(folded):
        for name, normal in table.names.items():
            if name in t:
                offer(normal, i, 1.0, len(name))
    if best is None:
        for i, t in enumerate(texts):
            sq = _squash(t)
            for eng, normal in table.english.items():
                if len(eng) >= 6 and eng in sq:
                    offer(normal, i, 0.9, len(eng))
            for word in re.findall(r"[A-Za-z]+", unicodedata.normalize("NFKC", t)):
                if word.upper() in table.initials and word.isupper():
                    offer(table.initials[word.upper()], i, 0.9, len(word))
    if best is None:
        # One character misread or lost: only when it names one bank (业银行 is 兴业银行
        # or 农业银行 with a character lost).
        hits: dict[str, tuple[int, int]] = {}
        for i, t in enumerate(folded):
            cjk = re.sub(rf"[^{_CJK}]", "", t)
            for name, normal in table.names.items():
                for k in range(len(cjk) - len(name) + 2):
                    for size in (len(name), len(name) - 1):
                        if (k + size <= len(cjk) and _one_off(cjk[k:k + size], name)
                                and (normal not in hits or len(name) > hits[normal][1])):
                            hits[normal] = (i, len(name))
        if len(hits) == 1:
            normal, (i, length) = next(iter(hits.items()))
            offer(normal, i, 0.8, length)
    if best is None:
        for i, t in enumerate(folded):
            cjk = re.sub(rf"[^{_CJK}]", "", t)
            for stem, normal in table.stems.items():
                if stem in cjk and len(cjk) <= len(stem) + 2:
                    offer(normal, i, 0.7, len(stem))
    if best is None:
        for i, t in enumerate(folded):
            for product, normal in table.products.items():
                if product in t:
                    offer(normal, i, 0.5, len(product))
    return None if best is None else best[:3]


# --------------------------------------------------------------------------- number


@dataclass
class _Token:
    digits: str
    alternatives: list[list[tuple[str, float]]]
    line: OcrLine
    mapped: int  # look-alike letters mapped to digits


def _line_tokens(line: OcrLine) -> list[_Token | None]:
    """The line split at spaces: digit groups (None for anything else, which breaks a
    run). A group may hold a look-alike letter or two (O, I, B ...) among its digits."""
    text = unicodedata.normalize("NFKC", line.text)
    alts = line.alternatives if len(line.alternatives) == len(line.text) else []
    out: list[_Token | None] = []
    for m in re.finditer(r"\S+", text):
        tok = m.group(0)
        if "/" in tok or "-" in tok and len(tok) <= 6:
            out.append(None)
            continue
        core = tok.strip(".,:;'\"`_")
        n_digits = sum(c.isdigit() for c in core)
        if not core or n_digits < max(1, len(core) - 2) or n_digits < 0.6 * len(core):
            out.append(None)
            continue
        if not all(c.isdigit() or c in _LOOKALIKES for c in core):
            out.append(None)
            continue
        start = m.start() + tok.index(core)
        digits = "".join(_LOOKALIKES.get(c, c) for c in core)
        a = alts[start:start + len(core)] if alts else [[(c, 1.0)] for c in digits]
        out.append(_Token(digits, a, line, sum(not c.isdigit() for c in core)))
    return out


@dataclass
class _Candidate:
    number: str
    tokens: list[_Token]
    height: float  # the median height of its lines
    complete: bool  # every digit group of its run, none left out
    trimmed: bool = False  # characters read twice by overlapping boxes dropped

    @property
    def lines(self) -> list[OcrLine]:
        seen: list[OcrLine] = []
        for t in self.tokens:
            if all(t.line is not s for s in seen):
                seen.append(t.line)
        return seen


def _trimmed(row: Row) -> list[tuple[OcrLine, int]]:
    """Each line of the row with how many characters it keeps: where two boxes overlap,
    the characters both read are kept once (as ``Row.text`` does)."""
    out = []
    for k, line in enumerate(row.lines):
        keep = len(line.text)
        if k + 1 < len(row.lines) and line.text:
            x0, _, x1, _ = bbox(line)
            char_w = max((x1 - x0) / len(line.text), 1.0)
            overlap = x1 - bbox(row.lines[k + 1])[0]
            nxt = row.lines[k + 1].text
            if overlap > 0.5 * char_w:
                keep = max(1, len(line.text) - round(overlap / char_w))
            elif overlap > -0.3 * char_w and nxt and line.text[-1] == nxt[0] and line.text[-1].isdigit():
                keep = len(line.text) - 1
        out.append((line, keep))
    return out


def _runs(rows: list[Row]) -> list[_Candidate]:
    """Every run of consecutive digit groups in a row, and its sub-runs, of 15-20 digits."""
    out: list[_Candidate] = []
    for row in rows:
        trimmed = _trimmed(row)
        out.extend(_row_runs([(ln, len(ln.text)) for ln, _ in trimmed], False))
        if any(keep < len(ln.text) for ln, keep in trimmed):
            out.extend(_row_runs(trimmed, True))
    return out


def _row_runs(kept: list[tuple[OcrLine, int]], trimmed: bool) -> list[_Candidate]:
    out: list[_Candidate] = []
    tokens: list[_Token | None] = []
    for line, keep in kept:
        if keep < len(line.text):
            line = line.model_copy(update={"text": line.text[:keep],
                                           "alternatives": line.alternatives[:keep]})
        tokens.extend(_line_tokens(line))
    groups: list[list[_Token]] = [[]]
    for t in tokens:
        if t is None:
            groups.append([])
        else:
            groups[-1].append(t)
    for g in groups:
        for i, j in itertools.combinations(range(len(g) + 1), 2):
            sub = g[i:j]
            number = "".join(t.digits for t in sub)
            if 15 <= len(number) <= 20:
                hs = sorted(bbox(t.line)[3] - bbox(t.line)[1] for t in sub)
                out.append(_Candidate(number, sub, hs[len(hs) // 2], i == 0 and j == len(g),
                                      trimmed))
    return out


def choose_card_number(alternatives: list[list[tuple[str, float]]], margin: float = 4.0
                       ) -> tuple[str, list[str]] | None:
    """The Luhn-valid reading the recogniser's candidates support best, changing at most
    one digit to another candidate of its position, when it is ``margin`` times likelier
    than the next valid reading; None otherwise.

    >>> alts = [[(c, 0.99)] for c in "621700000000000001"] + [[("8", 0.6), ("2", 0.3)]]
    >>> choose_card_number(alts)
    ('6217000000000000012', ['8->2 at 19 (recogniser candidate, p=0.30)'])
    """
    per_pos: list[dict[str, float]] = []
    for cands in alternatives:
        d: dict[str, float] = {}
        for ch, p in cands:
            ch = _LOOKALIKES.get(unicodedata.normalize("NFKC", ch), ch)
            if ch.isdigit():
                d[ch] = max(d.get(ch, 0.0), p)
        if not d:
            return None
        per_pos.append(d)
    first = [max(d.items(), key=lambda kv: kv[1]) for d in per_pos]
    base = "".join(ch for ch, _ in first)
    if luhn.is_valid(base):
        return base, []
    readings: list[tuple[float, str, str]] = []
    for i, d in enumerate(per_pos):
        for ch, p in d.items():
            if ch == first[i][0]:
                continue
            trial = base[:i] + ch + base[i + 1:]
            if luhn.is_valid(trial):
                readings.append((p / max(first[i][1], 1e-9), trial,
                                 f"{base[i]}->{ch} at {i + 1} (recogniser candidate, p={p:.2f})"))
    if not readings:
        return None
    readings.sort(key=lambda r: -r[0])
    if len(readings) > 1 and readings[0][0] < margin * readings[1][0]:
        return None
    if readings[0][0] < 0.02:  # a candidate the recogniser all but ruled out
        return None
    return readings[0][1], [readings[0][2]]


def _number_field(rows: list[Row]) -> ExtractedField | None:
    cands = _runs(rows)
    if not cands:
        return None
    valid = [c for c in cands if 16 <= len(c.number) <= 19 and luhn.is_valid(c.number)
             and c.number[0] != "0"]

    def rank(c: _Candidate):
        return (c.number.startswith("62"), c.complete, not c.trimmed, round(c.height / 4),
                -sum(t.mapped for t in c.tokens), len(c.number))

    if valid:
        best = max(valid, key=rank)
        conf = min(ln.confidence for ln in best.lines)
        mapped = sum(t.mapped for t in best.tokens)
        return ExtractedField(value=best.number, confidence=round(conf * (0.97 if mapped else 1.0), 4),
                              boxes=[ln.polygon for ln in best.lines], raw=best.number,
                              corrections=[f"{mapped} look-alike letter(s) read as digits"] if mapped else [])
    # Repair one digit from the recogniser's own candidates.
    repaired = []
    for c in cands:
        if not 16 <= len(c.number) <= 19:
            continue
        alts = [a for t in c.tokens for a in t.alternatives]
        if len(alts) != len(c.number):
            continue
        got = choose_card_number(alts)
        if got is not None and got[0][0] != "0":
            repaired.append((c, got))
    if repaired:
        c, (number, corrections) = max(repaired, key=lambda r: rank(r[0]))
        conf = min(ln.confidence for ln in c.lines) * 0.9
        return ExtractedField(value=number, confidence=round(min(conf, 0.85), 4),
                              boxes=[ln.polygon for ln in c.lines], raw=c.number,
                              corrections=corrections)
    # As read: the longest plausible run, for a person to check.
    plausible = [c for c in cands if 16 <= len(c.number) <= 19] or cands
    c = max(plausible, key=rank)
    return ExtractedField(value=c.number, confidence=round(min(GUESSED_CONFIDENCE, min(
        ln.confidence for ln in c.lines) * 0.5), 4), boxes=[ln.polygon for ln in c.lines],
        raw=c.number, corrections=["Luhn check fails as read"])


# --------------------------------------------------------------------------- holder


def _clusters(row: Row) -> list[list[OcrLine]]:
    """The row's lines in groups of neighbours: a gap wider than about two characters of
    the line's height starts a new group (a name and a mark far apart on one row)."""
    out: list[list[OcrLine]] = []
    for line in row.lines:
        if out:
            prev = out[-1][-1]
            h = max(bbox(prev)[3] - bbox(prev)[1], bbox(line)[3] - bbox(line)[1], 1.0)
            if bbox(line)[0] - bbox(prev)[2] <= 2.0 * h:
                out[-1].append(line)
                continue
        out.append([line])
    return out


def _words(lines: list[OcrLine]) -> str:
    return " ".join(unicodedata.normalize("NFKC", ln.text).strip() for ln in lines)


def _holder_value(words: str, table: BankTable) -> tuple[str, float] | None:
    """The holder's name if ``words`` reads as one: (value, weight)."""
    compact = fold_chinese(re.sub(r"\s+", "", words))
    cjk = re.sub(rf"[^{_CJK}·]", "", compact)
    if cjk and len(cjk) >= len(compact) - 1 and 2 <= len(cjk.replace("·", "")) <= 4:
        if (cjk in _NOT_NAMES or "银行" in cjk or "银联" in cjk or _PRODUCT_RE.search(cjk)
                or any(s in cjk for s in ("有效", "卡号", "持卡", "签名"))
                or (len(cjk) == 2 and (cjk[0] == "银" or cjk[1] == "联"))  # 银联 misread
                or cjk in table.stems or cjk in table.names or cjk in table.products):
            return None
        return cjk, 1.0
    latin = re.sub(r"[^A-Za-z ]", " ", words).split()
    if (2 <= len(latin) <= 4 and all(w.isupper() and len(w) >= 2 for w in latin)
            and not any(w in _NOT_LATIN for w in latin)
            and not re.search(r"[0-9/]", words)
            and sum(len(w) for w in latin) >= len(re.sub(r"\s", "", words)) - 1):
        sq = "".join(latin)
        if any(e in sq or sq in e for e in table.english) or any(
                difflib.SequenceMatcher(None, sq, e).ratio() >= 0.75
                for e in table.english_cores if len(e) >= 10  # not a name like NANJING
        ) or any(w in table.initials for w in latin):
            return None  # an English bank name, read whole, in part or misread
        return " ".join(latin), 0.98
    return None


def _holder(rows: list[Row], table: BankTable, skip: set[int]) -> ExtractedField | None:
    cands: list[tuple[float, str, list[OcrLine]]] = []
    for row in rows:
        for cluster in _clusters(row):
            if any(id(ln) in skip for ln in cluster):
                continue
            got = _holder_value(_words(cluster), table)
            if got is not None:
                cands.append((min(ln.confidence for ln in cluster) * got[1], got[0], cluster))
    if not cands:
        return None
    conf, value, cluster = max(cands, key=lambda c: c[0])
    if len(cands) > 1:
        conf *= 0.8
    return ExtractedField(value=value, confidence=round(conf, 4),
                          boxes=[ln.polygon for ln in cluster], raw=_words(cluster))


# --------------------------------------------------------------------------- entry


def extract_bank_card(lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """card_number, bank_name, card_holder from a bank card's front."""
    out: dict[str, ExtractedField] = {}
    if not lines:
        return out
    rows = group_rows(lines)
    table = bank_table()
    number = _number_field(rows)
    if number is not None:
        out["card_number"] = number
    texts = [ln.text for ln in lines]
    found = find_bank(texts, table)
    skip: set[int] = {id(ln) for ln in rows_lines(out.get("card_number"), lines)}
    if found is not None:
        normal, i, strength = found
        out["bank_name"] = ExtractedField(value=normal, confidence=round(lines[i].confidence * (
            1.0 if strength >= 0.9 else strength), 4), boxes=[lines[i].polygon], raw=lines[i].text)
        skip.add(id(lines[i]))
    holder = _holder(rows, table, skip)
    if holder is not None:
        out["card_holder"] = holder
    return out


def rows_lines(field: ExtractedField | None, lines: list[OcrLine]) -> list[OcrLine]:
    """The lines a field was read from (by their boxes)."""
    if field is None:
        return []
    return [ln for ln in lines if ln.polygon in field.boxes]


def number_evidence(lines: list[OcrLine]) -> int:
    """For classification: 2 when a row holds a Luhn-valid 16-19 digit run (groups
    joined), 1 when it holds a 16-19 digit run that fails the check, else 0."""
    cands = [c for c in _runs(group_rows(lines)) if 16 <= len(c.number) <= 19]
    if any(luhn.is_valid(c.number) for c in cands):
        return 2
    return 1 if cands else 0
