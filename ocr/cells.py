"""A value the text detector missed, read again from the cell where the card puts it.

An ID card front prints the holder's sex as one character (男 or 女) right of its label
性别, before 民族. The detector now and then finds no box around so small a word (s837:
性别 and 民族汉 found, 男 not), and the page then reads no sex. When that happens, the
cell between the label and 民族 (or, without 民族, three label heights wide) is cropped
and recognised as one line. The reading is kept only when it holds exactly one of 男 and
女; it says how it was read, and keeps the recogniser's score of that crop.

>>> import numpy as np
>>> lines = [OcrLine(text="性别", confidence=1.0, polygon=[(129, 218), (216, 218), (216, 260), (129, 260)]),
...          OcrLine(text="民族汉", confidence=1.0, polygon=[(380, 209), (536, 209), (536, 262), (380, 262)])]
>>> page = np.full((400, 700, 3), 255, np.uint8)
>>> seen = []
>>> def read(crops):
...     seen.extend(c.shape for c in crops)
...     return [("男", 0.98)]
>>> f = sex_from_cell(page, lines, read)
>>> f.value, f.confidence, f.corrections, seen
('男', 0.98, ['read again from the cell right of its label'], [(59, 117, 3)])
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import cv2
import numpy as np

from domain.gb11643 import one_edit_away, place_core
from domain.models import ExtractedField, OcrLine
from domain.validity import LIFETIME, PERIOD_YEARS, period_ends

from .layout import bbox
from .text import BY_CHECK_DIGIT

NOTE = "read again from the cell right of its label"
_SEX_LABEL = re.compile(r"^[性牲][别別]$")


def _box_polygon(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    """An axis-aligned box as a polygon, clockwise from its top-left corner."""
    return [(float(x0), float(y0)), (float(x1), float(y0)), (float(x1), float(y1)),
            (float(x0), float(y1))]


def sex_from_cell(image: np.ndarray, lines: list[OcrLine],
                  read: Callable[[list[np.ndarray]], list[tuple[str, float]]]
                  ) -> ExtractedField | None:
    """The sex printed right of a 性别 label that stands alone on its line, read from its
    cell (``read``: a recogniser of line crops, e.g. ``OcrEngine.read_crops``); None
    when there is no such label or the crop does not read as 男 or 女."""
    boxes = [(ln, bbox(ln)) for ln in lines]
    for ln, (x0, y0, x1, y1) in boxes:
        if not _SEX_LABEL.match(ln.text.replace(" ", "")):
            continue
        h = y1 - y0
        cy = (y0 + y1) / 2
        # the next line right of the label on its row: 民族 (or a value's box)
        right = [b[0] for other, b in boxes if other is not ln and b[0] > x1
                 and b[1] < cy < b[3]]
        stop = min([x1 + 3 * h, *right])
        X0, X1 = int(x1 + 0.1 * h), int(stop - 0.1 * h)
        Y0, Y1 = max(int(y0 - 0.2 * h), 0), min(int(y1 + 0.2 * h), image.shape[0])
        if X1 - X0 < 0.5 * h or Y1 <= Y0:
            continue
        text, score = read([image[Y0:Y1, X0:X1]])[0]
        found = set(re.findall("[男女]", text))
        if len(found) != 1:
            continue
        polygon = _box_polygon(X0, Y0, X1, Y1)
        return ExtractedField(value=found.pop(), confidence=round(float(score), 4),
                              boxes=[polygon], raw=text, corrections=[NOTE])
    return None


# --------------------------------------------------------------------------- card rows

ROW_NOTE = "read from the row where the card prints it (the detector found no text there)"

#: Where a resident identity card prints each value, as fractions of the card's width
#: and height (x0, x1, y0, y1): a band a little taller than the text, from where the
#: values start to the portrait (front) or the card's right edge (back), with the label
#: printed before it. A band is read as one line only when the detector found nothing
#: in it; the label is put before its reading unless a detected line of its row holds
#: it, so the extractor sees the row as printed.
FRONT_ROWS: dict[str, tuple[str, tuple[float, float, float, float]]] = {
    "name": ("姓名", (0.17, 0.62, 0.130, 0.215)),
    "sex": ("性别", (0.17, 0.31, 0.243, 0.325)),
    "ethnicity": ("民族", (0.43, 0.62, 0.243, 0.325)),
    "birth": ("出生", (0.17, 0.62, 0.353, 0.435)),
    "address": ("住址", (0.17, 0.62, 0.463, 0.543)),
    "address2": ("", (0.17, 0.62, 0.535, 0.615)),
    "address3": ("", (0.17, 0.62, 0.607, 0.687)),
    "number": ("公民身份号码", (0.30, 0.97, 0.820, 0.905)),
}
BACK_ROWS: dict[str, tuple[str, tuple[float, float, float, float]]] = {
    "authority": ("签发机关", (0.385, 0.99, 0.718, 0.800)),
    "validity": ("有效期限", (0.385, 0.99, 0.826, 0.910)),
}
#: the fields a row carries
ROW_FIELDS = {"name": ("name",), "sex": ("sex",), "ethnicity": ("ethnicity",),
              "birth": ("birth_date",), "address": ("address",), "address2": ("address",),
              "address3": ("address",), "number": ("id_number",),
              "authority": ("issuing_authority",), "validity": ("valid_from", "valid_until")}
#: what marks a detected line as a row's own (its label, or a value only it holds)
_ROW_TEXT = {
    "name": re.compile(r"^[姓娃]\s*名"),
    "sex": re.compile(r"性\s*[别別]"),
    "ethnicity": re.compile(r"[民尺]\s*族"),
    "birth": re.compile(r"^出\s*生|\d{4}\s*年"),
    "address": re.compile(r"^[住往佳]\s*址"),
    "number": re.compile(r"\d{15,}|号码"),
    "authority": re.compile(r"签发|机关|公安局|分局"),
    "validity": re.compile(r"有效|期限|\d{4}[.\-]\d{1,2}[.\-]\d{1,2}"),
}


#: Lines every card of a side prints, whatever its holder, and where (fractions of the
#: card's width and height: x0, y0, x1, y1 of the detector's box around them; medians
#: over the flattened photos of dev seed 855, spread about 1%): they place a card the
#: page finder did not outline (a pale card on a pale desk).
CARD_ANCHORS: dict[str, list[tuple[re.Pattern[str], tuple[float, float, float, float]]]] = {
    "back": [(re.compile(r"中华人民|人民共和|共和国"), (0.287, 0.117, 0.881, 0.247)),
             (re.compile(r"居民身份|民身份证"), (0.261, 0.276, 0.910, 0.472))],
    "front": [(re.compile(r"^[0-9Xx]{17,19}$"), (0.314, 0.819, 0.871, 0.910)),
              (re.compile(r"公民身份|身份号码"), (0.075, 0.838, 0.260, 0.911))],
}


def card_from_anchors(lines: list[OcrLine], side: str, width: int = 1000,
                      height: int = 631) -> np.ndarray | None:
    """The 3x3 transform taking the page's pixels (those of ``lines``) to a flattened
    card ``width`` x ``height``, from the lines of :data:`CARD_ANCHORS` the page holds
    for ``side`` (a similarity: rotation, scale and shift; a card's tilt is left to the
    rows' alignment). None when no anchor is found or their boxes disagree (more than 4%
    of the card apart once placed).

    >>> line = OcrLine(text="中华人民共和国", confidence=0.9,
    ...                polygon=[(287, 117), (881, 117), (881, 247), (287, 247)])
    >>> bool(np.allclose(card_from_anchors([line], "back", 1000, 1000), np.eye(3), atol=1e-3))
    True
    """
    src, dst = [], []
    for pattern, (x0, y0, x1, y1) in CARD_ANCHORS[side]:
        found = [ln for ln in lines if pattern.search(ln.text.replace(" ", ""))]
        if len(found) != 1:
            continue
        src += [list(p) for p in found[0].polygon[:4]]
        dst += [(x0 * width, y0 * height), (x1 * width, y0 * height),
                (x1 * width, y1 * height), (x0 * width, y1 * height)]
    if not src:
        return None
    matrix, _ = cv2.estimateAffinePartial2D(np.float32(src), np.float32(dst), method=cv2.LMEDS)
    if matrix is None:
        return None
    placed = cv2.transform(np.float32(src).reshape(-1, 1, 2), matrix).reshape(-1, 2)
    if float(np.abs(placed - np.float32(dst)).max()) > 0.04 * width:
        return None
    return np.vstack([matrix, [0.0, 0.0, 1.0]]).astype(np.float64)


#: Whole lines every card prints on a line of their own (no value beside them), which
#: tell a card's side when its pale labels are misread.
PRINTED_LINES = ("公民身份号码", "中华人民共和国", "居民身份证")
#: A printed line is taken when the recogniser finds it at most this much (natural log)
#: less likely than its own reading on the line's crop.
PRINTED_SLACK = 2.0


def printed_lines(image: np.ndarray, lines: list[OcrLine],
                  crop: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  score: Callable[[list[np.ndarray], list[str]], list[list[float]]]
                  ) -> list[OcrLine] | None:
    """``lines`` with each line that is one of :data:`PRINTED_LINES` misread (公就身价号码)
    written as that line: its reading holds at least half of the printed line's
    characters, is at most two characters longer or shorter, and the recogniser finds
    the printed line nearly as likely on its crop (:data:`PRINTED_SLACK`). None when no
    line is. For a page not told as a document by what was read: a phone photo of a
    card whose every label came out wrong still shows 公民身份号码 to a person."""
    todo = []
    for k, ln in enumerate(lines):
        text = ln.text.replace(" ", "")
        for printed in PRINTED_LINES:
            if (text != printed and abs(len(text) - len(printed)) <= 2
                    and 2 * len(set(text) & set(printed)) >= len(set(printed))):
                todo.append((k, text, printed))
    if not todo:
        return None
    crops = [crop(image, np.asarray(lines[k].polygon, np.float32)) for k, _, _ in todo]
    out, changed = list(lines), False
    for (k, text, printed), crop_image in zip(todo, crops, strict=True):
        own, candidate = score([crop_image], [text, printed])[0]
        if candidate >= own - PRINTED_SLACK and out[k].text.replace(" ", "") == text:
            out[k] = lines[k].model_copy(update={"text": printed, "alternatives": [],
                                                 "char_probs": []})
            changed = True
    return out if changed else None


#: The rows read again from their band: short values of a fixed shape the extractor
#: checks (男/女, an ethnic group, dates, the number). A name's, an address's or an
#: authority's many-stroke words read from a band the detector found nothing in came
#: out wrong (0 of 6 on training seeds 711/712, hard photos): a person reads those.
READ_AGAIN = frozenset({"sex", "ethnicity", "birth", "number", "validity"})


def missing_rows(rows: dict[str, tuple], empty: set[str]) -> list[str]:
    """The rows (of ``rows``, those in :data:`READ_AGAIN`) that carry a field in ``empty``."""
    return [r for r in rows if r in READ_AGAIN and any(f in empty for f in ROW_FIELDS[r])]


def _row_offset(lines: list[OcrLine], rows: dict[str, tuple], height: int) -> float:
    """How far down (pixels) this card's rows sit from where ``rows`` puts them: the
    median over the detected lines that name their row (a label, the number), when
    less than a row's height."""
    shifts = []
    for ln in lines:
        _, y0, _, y1 = bbox(ln)
        text = ln.text.replace(" ", "")
        for name, pattern in _ROW_TEXT.items():
            if name in rows and pattern.search(text):
                _, _, b0, b1 = rows[name][1]
                shifts.append((y0 + y1) / 2 - (b0 + b1) / 2 * height)
                break
    if not shifts:
        return 0.0
    shift = float(np.median(shifts))
    _, _, b0, b1 = next(iter(rows.values()))[1]
    return shift if abs(shift) < (b1 - b0) * height else 0.0


def _band(image: np.ndarray, rows: dict[str, tuple], name: str, shift: float
          ) -> tuple[int, int, int, int] | None:
    """The pixel box (x0, y0, x1, y1) of row ``name``'s band on a card ``image``, moved
    down by ``shift``; None when too little of it lies on the card."""
    h, w = image.shape[:2]
    _, (fx0, fx1, fy0, fy1) = rows[name]
    X0, X1 = int(fx0 * w), int(fx1 * w)
    Y0, Y1 = max(int(fy0 * h + shift), 0), min(int(fy1 * h + shift), h)
    return None if Y1 - Y0 < 8 or X1 - X0 < 8 else (X0, Y0, X1, Y1)


def _row_crop(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple], name: str):
    """Row ``name``'s band aligned on the detected rows: (crop, polygon), or None."""
    box = _band(image, rows, name, _row_offset(lines, rows, image.shape[0]))
    if box is None:
        return None
    X0, Y0, X1, Y1 = box
    polygon = _box_polygon(X0, Y0, X1, Y1)
    return np.ascontiguousarray(image[Y0:Y1, X0:X1]), polygon


def card_row_lines(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple],
                   wanted: list[str], read: Callable[[list[np.ndarray]], list[tuple]],
                   threshold: float = 0.0) -> list[OcrLine]:
    """``lines`` with each row of ``wanted`` that holds no detected line read from its
    band as one more line (``image``: the card flattened and upright; ``read``: a
    recogniser of line crops returning (text, score[, alternatives, char_probs]);
    readings scored below ``threshold`` are dropped, as the detector's lines are)."""
    shift = _row_offset(lines, rows, image.shape[0])
    boxes = [bbox(ln) for ln in lines]
    bands, crops = [], []
    for name in wanted:
        label = rows[name][0]
        box = _band(image, rows, name, shift)
        if box is None:
            continue
        X0, Y0, X1, Y1 = box
        if any(X0 <= (b[0] + b[2]) / 2 <= X1 and Y0 <= (b[1] + b[3]) / 2 <= Y1 for b in boxes):
            continue
        pattern = _ROW_TEXT.get(name)
        if label and pattern is not None and any(
                Y0 <= (b[1] + b[3]) / 2 <= Y1 and pattern.search(ln.text.replace(" ", ""))
                for ln, b in zip(lines, boxes, strict=True)):
            label = ""  # the detector read the label: the row has it already
        bands.append((label, X0, Y0, X1, Y1))
        crops.append(np.ascontiguousarray(image[Y0:Y1, X0:X1]))
    if not crops:
        return lines
    out = list(lines)
    for (label, X0, Y0, X1, Y1), reading in zip(bands, read(crops), strict=True):
        text, score = reading[0], float(reading[1])
        if not text.strip() or score < threshold:
            continue
        alternatives = reading[2] if len(reading) > 2 else []
        probs = reading[3] if len(reading) > 3 else []
        if label and alternatives:
            alternatives = [[(ch, 1.0)] for ch in label] + list(alternatives)
        if label and probs:
            probs = [1.0] * len(label) + list(probs)
        out.append(OcrLine(
            text=label + text, confidence=round(score, 4),
            polygon=_box_polygon(X0, Y0, X1, Y1),
            alternatives=alternatives, char_probs=probs))
    return out


#: The rows whose value a misread label may run into on one detected line, with the
#: label as printed and what it reads as when read right. (An address's misread label
#: is dropped by the province its value starts with: ocr.extract.idcard.province_first.)
LABELLED_ROWS = {"name": ("姓名", re.compile(r"^姓\s*名"))}
#: Where a card front's values start, as a fraction of its width (its labels are printed
#: left of it; :data:`FRONT_ROWS`), less a margin.
VALUE_COLUMN = 0.16


def label_runs_into_value(image: np.ndarray, lines: list[OcrLine],
                          read: Callable[[list[np.ndarray]], list[tuple]],
                          rows: dict[str, tuple] = FRONT_ROWS) -> list[OcrLine]:
    """``lines`` of a flattened card front, each line of the name's row that the
    detector ran from the label into the value and that does not read as that label (姓6 次仁, 外名赵芳梅, 日当上官清情) read again from where the values
    start: its text becomes the label as printed and the value's reading, so that no
    misread label is taken for part of a name."""
    h, w = image.shape[:2]
    shift = _row_offset(lines, rows, h)
    x_value = VALUE_COLUMN * w
    todo = []
    for k, ln in enumerate(lines):
        x0, y0, x1, y1 = bbox(ln)
        cy = (y0 + y1) / 2
        for row, (label, pattern) in LABELLED_ROWS.items():
            box = _band(image, rows, row, shift)
            if box is None or not box[1] <= cy <= box[3]:
                continue
            if x0 < x_value - 0.5 * (y1 - y0) and x1 > x_value + (y1 - y0) and not pattern.match(
                    ln.text.replace(" ", "")):
                # with a margin of paper on either side, as every line is cropped
                # (OcrEngine.crop): cut at the first stroke, 石燕 reads as 66
                pad = 0.25 * (y1 - y0)
                crop = image[max(int(y0 - pad), 0):min(int(y1 + pad), h),
                             int(x_value - pad):min(int(x1 + 2 * pad), w)]
                todo.append((k, label, np.ascontiguousarray(crop)))
    if not todo:
        return lines
    out = list(lines)
    for (k, label, _), reading in zip(todo, read([c for *_, c in todo]), strict=True):
        text, score = reading[0], float(reading[1])
        if not text.strip():
            continue
        alternatives = reading[2] if len(reading) > 2 else []
        probs = reading[3] if len(reading) > 3 else []
        out[k] = lines[k].model_copy(update={
            "text": label + text, "confidence": round(min(score, lines[k].confidence), 4),
            "alternatives": [[(ch, 1.0)] for ch in label] + list(alternatives) if alternatives else [],
            "char_probs": [1.0] * len(label) + list(probs) if probs else []})
    return out


# --------------------------------------------------------------------------- closed lists

CLOSED_NOTE = "chosen from its closed list by the recogniser's likelihood of each word"
PRIOR_NOTE = ("chosen from its closed list by the recogniser's likelihood of each word "
              "and how common each word is")
#: The margin (natural log) by which the likeliest word must beat the next one, and at
#: most by which it may fall behind reading nothing at all (the crop holds a word).
CLOSED_MARGIN = 3.0
CLOSED_EMPTY_SLACK = 3.0


def closed_word(scores: list[float], words: list[str], margin: float = CLOSED_MARGIN,
                prior: Callable[[str], float] | None = None) -> tuple[str, float] | None:
    """The word of ``words`` whose log-likelihood (``scores``, aligned; the last is the
    empty reading's), plus its log ``prior`` when one is given, stands out: at least
    ``margin`` above every other word's, its likelihood alone at most
    :data:`CLOSED_EMPTY_SLACK` below reading nothing (the crop holds a word: a prior
    never fills a blank). Returns the word and its share of the words' posterior
    (likelihood alone when no prior is given); None when no word stands out.

    >>> closed_word([-5.25, -12.63, -5.2], ["男", "女"])
    ('男', 0.9994)
    >>> closed_word([-2.46, -5.0, -6.27], ["满", "汉"]) is None
    True
    >>> closed_word([-9.7, -7.8, -5.3], ["水", "汉"],
    ...             prior={"汉": -0.09, "水": -7.8}.get)  # 汉 on nine cards in ten
    ('汉', 0.9999)
    >>> closed_word([-9.7, -7.8, -1.3], ["水", "汉"], prior={"汉": -0.09, "水": -7.8}.get
    ...             ) is None  # a blank crop stays blank
    True
    """
    *likelihoods, empty = scores
    word_scores = [v + prior(w) for v, w in zip(likelihoods, words, strict=True)
                   ] if prior is not None else list(likelihoods)
    order = sorted(range(len(words)), key=lambda i: -word_scores[i])
    best = order[0]
    runner = word_scores[order[1]] if len(order) > 1 else float("-inf")
    if word_scores[best] - runner < margin or likelihoods[best] < empty - CLOSED_EMPTY_SLACK:
        return None
    z = np.array(word_scores) - word_scores[best]
    share = 1.0 / float(np.exp(z).sum())
    return words[best], round(share, 4)


#: Where the label of a row read as a closed list starts on a card front (a fraction
#: of its width, less a margin): 性别 at the labels' column, 民族 mid-card.
LABEL_STARTS = {"sex": 0.05, "ethnicity": 0.30}


def closed_from_row(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple],
                    row: str, words: list[str],
                    score: Callable[[list[np.ndarray], list[str]], list[list[float]]],
                    prior: Callable[[str], float] | None = None) -> ExtractedField | None:
    """A value of a closed list (男/女, the ethnic groups) read from the row where the
    card prints it (``rows[row]``, aligned on the detected rows) by scoring each word of
    the list (``score``: ``OcrEngine.score_texts``) twice: printed after the row's label
    on the row from its label on, and alone on the value's band. The word that stands
    out (:func:`closed_word`) in the first, else in the second, is taken; none when
    they stand out for different words. With the label before it, the word is where
    the recogniser expects a line's text to go on; a label faded to nothing hides it.
    On hard training photos (seeds 713, 714 and dev 855; 101 fronts) the ethnicity was
    chosen right 67 times alone on its band, 77 after its label and 77 either way (1
    wrong); the sex 85, 86 and 92 (none wrong). ``prior``: each word's log prior
    (:func:`closed_word`; the ethnic groups' shares of the population), weighed in only
    when the likelihood alone names no word: a word the pixels make far likelier is
    taken however rare (土 against 汉)."""
    label = rows[row][0]
    found = _closed_crops(image, lines, rows, row)
    if found is None:
        return None
    labelled, alone, polygon = found
    scored = (score([labelled], [*(label + w for w in words), label])[0],
              score([alone], [*words, ""])[0])
    after, bare = (closed_word(s, words) for s in scored)
    note = CLOSED_NOTE
    if after is None and bare is None and prior is not None:
        # The pixels alone name no word: what is known beforehand may tip the balance
        # (and a person confirms it: no calibration curve takes it straight through).
        after, bare = (closed_word(s, words, prior=prior) for s in scored)
        note = PRIOR_NOTE
    if after is not None and bare is not None and after[0] != bare[0]:
        return None
    chosen = after or bare
    if chosen is None:
        return None
    share = max(c[1] for c in (after, bare) if c is not None)
    return ExtractedField(value=chosen[0], confidence=share, boxes=[polygon],
                          raw=None, corrections=[note])


def _closed_crops(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple], row: str):
    """Row ``row`` from its label on, and its value's band alone, with the band's
    polygon; None when the band is off the card."""
    box = _band(image, rows, row, _row_offset(lines, rows, image.shape[0]))
    if box is None:
        return None
    X0, Y0, X1, Y1 = box
    x0 = int(LABEL_STARTS.get(row, X0 / image.shape[1]) * image.shape[1])
    return (np.ascontiguousarray(image[Y0:Y1, x0:X1]),
            np.ascontiguousarray(image[Y0:Y1, X0:X1]), _box_polygon(X0, Y0, X1, Y1))


# --------------------------------------------------------------------------- number

#: The margin (natural log) by which the likeliest valid number one character from the
#: reading must beat the next, and at most by how much it may fall behind the reading.
NUMBER_MARGIN = 3.0
NUMBER_SLACK = 10.0


def number_note(read: str, chosen: str) -> str:
    """What :func:`number_from_line` did, marked as chosen by the check digit: a person
    confirms such a number (:func:`ocr.text.guessed_by_check_digit`)."""
    return (f"{read}->{chosen} (the valid number one character from the reading that the "
            f"recogniser finds likeliest on its line){BY_CHECK_DIGIT}")


def number_from_line(value: str, crop: np.ndarray, lead: str, tail: str,
                     score: Callable[[list[np.ndarray], list[str]], list[list[float]]]
                     ) -> tuple[str, float] | None:
    """An ID number read with a digit dropped or misread (17 digits; 18 failing its
    checks), put right: of the valid numbers one character from it
    (:func:`domain.gb11643.one_edit_away`), the one the recogniser finds likeliest on the
    number's line (``crop``, printed between ``lead`` and ``tail``), when it beats every
    other by :data:`NUMBER_MARGIN` and is at most :data:`NUMBER_SLACK` less likely than
    the reading itself. Returns the number and its share of the candidates' likelihood;
    None otherwise. The check digit chose among the candidates: the caller sends the
    number to a person (hard photos of dev seed 884: a 1 dropped from 522324198611145207,
    0 read as 9 in 650205201209246656)."""
    candidates = one_edit_away(value)
    if not candidates:
        return None
    own, *ll = score([crop], [lead + value + tail, *(lead + c + tail for c in candidates)])[0]
    scores = np.asarray(ll, dtype=np.float64)
    order = np.argsort(-scores)
    best = float(scores[order[0]])
    runner = float(scores[order[1]]) if len(order) > 1 else float("-inf")
    if not np.isfinite(best) or best - runner < NUMBER_MARGIN or best < own - NUMBER_SLACK:
        return None
    share = 1.0 / float(np.exp(scores[np.isfinite(scores)] - best).sum())
    return candidates[int(order[0])], round(share, 4)


SEX_BY_NUMBER_NOTE = ("the sex its ID number encodes, which the recogniser finds the likelier "
                      "of the two on the card's sex row")


def sex_by_number(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple],
                  encoded: str,
                  score: Callable[[list[np.ndarray], list[str]], list[list[float]]]
                  ) -> ExtractedField | None:
    """男 or 女 as a valid ID number encodes it (``encoded``: its 17th digit, odd for
    a man), for a sex the pixels alone did not decide (:func:`closed_from_row`: no
    word stood out, or the crop looked blank), when the recogniser finds that word at
    least as likely as the other both after the row's label and alone on the value's
    band: the pixels lean the number's way, however faintly. None when they lean the
    other way (a card whose printed sex and number disagree is a person's to see).
    The share is the pixels' own: how far the encoded word leads, both crops added."""
    words = ["男", "女"]
    if encoded not in words:
        return None
    found = _closed_crops(image, lines, rows, "sex")
    if found is None:
        return None
    labelled, alone, polygon = found
    label = rows["sex"][0]
    after = score([labelled], [label + w for w in words])[0]
    bare = score([alone], words)[0]
    mine, other = words.index(encoded), 1 - words.index(encoded)
    if after[mine] < after[other] or bare[mine] < bare[other]:
        return None
    lead = float(after[mine] - after[other] + bare[mine] - bare[other])
    share = 1.0 / (1.0 + float(np.exp(-lead)))
    return ExtractedField(value=encoded, confidence=round(share, 4), boxes=[polygon],
                          raw=None, corrections=[SEX_BY_NUMBER_NOTE])


# --------------------------------------------------------------------------- validity

VALIDITY_NOTE = "chosen among the validity periods its digits allow by the recogniser's likelihood"
#: The margin (natural log) a period must stand out by: a period differs from the next
#: in a digit or two of twenty characters, a word of a closed list in all of them.
PERIOD_MARGIN = 2.0
_DATE_LIKE = re.compile(r"\d{4}\D?\d{2}\D?\d{2}")
#: At most this many periods are scored.
MAX_PERIODS = 600


def _date(text: str) -> dt.date | None:
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def validity_periods(digits: list[str], today: dt.date | None = None) -> list[str]:
    """The validity periods as a card prints them (2012.05.30-2032.05.30, or
    2012.05.30-长期) that the digit runs read (``digits``) allow: the first eight digits
    of a run as the start, or any one of them changed; each start with every period a
    card can have. Starts from 1995 to ``today``.

    >>> validity_periods(["20120530"])[:2]
    ['2012.05.30-2017.05.30', '2012.05.30-2022.05.30']
    >>> len(validity_periods(["2012053020320530"], dt.date(2026, 12, 1)))  # 22 starts
    88
    """
    today = today or dt.date.today()
    starts: dict[dt.date, None] = {}  # in the order found, once each
    for run in digits:
        if len(run) < 8:
            continue
        base = run[:8]
        options = [base] + [base[:i] + d + base[i + 1:] for i in range(8) for d in "0123456789"
                            if d != base[i]]
        for option in options:
            day = _date(option)
            if day is not None and dt.date(1995, 1, 1) <= day <= today:
                starts.setdefault(day, None)
    periods = []
    for day in starts:
        head = f"{day:%Y.%m.%d}-"
        for years in PERIOD_YEARS:
            periods += [f"{head}{end:%Y.%m.%d}" for end in sorted(period_ends(day, years))]
        periods.append(head + LIFETIME)
    return periods[:MAX_PERIODS]


def validity_from_row(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple],
                      read: Callable[[list[np.ndarray]], list[tuple]],
                      score: Callable[[list[np.ndarray], list[str]], list[list[float]]],
                      raws: list[str]
                      ) -> tuple[ExtractedField | None, ExtractedField | None] | None:
    """A card back's validity (valid_from, valid_until) chosen among the periods the
    digits read allow (:func:`validity_periods`; from ``raws``, the texts read of the
    row, and the row's band read again) by the recogniser's likelihood of each period
    printed in full on the row's band (:func:`closed_word`). When no period stands out,
    a start or an end that :data:`PART_SHARE` of the periods' likelihood agrees on is
    taken alone (the other part None); None when neither is."""
    found = row_crops(image, lines, rows, "validity")
    if found is None:
        return None
    crops, polygon = found
    texts = [*raws, *(r[0] for r in read(crops))]
    # each date as read (2045.06.17), and the digits of the row run together
    runs = [re.sub(r"\D", "", m) for t in texts for m in _DATE_LIKE.findall(t)]
    runs += [re.sub(r"\D", "", t) for t in texts]
    runs += [r[8:] for r in runs if len(r) >= 16]  # the end's digits, for its start's day
    periods = validity_periods(runs)
    if len(periods) < 2:
        return None
    scores = [float(v) for v in np.sum(score(crops, [*periods, ""]), axis=0)]
    chosen = closed_word(scores, periods, PERIOD_MARGIN)
    if chosen is not None:
        period, share = chosen
        start, end = period.split("-", 1)
        return (_period_field(start, share, polygon, period),
                _period_field(end, share, polygon, period))
    # No period stands out; its start or its end alone may (2021.06.19 or 2021.08.19,
    # either way 长期): each part takes the value most of the periods' likelihood agrees on.
    *likelihoods, empty = scores
    if max(likelihoods) < empty - CLOSED_EMPTY_SLACK:
        return None
    weights = np.exp(np.asarray(likelihoods) - max(likelihoods))
    weights /= weights.sum()
    parts: list[ExtractedField | None] = []
    for k in (0, 1):
        mass: dict[str, float] = {}
        for period, w in zip(periods, weights, strict=True):
            value = period.split("-", 1)[k]
            mass[value] = mass.get(value, 0.0) + float(w)
        value, share = max(mass.items(), key=lambda kv: kv[1])
        parts.append(_period_field(value, round(share, 4), polygon, None)
                     if share >= PART_SHARE else None)
    return None if parts == [None, None] else (parts[0], parts[1])


#: The share of the periods' likelihood a start or an end alone must hold to be taken
#: when no whole period stands out: as much as a period ahead by :data:`PERIOD_MARGIN`.
PART_SHARE = 1.0 / (1.0 + float(np.exp(-PERIOD_MARGIN)))


def _period_field(printed: str, share: float, polygon, raw: str | None) -> ExtractedField:
    """A start or an end of a validity period as printed (2012.05.30, 长期), as a field."""
    value = printed if printed == LIFETIME else printed.replace(".", "-")
    return ExtractedField(value=value, confidence=share, boxes=[polygon], raw=raw,
                          corrections=[VALIDITY_NOTE])


# --------------------------------------------------------------------------- birth date

BIRTH_NOTE = ("chosen between the date as read and the one the ID number encodes by the "
              "recogniser's likelihood of each")


def _printed_date(iso: str) -> str:
    """A date as a card front prints it: 1976年2月22日 (no leading zeros)."""
    y, m, d = (int(p) for p in iso.split("-"))
    return f"{y}年{m}月{d}日"


def birth_from_row(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple],
                   encoded: str, read_value: str | None,
                   read: Callable[[list[np.ndarray]], list[tuple]],
                   score: Callable[[list[np.ndarray], list[str]], list[list[float]]]
                   ) -> ExtractedField | None:
    """A card front's birth date, when it was not read or disagrees with the one its
    valid ID number encodes (``encoded``, ISO): the encoded date, when the recogniser
    finds it on the birth row far likelier than the date as read (``read_value``) and
    than the row's own best reading; None otherwise. The number decides nothing alone:
    the printed row must say it."""
    band = _row_crop(image, lines, rows, "birth")
    if band is None:
        return None
    crop, polygon = band
    want = _printed_date(encoded)
    others = {re.sub(r"\s", "", read([crop])[0][0])}
    if read_value:
        others.add(_printed_date(read_value))
    others.discard(want)
    others.discard("")
    words = [want, *sorted(others)]
    scores = score([crop], [*words, ""])[0]
    chosen = closed_word(scores, words, PERIOD_MARGIN)
    if chosen is None or chosen[0] != want:
        return None
    return ExtractedField(value=encoded, confidence=chosen[1], boxes=[polygon],
                          raw=read_value, corrections=[BIRTH_NOTE])


# --------------------------------------------------------------------------- authority

AUTHORITY_NOTE = ("chosen among the real issuing authorities (GB/T 2260) by the "
                  "recogniser's likelihood of each")
#: The margin (natural log) the likeliest authority must stand out by.
AUTHORITY_MARGIN = 3.0
#: At most this many authorities, those sharing the most characters with what was read,
#: are scored.
AUTHORITY_SHORTLIST = 120
#: A name is considered when the readings hold at least this share of its own characters.
MIN_SHARED = 0.4
_CJK = "\u3400-\u4dbf\u4e00-\u9fff"


def authority_shortlist(texts: list[str], names: tuple[str, ...],
                        size: int = AUTHORITY_SHORTLIST, shortest: int | None = None
                        ) -> list[str]:
    """The authorities of ``names`` whose own characters (their places' names without
    公安局, 县, 市 and the like: :func:`domain.gb11643.place_core`) the readings ``texts``
    hold at least :data:`MIN_SHARED` of, those holding the most first. An authority
    shorter than the longest reading (its Chinese characters; or ``shortest``) is left
    out: the recogniser drops a blurred character far more often than it makes one up,
    and a shorter name explains a blur by blanks (托克逊县 as 托里县).

    >>> authority_shortlist(["新阳快公安局"], ("新田县公安局", "田东县公安局", "新县公安局"))
    ['新田县公安局']
    >>> authority_shortlist(["册号县公安局"], ("册亨县公安局", "新乡县公安局"))  # 县 tells nothing
    ['册亨县公安局']
    """
    seen = set(place_core("".join(texts)))
    if not seen:
        return []
    if shortest is None:
        shortest = max(len(re.findall(f"[{_CJK}]", t)) for t in texts)
    ranked = []
    for name in names:
        if len(name) < shortest:
            continue
        own = place_core(name)
        shared = sum(ch in seen for ch in own)
        if own and shared >= MIN_SHARED * len(own):
            ranked.append((-shared, len(own), name))
    ranked.sort()
    return [name for *_, name in ranked[:size]]


def _ink_end(image: np.ndarray, box: tuple[int, int, int, int]) -> int | None:
    """The x (pixels) where the ink of a band ends: the last column darker than its
    row's paper by a quarter of the darkest column's contrast; None for a blank band."""
    X0, Y0, X1, Y1 = box
    gray = image[Y0:Y1, X0:X1]
    gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY) if gray.ndim == 3 else gray
    gray = gray.astype(np.float32)
    ink = np.clip(np.median(gray) - gray, 0, None).mean(axis=0)
    cols = np.flatnonzero(ink > 0.25 * ink.max()) if ink.max() > 0 else []
    return X0 + int(cols[-1]) if len(cols) else None


def row_crops(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple], name: str,
              before: float = 0.5) -> tuple[list[np.ndarray], list[tuple[float, float]]] | None:
    """Two crops of row ``name``'s band, aligned on the detected rows: the band, and the
    band with ``before`` (half) a row's height more on the left and cut half a row after
    its last ink. The recogniser reads a short value at the start of a long band worse than the
    same value with room before it and no blank after it, and which of the two reads
    a blurred row better varies: a choice is scored on both. Returns the crops and the
    band's polygon, or None."""
    box = _band(image, rows, name, _row_offset(lines, rows, image.shape[0]))
    if box is None:
        return None
    X0, Y0, X1, Y1 = box
    h = Y1 - Y0
    crops = [np.ascontiguousarray(image[Y0:Y1, X0:X1])]
    end = _ink_end(image, box)
    if end is not None:
        x0, x1 = max(X0 - int(before * h), 0), min(end + h // 2 + 1, X1)
        if x1 - x0 >= h:
            crops.append(np.ascontiguousarray(image[Y0:Y1, x0:x1]))
    polygon = _box_polygon(X0, Y0, X1, Y1)
    return crops, polygon


def authority_from_row(image: np.ndarray, lines: list[OcrLine], rows: dict[str, tuple],
                       raws: list[str], names: tuple[str, ...],
                       read: Callable[[list[np.ndarray]], list[tuple]],
                       score: Callable[[list[np.ndarray], list[str]], list[list[float]]]
                       ) -> ExtractedField | None:
    """A card back's issuing authority chosen among the real ones (``names``,
    :func:`domain.gb11643.authority_names`) by the recogniser's likelihood of each printed
    on the authority row (:func:`row_crops`, the log-likelihoods of the crops added):
    those sharing characters with what was read (``raws``, and the crops read again)
    are scored, and the likeliest is taken only when it stands out
    (:func:`closed_word`); None otherwise."""
    found = row_crops(image, lines, rows, "authority")
    if found is None:
        return None
    crops, polygon = found
    texts = [*raws, *(r[0] for r in read(crops))]
    shortlist = authority_shortlist(texts, names)
    if not shortlist:
        return None
    # One name long enough: it must stand out against the others it shares most with.
    rivals = [] if len(shortlist) > 1 else [
        n for n in authority_shortlist(texts, names, shortest=0) if n not in shortlist]
    scores = np.sum(score(crops, [*shortlist, *rivals, ""]), axis=0)
    chosen = closed_word([float(v) for v in scores], [*shortlist, *rivals], AUTHORITY_MARGIN)
    if chosen is None or chosen[0] not in shortlist:
        return None
    return ExtractedField(value=chosen[0], confidence=chosen[1], boxes=[polygon],
                          raw=raws[0] if raws else None, corrections=[AUTHORITY_NOTE])
