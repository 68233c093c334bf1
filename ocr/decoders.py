"""Constraints as decoders: where a field's value breaks what is known of it, take the
reading the recogniser's own per-character candidates support that keeps it.

What is known: an ethnicity is one of the 56 groups (``domain.ethnic_groups``); an amount
written in figures and in capitals is one amount (``domain.cn_amount``); a date exists;
a Han name begins with a surname (``domain.surnames``), decided only for a doubted
first or second character; a claim form's card account number of 16 to 19 digits that
fails its Luhn digit takes the one Luhn-valid reading its candidates clearly favour (a
tie-breaker: accounts without a Luhn digit exist, and the rule still warns).
Each decoder looks only at characters the recogniser proposed for the field's characters
(``OcrLine.alternatives``), never invents one, and decides only when one reading is
clearly likelier than any other that satisfies the constraint (:data:`MARGIN`);
otherwise the value stays as read, and the rules send it to a person.

A changed value keeps its reading in ``raw``, says what changed in ``corrections`` (each
marked :data:`BY_CONSTRAINT`, see :func:`decided_by_constraint`), and keeps at most
:data:`ocr.text.GUESSED_CONFIDENCE`: the constraint that chose it is no evidence that it
is right, so it never goes straight through on its confidence.

:func:`decode_fields` is called by the reading pipeline once, after the extractor.

>>> alts = [[("汊", 0.55), ("汉", 0.40), ("汀", 0.05)]]
>>> choose_ethnicity("汊", alts)
('汉', ['汊->汉 at 1 (recogniser candidate, p=0.40; by constraint: known ethnicity)'], 1.0)
>>> choose_date("2023年13月05日", [[(c, 0.99)] for c in "2023年1"] + [[("3", 0.6), ("2", 0.3)]]
...             + [[(c, 0.99)] for c in "月05日"])
('2023-12-05', ['3->2 at 7 (recogniser candidate, p=0.30; by constraint: a date that exists)'])
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable
from decimal import Decimal

from stdnum import luhn

from domain import cn_amount
from domain.ethnic_groups import ethnic_group
from domain.fields import FIELDS, FieldFamily, field_family
from domain.gb11643 import authority_known
from domain.models import DocType, ExtractedField, OcrLine
from domain.surnames import surname_of

from .extract.bankcard import choose_card_number
from .extract.normalise import normalise
from .text import DATE_RE, GUESSED_CONFIDENCE, fold_chinese, parse_date

__all__ = ["BY_CONSTRAINT", "MARGIN", "choose_amounts", "choose_authority", "choose_date",
           "choose_ethnicity", "choose_surname",
           "decide_amounts", "decided_by_constraint", "decode_fields", "field_source"]

#: How much likelier than the next reading that satisfies the constraint the chosen one
#: must be (product over changed characters of p(candidate) / p(first candidate)).
MARGIN = 2.0
#: At most this many characters of a value change.
MAX_CHANGES = 2
#: Ends every correction a decoder makes: a rule that checks the same constraint passes
#: because of the change, so it is no evidence for it.
BY_CONSTRAINT = "by constraint"

_CAPITALS = set("零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整")
_WORDS_RUN = re.compile("[零壹贰叁肆伍陆柒捌玖拾佰仟万亿元圆角分整正貳叁叄參陸萬億任伯恰武人民币\\s]+")
_FIGURES_RUN = re.compile(r"\d[\d,，.．]*")
_DATE_8 = re.compile(r"(?<!\d)\d{8}(?!\d)")

#: (figures, words) of the documents that carry an amount twice.
AMOUNT_PAIRS: dict[DocType, tuple[str, str]] = {
    DocType.CLAIM_FORM: ("claim_amount", "claim_amount_in_words"),
    DocType.MEDICAL_INVOICE: ("total_amount", "total_amount_in_words"),
}
_ETHNICITY_TYPES = (DocType.ID_CARD_FRONT, DocType.ID_CARD_TEMPORARY)

Alternatives = list[list[tuple[str, float]]]
Source = list[tuple[str, list[tuple[str, float]]]]  # per character: as read, candidates


def decided_by_constraint(corrections: Iterable[str]) -> bool:
    """Whether a decoder of this module changed the value (a rule on the same
    constraint then passes because of the change, and vouches for nothing).

    >>> decided_by_constraint(["8->X at 18 (by check digit)"]), decided_by_constraint(
    ...     ["汊->汉 at 1 (recogniser candidate, p=0.40; by constraint: known ethnicity)"])
    (False, True)
    """
    return any(f"; {BY_CONSTRAINT}:" in c for c in corrections)


def _note(old: str, new: str, at: int, p: float, why: str) -> str:
    return f"{old}->{new} at {at} (recogniser candidate, p={p:.2f}; {BY_CONSTRAINT}: {why})"


def _fold(ch: str) -> str:
    """One character as the extractors compare it (NFKC, simplified), or itself when
    folding would not leave one character."""
    folded = fold_chinese(unicodedata.normalize("NFKC", ch))
    return folded if len(folded) == 1 else ch


def _candidates(read: str, cands: list[tuple[str, float]]) -> dict[str, float]:
    """A character's candidates folded, the best probability per character; the
    character as read always among them."""
    out: dict[str, float] = {}
    for ch, p in cands:
        f = _fold(ch)
        out[f] = max(out.get(f, 0.0), float(p))
    if read not in out:
        out[read] = max(out.values(), default=1.0)
    return out


# --------------------------------------------------------------------------- search


def _search(chars: list[str], options: list[dict[str, float]], positions: Iterable[int],
            accept: Callable[[str], object | None], max_changes: int = MAX_CHANGES
            ) -> tuple[object, list[tuple[int, str, float]], float] | None:
    """The likeliest reading of ``chars`` that ``accept`` takes (it returns the decoded
    value, or None), changing at most ``max_changes`` of ``positions`` to one of their
    ``options``; fewer changes are tried first, more only when fewer satisfy nothing.
    None when no reading is accepted or the best is not :data:`MARGIN` times likelier
    than the next (whose value differs). Returns (value, changes (position, character,
    p), share of the accepted readings' likelihood the winner holds)."""
    singles = []
    for i in positions:
        top = max(options[i].values())
        singles += [(i, ch, p, p / max(top, 1e-9)) for ch, p in options[i].items()
                    if ch != chars[i]]
    for k in range(1, max_changes + 1):
        readings: list[tuple[float, object, list[tuple[int, str, float]]]] = []
        for combo in itertools.combinations(singles, k):
            if len({c[0] for c in combo}) != k:
                continue
            trial = list(chars)
            ratio = 1.0
            for i, ch, _p, r in combo:
                trial[i] = ch
                ratio *= r
            value = accept("".join(trial))
            if value is not None:
                readings.append((ratio, value, [(i, ch, p) for i, ch, p, _r in combo]))
        if not readings:
            continue
        readings.sort(key=lambda r: -r[0])
        best = readings[0]
        rival = next((r for r in readings[1:] if r[1] != best[1]), None)
        if rival is not None and best[0] < MARGIN * rival[0]:
            return None
        total = sum(r[0] for r in readings if r[1] != best[1]) + best[0]
        return best[1], best[2], round(best[0] / total, 4)
    return None


# ----------------------------------------------------------------------- ethnicity


def choose_ethnicity(value: str, alternatives: Alternatives
                     ) -> tuple[str, list[str], float] | None:
    """The ethnic group the recogniser's candidates for the characters of ``value``
    spell, when ``value`` is none and one reading is clearly the likeliest; None
    otherwise (a known group, or nothing to decide by). Returns the group, the
    corrections and the winner's share of the valid readings' likelihood."""
    if ethnic_group(value) is not None or len(alternatives) != len(value) or not value:
        return None
    chars = list(value)
    options = [_candidates(c, a) for c, a in zip(chars, alternatives, strict=True)]
    found = _search(chars, options, range(len(chars)), ethnic_group)
    if found is None:
        return None
    group, changes, share = found
    notes = [_note(chars[i], ch, i + 1, p, "known ethnicity") for i, ch, p in changes]
    return str(group), notes, share


# ---------------------------------------------------------------------------- names

#: A name's character read with less probability than this is doubted: only a doubted
#: first or second character may change to make the name begin with a known surname.
NAME_DOUBT = 0.9
#: A candidate the recogniser gave less than this is never taken for a surname.
NAME_MIN_CANDIDATE = 0.1
_HAN_NAME = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]+")


def choose_surname(name: str, alternatives: Alternatives) -> tuple[str, list[str], float] | None:
    """The name the recogniser's candidates spell with a known surname, when ``name``
    begins with none (复侯俊悦: 复 doubted, 夏 its candidate: 夏侯俊悦), its first or second
    character was doubted (:data:`NAME_DOUBT`) and one reading is clearly the likeliest;
    None otherwise. A name with a known surname, a transliterated name (·) or one read
    with confidence is left as it is: not every name has a listed surname.

    >>> choose_surname("复侯俊悦", [[("复", 0.55), ("夏", 0.4)], [("侯", 0.99)],
    ...                             [("俊", 0.99)], [("悦", 0.98)]])
    ('夏侯俊悦', ['复->夏 at 1 (recogniser candidate, p=0.40; by constraint: a known surname)'], 1.0)
    >>> choose_surname("扎西顿珠", [[("扎", 0.97), ("礼", 0.03)], [("西", 0.99)],
    ...                             [("顿", 0.99)], [("珠", 0.99)]]) is None
    True
    """
    if (len(name) < 2 or not _HAN_NAME.fullmatch(name) or len(alternatives) != len(name)
            or surname_of(name) is not None):
        return None
    chars = list(name)
    options = []
    for c, a in zip(chars, alternatives, strict=True):
        cands = _candidates(c, a)
        options.append({ch: p for ch, p in cands.items() if ch == c or p >= NAME_MIN_CANDIDATE})
    doubted = [i for i in (0, 1) if i < len(chars) - 1 and options[i][chars[i]] < NAME_DOUBT]
    if not doubted:
        return None
    found = _search(chars, options, doubted,
                    lambda s: s if surname_of(s) is not None else None, max_changes=1)
    if found is None:
        return None
    value, changes, share = found
    notes = [_note(chars[i], ch, i + 1, p, "a known surname") for i, ch, p in changes]
    return str(value), notes, share


# ---------------------------------------------------------------- issuing authority

#: An authority's character read with less probability than this is doubted: only
#: doubted characters may change to make the authority name real places.
AUTHORITY_DOUBT = 0.9


def choose_authority(value: str, alternatives: Alternatives
                     ) -> tuple[str, list[str], float] | None:
    """The issuing authority the recogniser's candidates spell with real GB/T 2260
    places (:func:`domain.gb11643.authority_known`), when ``value`` names none, up to
    two doubted characters change and one reading is clearly the likeliest; None
    otherwise. A character the recogniser dropped is never put back.

    >>> choose_authority("北京市公安局门头公分局", [[(c, 0.99)] for c in "北京市公安局门头"]
    ...                  + [[("公", 0.6), ("沟", 0.35)], [("分", 0.99)], [("局", 0.99)]])
    ('北京市公安局门头沟分局', ['公->沟 at 9 (recogniser candidate, p=0.35; by constraint: a real place)'], 1.0)
    >>> choose_authority("花埔县公安", [[(c, 0.8)] for c in "花埔县公安"]) is None
    True
    """
    if authority_known(value) or len(alternatives) != len(value) or not value:
        return None
    chars = list(value)
    options = [_candidates(c, a) for c, a in zip(chars, alternatives, strict=True)]
    doubted = [i for i, c in enumerate(chars) if options[i][c] < AUTHORITY_DOUBT]
    if not doubted:
        return None
    found = _search(chars, options, doubted, lambda s: s if authority_known(s) else None)
    if found is None:
        return None
    new, changes, share = found
    notes = [_note(chars[i], ch, i + 1, p, "a real place") for i, ch, p in changes]
    return str(new), notes, share


# ------------------------------------------------------------------------ accounts


def _decode_account(field: ExtractedField, source: Source) -> ExtractedField | None:
    """A claim form's account number of 16-19 digits failing the Luhn check, read again
    with the Luhn-valid reading its digits' candidates clearly favour
    (:func:`ocr.extract.bankcard.choose_card_number`)."""
    value = field.value or ""
    if not (16 <= len(value) <= 19) or luhn.is_valid(value):
        return None
    at = [k for k, (c, _) in enumerate(source) if c.isdigit()]
    digits = "".join(source[k][0] for k in at)
    start = digits.find(value)
    if start < 0 or digits.find(value, start + 1) >= 0:
        return None
    where = at[start:start + len(value)]
    chosen = choose_card_number([[(c, p) for c, p in source[k][1].items()] for k in where])
    if chosen is None or chosen[0] == value:
        return None
    number = chosen[0]
    notes = [_note(old, new, i + 1, source[where[i]][1].get(new, 0.0), "the Luhn check digit")
             for i, (old, new) in enumerate(zip(value, number, strict=True)) if old != new]
    return _changed(field, number, notes)


# ---------------------------------------------------------------------------- dates


def choose_date(text: str, alternatives: Alternatives) -> tuple[str, list[str]] | None:
    """An ISO date that exists, from a date ``text`` that does not (month 13, day 32,
    30 February), changing digits only to the recogniser's digit candidates; None when
    the text is a date already, is no date, or no one reading clearly wins."""
    if len(alternatives) != len(text) or parse_date(text) is not None:
        return None
    chars = list(text)
    if not (DATE_RE.search(text) or _DATE_8.search(text)):
        return None
    options = [{ch: p for ch, p in _candidates(c, a).items() if ch.isdigit()} if c.isdigit()
               else {c: 1.0} for c, a in zip(chars, alternatives, strict=True)]
    digits = [i for i, c in enumerate(chars) if c.isdigit()]
    found = _search(chars, options, digits, parse_date)
    if found is None:
        return None
    date, changes, _share = found
    return str(date), [_note(chars[i], ch, i + 1, p, "a date that exists")
                       for i, ch, p in changes]


def _date_windows(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in DATE_RE.finditer(text)]
    spans += [m.span() for m in _DATE_8.finditer(text)
              if not any(a <= m.start() < b for a, b in spans)]
    return sorted(spans)


def _decode_date(name: str, field: ExtractedField, source: Source) -> ExtractedField | None:
    text = "".join(c for c, _ in source)
    windows = _date_windows(text)
    if name in ("valid_from", "valid_until") and len(windows) == 2:
        windows = [windows[0] if name == "valid_from" else windows[1]]
    bad = [w for w in windows if parse_date(text[w[0]:w[1]]) is None]
    if len(bad) != 1:
        return None
    a, b = bad[0]
    chosen = choose_date(text[a:b], [[(c, p) for c, p in cands.items()]
                                     for _, cands in source[a:b]])
    if chosen is None:
        return None
    value, notes = chosen
    return _changed(field, value, notes)


# -------------------------------------------------------------------------- amounts


def _amount_figures(text: str) -> Decimal | None:
    value = normalise("claim_amount", text)
    return None if value is None else Decimal(value)


def _amount_words(text: str) -> Decimal | None:
    value = normalise("claim_amount_in_words", text)
    for words in (value, text):  # (the normal form asks for a 元: 伍角 is read as is)
        if words is None:
            continue
        try:
            return cn_amount.parse(words)
        except ValueError:  # stdnum's InvalidFormat is a ValueError
            continue
    return None


def choose_amounts(figures: str, figures_alts: Alternatives, words: str,
                   words_alts: Alternatives
                   ) -> tuple[str | None, str | None, list[str], list[str]] | None:
    """When the amount in ``figures`` (as read: 1,234.50) and in ``words`` (as read:
    壹仟贰佰叁拾肆元伍角) disagree, the reading that makes them one amount: digits changed
    to the recogniser's digit candidates, capitals to its capital candidates. One
    field is changed when that suffices (the likeliest change, :data:`MARGIN` times
    likelier than any other that agrees), both only when no change of one agrees.

    Returns (new figures text or None, new words text or None, the corrections of each),
    None when they agree already, when either is unreadable and no change makes it
    agree, or when no reading clearly wins. Either alternatives list may be empty (that
    side is taken as read)."""
    fig_value, word_value = _amount_figures(figures), _amount_words(words)
    if fig_value is not None and fig_value == word_value:
        return None
    f_chars, w_chars = list(figures), list(words)
    f_opts = _amount_options(f_chars, figures_alts, str.isdigit)
    w_opts = _amount_options(w_chars, words_alts, lambda c: c in _CAPITALS, misread=True)
    n = len(f_chars)
    chars = f_chars + ["\n"] + w_chars
    options = f_opts + [{"\n": 1.0}] + w_opts
    f_pos = [i for i, o in enumerate(f_opts) if len(o) > 1]
    w_pos = [n + 1 + i for i, o in enumerate(w_opts) if len(o) > 1]
    if not f_pos + w_pos:
        return None

    def agree(joined: str) -> str | None:
        f_text, w_text = joined.split("\n")
        a, b = _amount_figures(f_text), _amount_words(w_text)
        return joined if a is not None and a == b else None

    # One change, in either field; two (in one field or one in each) only when no
    # single change makes them agree.
    found = _search(chars, options, f_pos + w_pos, agree)
    if found is None:
        return None
    joined, changes, _share = found
    new_f, new_w = str(joined).split("\n")
    f_notes = [_note(chars[i], ch, i + 1, p, "figures agree with words")
               for i, ch, p in changes if i < n]
    w_notes = [_note(chars[i], ch, i - n, p, "words agree with figures")
               for i, ch, p in changes if i > n]
    return (new_f if f_notes else None, new_w if w_notes else None, f_notes, w_notes)


def _amount_options(chars: list[str], alts: Alternatives, keep: Callable[[str], bool],
                    misread: bool = False) -> list[dict[str, float]]:
    if len(alts) != len(chars):
        return [{c: 1.0} for c in chars]
    out = []
    for c, a in zip(chars, alts, strict=True):
        # A character read as another (参 for 叁) may take a candidate of the kind too.
        every = _candidates(c, a)
        cands = {ch: p for ch, p in every.items() if keep(ch) or ch == c}
        out.append(cands if keep(c) or (misread and len(cands) > 1) else {c: 1.0})
    return out


def decide_amounts(figures: ExtractedField, f_source: Source | None,
                   words: ExtractedField, w_source: Source | None
                   ) -> tuple[ExtractedField, ExtractedField] | None:
    """The two amount fields made to agree (:func:`choose_amounts`) on the windows of
    their sources that read as their values; None when nothing changes."""
    if figures.value is None or words.value is None:
        return None
    f_win = _window(f_source, _FIGURES_RUN, "claim_amount", figures.value) if f_source else None
    w_win = (_window(w_source, _WORDS_RUN, "claim_amount_in_words", words.value)
             if w_source else None)
    if f_win is None and w_win is None:
        return None
    f_text, f_alts = f_win or (figures.value, [])
    w_text, w_alts = w_win or (words.value, [])
    chosen = choose_amounts(f_text, f_alts, w_text, w_alts)
    if chosen is None:
        return None
    new_f, new_w, f_notes, w_notes = chosen
    f_out, w_out = figures, words
    if new_f is not None:
        value = normalise("claim_amount", new_f)
        if value is None:
            return None
        f_out = _changed(figures, value, f_notes)
    if new_w is not None:
        value = normalise("claim_amount_in_words", new_w)
        if value is None:
            return None
        w_out = _changed(words, value, w_notes)
    return f_out, w_out


def _window(source: Source, pattern: re.Pattern[str], kind: str, value: str
            ) -> tuple[str, Alternatives] | None:
    """The one run of the source's text (by ``pattern``) that normalises to ``value``,
    with its characters' candidates; None when none or several do."""
    text = "".join(c for c, _ in source)
    hits = []
    if kind == "claim_amount_in_words":
        # First capital to last: a character misread as no capital may sit inside.
        at = [k for k, c in enumerate(text) if c in _CAPITALS]
        if at and normalise(kind, text[at[0]:at[-1] + 1]) == value:
            a, b = at[0], at[-1] + 1
            return text[a:b], [[(c, p) for c, p in cands.items()] for _, cands in source[a:b]]
    for m in pattern.finditer(text):
        run = m.group(0).strip()
        a = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        if run and normalise(kind, run) == value:
            hits.append((run, [[(c, p) for c, p in cands.items()]
                               for _, cands in source[a:a + len(run)]]))
    return hits[0] if len(hits) == 1 else None


# --------------------------------------------------------------------------- fields


def field_source(field: ExtractedField, lines: list[OcrLine]) -> Source | None:
    """The characters of the lines a field was read from, in order, each with the
    recogniser's candidates (a line without them: its characters as read, alone), lines
    joined by a space; matched by the field's boxes, else by its raw text. None when the
    lines cannot be found or none has candidates."""
    matched: list[OcrLine] = []
    used: set[int] = set()
    for box in field.boxes:
        hit = next((k for k, ln in enumerate(lines) if k not in used and _same_box(ln.polygon, box)),
                   None)
        if hit is None:
            matched = []
            break
        used.add(hit)
        matched.append(lines[hit])
    if not matched and field.raw:
        matched = _by_text(field.raw, lines)
    if not matched or not any(len(ln.alternatives) == len(ln.text) and ln.text
                              for ln in matched):
        return None
    out: Source = []
    for k, ln in enumerate(matched):
        if k:
            out.append((" ", {" ": 1.0}))
        alts = ln.alternatives if len(ln.alternatives) == len(ln.text) else None
        for j, ch in enumerate(ln.text):
            read = _fold(ch)
            out.append((read, _candidates(read, alts[j]) if alts else {read: 1.0}))
    return out


def _same_box(a, b) -> bool:
    return len(a) == len(b) and all(abs(p[0] - q[0]) < 1e-6 and abs(p[1] - q[1]) < 1e-6
                                    for p, q in zip(a, b, strict=True))


def _by_text(raw: str, lines: list[OcrLine]) -> list[OcrLine]:
    """The lines whose texts, joined by spaces, are ``raw`` (each text used once)."""
    parts = raw.split(" | ") if " | " in raw else [raw]
    out = []
    for part in parts:
        hit = [ln for ln in lines if ln.text == part and ln not in out]
        if len(hit) != 1:
            return []
        out.append(hit[0])
    return out


def _changed(field: ExtractedField, value: str, notes: list[str]) -> ExtractedField:
    return field.model_copy(update={
        "value": value,
        "raw": field.raw if field.raw is not None else field.value,
        "corrections": [*field.corrections, *notes],
        "confidence": round(min(field.confidence, GUESSED_CONFIDENCE), 4),
    })


def _decode_value(field: ExtractedField, source: Source,
                  choose: Callable[[str, Alternatives], tuple[str, list[str], float] | None]
                  ) -> ExtractedField | None:
    """The field with its value as ``choose`` (:func:`choose_ethnicity`,
    :func:`choose_surname`) reads it from the candidates of its characters where it
    last stands in its lines; None when it is not there or nothing is chosen."""
    value = field.value or ""
    text = "".join(c for c, _ in source)
    at = text.rfind(value)
    if not value or at < 0:
        return None
    alts = [[(c, p) for c, p in cands.items()] for _, cands in source[at:at + len(value)]]
    chosen = choose(value, alts)
    if chosen is None:
        return None
    new, notes, share = chosen
    out = _changed(field, new, notes)
    out.confidence = round(min(out.confidence, share), 4)
    return out


def decode_fields(doc_type: DocType, fields: dict[str, ExtractedField],
                  lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """The fields with the constraints of ``doc_type`` decoded from the recogniser's
    candidates: the ethnicity of an ID front or temporary card, the amount in figures
    against the amount in words (claim form, medical invoice), names that begin with a
    known surname, an ID card's issuing authority by real places, a claim form's card
    account number by its Luhn digit, dates that exist. A field that cannot be decided, or whose lines cannot be found, is left as
    it is."""
    out = dict(fields)
    sources: dict[str, Source | None] = {}

    def source(name: str) -> Source | None:
        if name not in sources:
            f = out.get(name)
            sources[name] = field_source(f, lines) if f is not None else None
        return sources[name]

    if doc_type in _ETHNICITY_TYPES:
        f = out.get("ethnicity")
        if f is not None and f.value and ethnic_group(f.value) is None and source("ethnicity"):
            out["ethnicity"] = _decode_value(f, source("ethnicity"), choose_ethnicity) or f
    pair = AMOUNT_PAIRS.get(doc_type)
    if pair is not None and pair[0] in out and pair[1] in out:
        fig, words = out[pair[0]], out[pair[1]]
        if fig.value is not None and words.value is not None:
            decided = decide_amounts(fig, source(pair[0]), words, source(pair[1]))
            if decided is not None:
                out[pair[0]], out[pair[1]] = decided
    f = out.get("issuing_authority")
    if f is not None and f.value and not authority_known(f.value) and source(
            "issuing_authority"):
        out["issuing_authority"] = _decode_value(f, source("issuing_authority"),
                                                 choose_authority) or f
    f = out.get("account_number") if doc_type is DocType.CLAIM_FORM else None
    if f is not None and f.value and source("account_number"):
        out["account_number"] = _decode_account(f, source("account_number")) or f
    for name in FIELDS.get(doc_type, ()):
        f = out.get(name)
        if (f is not None and f.value and field_family(name) is FieldFamily.NAME
                and surname_of(f.value) is None and source(name)):
            out[name] = _decode_value(f, source(name), choose_surname) or f
    for name in FIELDS.get(doc_type, ()):
        f = out.get(name)
        if (f is None or f.value is not None or field_family(name) is not FieldFamily.DATE
                or not (f.raw or f.boxes)):
            continue
        src = source(name)
        if src:
            out[name] = _decode_date(name, f, src) or f
    return out
