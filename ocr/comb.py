"""An ID number written in a comb of boxes, one digit per box, read again as one line.

Forms print the insured's ID number as a row of 18 boxes. The text detector then sees
the box walls as gaps and cuts the number into fragments (``1``, ``1101``, ``7`` ...),
and misses some digits altogether: the page reads no ID number. When that happens, the
row's comb is found from the pixels (its walls: vertical strokes at an even pitch, next
to the fragments), the walls are erased, and the whole row is read as one line. The
reading is kept only when it is a valid identity number (length and check digit), and
only on the row of the insured's ID-number label; it says how it was read.

>>> import numpy as np, cv2
>>> page = np.full((80, 700, 3), 255, np.uint8)
>>> for i in range(19):
...     _ = cv2.line(page, (100 + 30 * i, 20), (100 + 30 * i, 60), (0, 0, 0), 2)
>>> _ = cv2.rectangle(page, (100, 20), (640, 60), (0, 0, 0), 2)
>>> walls = comb_walls(page, (110, 25, 400, 55))
>>> len(walls), walls[0], walls[-1]
(19, 100, 640)
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from itertools import pairwise

import cv2
import numpy as np

from domain import gb11643
from domain.models import ExtractedField, OcrLine

from .extract.claim import match_label
from .extract.normalise import fold_text, normalise
from .layout import bbox, text_skew

NOTE = "read again as one line across the boxes of its comb"
#: A piece of the number (the detector cuts it at the walls, or keeps a run of boxes
#: whole: 310109201 / 1 / 0 / 0 / 2 / 28362X, seed 724 photo 0024).
_FRAGMENT = re.compile(r"^[0-9Xx]{1,17}$")


def _same_row(a, b) -> bool:
    inter = min(a[3], b[3]) - max(a[1], b[1])
    return inter > 0.5 * min(a[3] - a[1], b[3] - b[1])


def comb_walls(image: np.ndarray, box: tuple[float, float, float, float]) -> list[int] | None:
    """The x of each wall of the comb of boxes around ``box`` (x0, y0, x1, y1: the digits
    read on it), left to right, or None when no evenly spaced walls are found there."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    Y0, Y1 = max(int(y0 - 0.4 * h), 0), min(int(y1 + 0.4 * h), image.shape[0])
    band = image[Y0:Y1]
    if band.size == 0 or h < 6:
        return None
    k = max(int(0.9 * h), 5)
    walls = cv2.morphologyEx(_ink(band), cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    cols = np.flatnonzero(walls.any(axis=0))
    if cols.size < 3:
        return None
    # one x per wall (a stroke is a few pixels wide)
    xs = [int(g.mean()) for g in np.split(cols, np.flatnonzero(np.diff(cols) > 2) + 1)]
    inside = [x for x in xs if x0 - 0.5 * h <= x <= x1 + 0.5 * h]
    if len(inside) < 3:
        return None
    pitch = float(np.median(np.diff(inside)))
    if not 0.5 * h <= pitch <= 2.5 * h:
        return None

    def even(a: int, b: int) -> bool:
        return abs(abs(b - a) - pitch) <= 0.25 * pitch

    def through_digits(chain: list[int]) -> bool:
        return len(chain) >= 3 and any(x0 - h <= c <= x1 + h for c in chain)

    # the longest chain of evenly spaced walls through the digits read (strokes closer
    # than a box's width, a table's border or a digit's own upright, are stepped over)
    best: list[int] = []
    for i in range(len(xs)):
        chain = [xs[i]]
        for x in xs[i + 1:]:
            if even(chain[-1], x):
                chain.append(x)
            elif x - chain[-1] > 1.25 * pitch:
                break
        if len(chain) > len(best) and through_digits(chain):
            best = chain
    return best or None


def _ink(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)[1]


def packed_digits(image: np.ndarray, walls: list[int], y0: int, y1: int) -> np.ndarray:
    """The ink of each box between ``walls`` (rows y0..y1), set side by side at the
    spacing of printed text, the walls left out: a line the recogniser reads as one."""
    band = image[y0:y1]
    if band.ndim == 2:
        band = cv2.cvtColor(band, cv2.COLOR_GRAY2BGR)
    h = band.shape[0]
    ink = _ink(band)
    margin = np.full((h, max(int(0.4 * h), 4), 3), 255, np.uint8)
    gap = np.full((h, max(int(0.12 * h), 2), 3), 255, np.uint8)
    parts = []
    for a, b in pairwise(walls):
        m = max(int(0.15 * (b - a)), 2)
        cell = ink[:, a + m:b - m]
        cols = np.flatnonzero(cell.any(axis=0))
        if cols.size == 0 or cell.any(axis=1).sum() < 0.2 * h:
            continue  # an empty box
        parts += [band[:, a + m + cols[0]:a + m + cols[-1] + 1], gap]
    return np.ascontiguousarray(np.hstack([margin, *parts[:-1], margin]))


def id_number_from_comb(image: np.ndarray, lines: list[OcrLine],
                        read: Callable[[list[np.ndarray]], list[tuple[str, float]]]
                        ) -> ExtractedField | None:
    """The insured's ID number read across its comb of boxes (``read``: a recogniser of
    line crops, e.g. ``OcrEngine.read_crops``), or None when the page has no such comb
    or its reading is not a valid number."""
    angle = text_skew(lines)
    back = None
    if abs(angle) > math.radians(0.5):
        # a photo's rows are not level: level them (the comb's walls are then upright)
        h, w = image.shape[:2]
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), math.degrees(angle), 1.0)
        image = cv2.warpAffine(image, turn, (w, h), flags=cv2.INTER_LINEAR,
                               borderValue=(255, 255, 255))
        lines = [ln.model_copy(update={"polygon": _moved(ln.polygon, turn)}) for ln in lines]
        back = cv2.invertAffineTransform(turn)
    boxes = [(ln, bbox(ln)) for ln in lines]
    labels = [b for ln, b in boxes if _id_label(fold_text(ln.text))]
    fragments = [(ln, b) for ln, b in boxes if _FRAGMENT.match(ln.text.replace(" ", ""))]
    for label in labels:
        beside = [b for _ln, b in fragments if b[0] > label[0] and _same_row(b, label)]
        # and the fragments on the row of those (the second line of a wrapped label,
        # 被保险人 / 证件号码：, sits lower than the comb's smaller pieces)
        row = sorted(((ln, b) for ln, b in fragments if b[0] > label[0]
                      and any(_same_row(b, o) for o in beside)), key=lambda t: t[1][0])
        if len(row) < 3:
            continue
        x0 = min(b[0] for _, b in row)
        x1 = max(b[2] for _, b in row)
        y0 = float(np.median([b[1] for _, b in row]))
        y1 = float(np.median([b[3] for _, b in row]))
        walls = comb_walls(image, (x0, y0, x1, y1))
        if walls is None:
            continue
        h = y1 - y0
        Y0, Y1 = max(int(y0 - 0.15 * h), 0), int(y1 + 0.15 * h)
        crop = packed_digits(image, walls, Y0, Y1)
        text, score = read([crop])[0]
        digits = re.sub(r"[^0-9X]", "", unicodedata.normalize("NFKC", text).upper())
        value = normalise("insured_id_number", digits)
        if value is None or not gb11643.is_valid(value):
            continue
        polygon = [(float(walls[0]), float(Y0)), (float(walls[-1]), float(Y0)),
                   (float(walls[-1]), float(Y1)), (float(walls[0]), float(Y1))]
        if back is not None:
            polygon = _moved(polygon, back)
        return ExtractedField(value=value, confidence=round(float(score), 4), boxes=[polygon],
                              raw=text, corrections=[NOTE])
    return None


#: Words of an ID-number label, also on the second line of a wrapped one (被保险人身 /
#: 份证号：).
_ID_WORDS = ("身份证", "份证号", "证件号", "证号")


def _id_label(text: str) -> bool:
    """Whether a line is (part of) the insured's ID-number label: the label table's, or
    a piece of a wrapped label holding its words, never another person's (申请人身份证号)."""
    hit = match_label(text, fuzzy=True)
    if hit is not None:
        return hit[0] == "insured_id_number"
    return len(text) <= 12 and any(w in text for w in _ID_WORDS)


def _moved(polygon, matrix: np.ndarray) -> list[tuple[float, float]]:
    pts = np.asarray(polygon, np.float64)
    out = pts @ matrix[:, :2].T + matrix[:, 2]
    return [(float(x), float(y)) for x, y in out]
