"""Text post-processing: fold traditional/variant characters, repair OCR confusions."""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

from domain import gb11643

_ID18_RE = re.compile(r"[0-9]{17}[0-9X]")

# Characters PP-OCR returns for digits in a printed ID number. Letters never appear in
# the first 17 positions, so mapping them is safe to *try*; it is kept only when the
# check digit then agrees.
_DIGIT_LOOKALIKES = {
    "O": "0", "o": "0", "D": "0", "Q": "0", "U": "0", "〇": "0", "○": "0",
    "I": "1", "l": "1", "i": "1", "|": "1", "L": "1", "!": "1", "J": "1",
    "Z": "2", "z": "2",
    "S": "5", "s": "5",
    "G": "6", "b": "6",
    "T": "7",
    "B": "8",
    "g": "9", "q": "9",
}
_X_LOOKALIKES = {"x": "X", "×": "X", "K": "X", "k": "X", "Y": "X", "乂": "X", "メ": "X"}


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def fold_chinese(text: str) -> str:
    """Fold traditional and variant characters to the simplified forms printed on
    mainland documents (OpenCC t2s), and full-width ASCII to half-width.

    >>> fold_chinese("漢 叄 瑤")
    '汉 叁 瑶'
    >>> fold_chinese("温頔")
    '温頔'
    """
    text = unicodedata.normalize("NFKC", text)
    folded = _t2s().convert(text)
    if len(folded) != len(text):
        return folded
    # Keep a character whose simplified form lies outside the Basic Multilingual Plane
    # (頔 -> U+2CC56): GBK-era core systems cannot store those, and cards print both.
    return "".join(o if ord(f) > 0xFFFF else f for o, f in zip(text, folded, strict=True))


def _mainland(char: str) -> bool:
    """A character of GB 2312, the set mainland names are written in."""
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=1)
def _jp2t():
    import opencc

    return opencc.OpenCC("jp2t")


def _japanese_form(char: str) -> str:
    """The mainland (GB 2312) character a Japanese form stands for (麹 for 麴), or
    ``char`` itself."""
    if _mainland(char):
        return char
    full = _jp2t().convert(char)
    if len(full) != 1 or full == char:
        return char
    mainland = full if _mainland(full) else fold_chinese(full)
    return mainland if len(mainland) == 1 and _mainland(mainland) else char


def fold_name(text: str) -> str:
    """A person's name folded as :func:`fold_chinese` folds, except the characters that
    mainland names are written with (GB 2312): OpenCC takes 麴 and 於 for traditional
    forms of 曲 and 于, but as surnames they are printed as they are. A traditional form
    the recogniser writes for a simplified one (禎 for 祯) is outside GB 2312 and is
    folded; so is a Japanese form it writes for a mainland one (麹 for the surname 麴).

    >>> fold_name("麴禎"), fold_chinese("麴禎"), fold_name("麹红")
    ('麴祯', '曲祯', '麴红')
    """
    text = unicodedata.normalize("NFKC", text)
    folded = fold_chinese(text)
    if len(folded) != len(text):
        return folded
    return "".join(o if o != f and _mainland(o) else _japanese_form(f)
                   for o, f in zip(text, folded, strict=True))


def strip_spaces(text: str) -> str:
    return re.sub(r"\s+", "", text)


def id_checksum_ok(number: str) -> bool:
    """True for 17 digits followed by their GB 11643 check character."""
    return bool(_ID18_RE.fullmatch(number)) and gb11643.calc_check_digit(number) == number[17]


#: Marks a correction that only the check digit chose: another digit would do as well for
#: the eye, so such a value must be confirmed by a person (:func:`guessed_by_check_digit`).
BY_CHECK_DIGIT = " (by check digit)"
#: The confidence a value chosen by its check digit alone keeps at most: below every
#: review threshold, so it never goes straight through.
GUESSED_CONFIDENCE = 0.5


def guessed_by_check_digit(corrections: list[str]) -> bool:
    """Whether a repair changed a digit that only the check digit chose.

    >>> guessed_by_check_digit(repair_id_number("110105194912310028")[1])
    True
    >>> guessed_by_check_digit(repair_id_number("11O1051949123100ZX")[1])
    False
    """
    return any(c.endswith(BY_CHECK_DIGIT) for c in corrections)


def repair_id_number(raw: str) -> tuple[str, list[str]]:
    """The 18-character ID number read from OCR text, repaired only when the repair
    makes the check digit right. Returns the value and a list of corrections made.

    Letters read for digits (O, Z, l ...) are mapped by their shape; the check digit only
    confirms them. A digit swapped for another (8 for X, 3 for 8) is chosen by the check
    digit alone: one in eleven wrong numbers passes any check, so such a correction is
    marked (:data:`BY_CHECK_DIGIT`) and the extractors keep the value below every review
    threshold.

    >>> repair_id_number("11010519491231002x")
    ('11010519491231002X', ['x->X at 18'])
    >>> repair_id_number("110105194912310028")
    ('11010519491231002X', ['8->X at 18 (by check digit)'])
    >>> repair_id_number("11O1051949123100ZX")
    ('11010519491231002X', ['O->0 at 3', 'Z->2 at 17'])
    >>> repair_id_number("110105194912310021")  # ambiguous: left as read
    ('110105194912310021', [])
    """
    text = strip_spaces(unicodedata.normalize("NFKC", raw))
    text = re.sub(r"[^0-9A-Za-z|!〇○×乂メ±+]", "", text)
    if id_checksum_ok(text):
        return text, []
    if len(text) != 18:
        return text.upper(), []
    candidate = list(text)
    corrections: list[str] = []
    for pos, ch in enumerate(candidate[:17]):
        if ch in _DIGIT_LOOKALIKES:
            candidate[pos] = _DIGIT_LOOKALIKES[ch]
            corrections.append(f"{ch}->{candidate[pos]} at {pos + 1}")
    last = candidate[17]
    if last in _X_LOOKALIKES:
        candidate[17] = "X"
        corrections.append(f"{last}->X at 18")
    elif last in _DIGIT_LOOKALIKES:
        candidate[17] = _DIGIT_LOOKALIKES[last]
        corrections.append(f"{last}->{candidate[17]} at 18")
    joined = "".join(candidate)
    if id_checksum_ok(joined):
        return joined, corrections
    if not _ID18_RE.fullmatch(joined):
        return text.upper(), []
    # The check character X printed in OCR-B is most often read as 8 (or the reverse).
    if joined[17] in "8X":
        trial = joined[:17] + ("X" if joined[17] == "8" else "8")
        if id_checksum_ok(trial):
            return trial, corrections + [f"{joined[17]}->{trial[17]} at 18{BY_CHECK_DIGIT}"]
    # No single digit is swapped for another to make the check digit right: in a
    # simulation of 50,000 numbers with one look-alike digit each, that restored 1.6% and
    # made 1.8% into another valid number (1.1% also passing the birth-date and sex
    # rules). The number goes to a person as read, its check-digit rule failing.
    return text.upper(), []


def _digit_candidates(cands: list[tuple[str, float]], last: bool) -> dict[str, float]:
    """A character's candidates as ID-number characters: look-alike letters mapped to
    digits (X allowed only last), others dropped; the best probability per character."""
    out: dict[str, float] = {}
    for ch, p in cands:
        ch = unicodedata.normalize("NFKC", ch)
        if last and ch in _X_LOOKALIKES:
            ch = "X"
        ch = _DIGIT_LOOKALIKES.get(ch, ch)
        if ch.isdigit() or (last and ch == "X"):
            out[ch] = max(out.get(ch, 0.0), p)
    return out


def choose_id_number(alternatives: list[list[tuple[str, float]]], *,
                     birth_date: str | None = None, sex: str | None = None,
                     max_changes: int = 2, margin: float = 4.0
                     ) -> tuple[str, list[str], float] | None:
    """The 18-character ID number the recogniser's own candidates support best, among
    those that are valid GB 11643 numbers (check digit, a real birth date, a known
    province) and agree with the card's printed birth date and sex when given.

    ``alternatives``: per character, the recogniser's candidates with probabilities, the
    chosen one first. At most ``max_changes`` characters take another candidate, and the
    winner must be ``margin`` times likelier than the next valid reading; otherwise None
    (nothing is invented: only characters the recogniser proposed are used). Returns the
    number, the corrections (each says which candidate it took), and the share of the
    valid readings' likelihood that the winner holds.

    >>> alts = [[(c, 0.99)] for c in "11010519491231002"] + [[("8", 0.6), ("X", 0.35)]]
    >>> choose_id_number(alts)
    ('11010519491231002X', ['8->X at 18 (recogniser candidate, p=0.35)'], 1.0)
    """
    if len(alternatives) != 18:
        return None
    per_pos = [_digit_candidates(c, i == 17) for i, c in enumerate(alternatives)]
    if any(not c for c in per_pos):
        return None
    first = [max(c.items(), key=lambda kv: kv[1]) for c in per_pos]
    base = "".join(ch for ch, _ in first)
    options = [(i, ch, p / max(first[i][1], 1e-9)) for i, c in enumerate(per_pos)
               for ch, p in c.items() if ch != first[i][0]]
    readings: list[tuple[float, str, list[tuple[int, str, float]]]] = []

    def consider(changes: list[tuple[int, str, float]]) -> None:
        chars = list(base)
        ratio = 1.0
        for i, ch, r in changes:
            chars[i] = ch
            ratio *= r
        number = "".join(chars)
        if not _valid_id(number, birth_date, sex):
            return
        readings.append((ratio, number, changes))

    consider([])
    for k in range(1, max_changes + 1):
        for combo in itertools.combinations(options, k):
            if len({i for i, _, _ in combo}) == k:
                consider(list(combo))
    if not readings:
        return None
    readings.sort(key=lambda r: -r[0])
    best = readings[0]
    if len(readings) > 1 and best[0] < margin * readings[1][0]:
        return None
    total = sum(r[0] for r in readings)
    corrections = [f"{base[i]}->{ch} at {i + 1} (recogniser candidate, "
                   f"p={dict(per_pos[i].items())[ch]:.2f})" for i, ch, _ in best[2]]
    return best[1], corrections, round(best[0] / total, 4)


def run_alternatives(text: str, alternatives: list[list[tuple[str, float]]], run: str
                     ) -> list[list[tuple[str, float]]] | None:
    """The per-character candidates of `run` where it occurs in `text` (spaces ignored);
    None when the text has no candidates or does not hold the run.

    >>> run_alternatives("ab c", [[("a", .9)], [("b", .8)], [(" ", .9)], [("c", .7)]], "bc")
    [[('b', 0.8)], [('c', 0.7)]]
    """
    if len(alternatives) != len(text):
        return None
    kept = [(ch, alts) for ch, alts in zip(text, alternatives, strict=True)
            if not ch.isspace()]
    at = "".join(ch for ch, _ in kept).find(run)
    if at < 0:
        return None
    return [alts for _, alts in kept[at:at + len(run)]]


def _valid_id(number: str, birth_date: str | None, sex: str | None) -> bool:
    try:
        gb11643.validate(number)
    except gb11643.ValidationError:
        return False
    if birth_date and gb11643.get_birth_date(number).isoformat() != birth_date:
        return False
    return not (sex and gb11643.get_sex(number) != sex)


DATE_RE = re.compile(r"(\d{4})\s*[年.\-/·。,，]\s*(\d{1,2})\s*[月.\-/·。,，]\s*(\d{1,2})\s*日?")


def parse_date(text: str) -> str | None:
    """An ISO date from 2024年5月3日, 2024-05-03, 2024.05.03 or 20240503, else None.

    >>> parse_date("1990 年 3 月 7 日")
    '1990-03-07'
    >>> parse_date("2015.03.04")
    '2015-03-04'
    """
    import datetime as dt

    text = unicodedata.normalize("NFKC", text)
    m = DATE_RE.search(text)
    if m:
        y, mo, d = (int(g) for g in m.groups())
    else:
        m = re.search(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)", text)
        if not m:
            return None
        y, mo, d = (int(g) for g in m.groups())
    try:
        return dt.date(y, mo, d).isoformat()
    except ValueError:
        return None
