"""Check boxes read from the pixels, when the recogniser did not read the tick.

A row of options (`□本人 □配偶 □子女 ...`) is read as text, and a ticked box usually
comes out as ☑ or ■; but a √ written inside a box is often read as an empty □, and a pen
tick over a box sometimes swallows the box glyph altogether. The image still shows which
box holds ink: each box's outline is found as straight strokes (a morphological opening
with a line as long as 0.4 x the row's height, across and down; 0.3 when none fit), and
the ink inside the outline is measured. The row decides only when it shows as many boxes as the text names
options, and exactly one box is clearly fuller than every other; otherwise a person
decides, as before.

>>> import numpy as np, cv2
>>> page = np.full((60, 400, 3), 255, np.uint8)
>>> for i, x in enumerate((20, 150, 280)):
...     _ = cv2.rectangle(page, (x, 15), (x + 28, 43), (0, 0, 0), 2)
...     if i == 1:
...         _ = cv2.line(page, (x + 5, 30), (x + 12, 39), (0, 0, 0), 3)
...         _ = cv2.line(page, (x + 12, 39), (x + 24, 19), (0, 0, 0), 3)
>>> [round(f, 1) for f in box_fills(page, [(15, 12), (390, 12), (390, 46), (15, 46)])]
[0.0, 0.4, 0.0]
"""

from __future__ import annotations

import re
from itertools import combinations

import cv2
import numpy as np

from domain.models import ExtractedField, OcrLine

from .extract.normalise import _RELATIONS, UNCHECKED, _option_marks, char_offsets, option_pattern

#: A ticked box holds at least this share of ink inside its outline ...
MIN_FILL = 0.15
#: ... and at least this many times the ink of the next fullest box of its row.
MARGIN = 2.0
#: A thin pen tick holds less ink (a stroke of 1-2 pixels): it is taken when it holds at
#: least this share and every other box of its row at most the next (a clean scan's
#: empty boxes; a photo's grain fills an empty box up to 0.16).
MIN_THIN_FILL = 0.08
THIN_OTHERS = 0.02
#: The note a value read from the pixels carries; ocr/calibration.py maps its score (how
#: clearly the ticked box stands out, :func:`tick_score`) by curves of its own.
NOTE = "ticked box read from the image"


def box_fills(image: np.ndarray, polygon) -> list[float]:
    """The share of ink inside each check box on the text line ``polygon``, left to right."""
    return [fill for _x, fill in _boxes(image, polygon)]


#: A box's side is at least this share of its line's height: the first, and the second
#: when no boxes fit at the first. The detector's box around a line is about twice as
#: tall as the text when the text is small (43 px around 20 px characters and 18 px
#: boxes, seed 721 photo 0026); but at the second, the strokes of some characters pass
#: for boxes too (本, 配: seed 721 photo 0011, which the first reads).
MIN_SIDES = (0.4, 0.3)
#: A line turned more than this many degrees is levelled before its boxes are looked for.
LEVEL_ANGLE = 1.0


def _levelled(image: np.ndarray, polygon) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The page turned about the line's centre so that the line runs level, and the
    line's polygon on it. A photo's page is levelled as a whole, yet a line may still
    run at a slant (a page bent or shot at an angle): its bounding box is then taller
    than its text, and the boxes, sized by it, are not found (seed 721, photo 0026: a
    line at 8 degrees)."""
    p = np.asarray(polygon, np.float32)
    (ax, ay), (bx, by) = p[0], p[1]
    angle = float(np.degrees(np.arctan2(by - ay, bx - ax)))
    if abs(angle) < LEVEL_ANGLE or abs(angle) > 45:
        return image, [tuple(map(float, pt)) for pt in p]
    cx, cy = p.mean(axis=0)
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, 1.0)
    h, w = image.shape[:2]
    turned = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return turned, [tuple(map(float, pt)) for pt in cv2.transform(p[None], m)[0]]


def _boxes(image: np.ndarray, polygon, min_side: float = MIN_SIDES[0]
           ) -> list[tuple[float, float]]:
    """(centre x in the image, share of ink inside) of each check box on a text line,
    left to right."""
    p = np.asarray(polygon, np.float32)
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    h = float(y1 - y0)
    if h < 6:
        return []
    X0, Y0 = max(int(x0 - 1.5 * h), 0), max(int(y0 - 0.4 * h), 0)
    X1, Y1 = int(x1 + 0.5 * h), int(y1 + 0.4 * h)
    crop = image[Y0:Y1, X0:X1]
    if crop.size == 0:
        return []
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    ink = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                                int(h) | 1, 15)
    k = max(int(min_side * h), 5)
    across = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    down = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(cv2.bitwise_or(across, down))
    boxes = []
    for i in range(1, n):
        x, y, w, bh = (int(v) for v in stats[i][:4])
        if not (min_side * h <= w <= 1.2 * h and min_side * h <= bh <= 1.4 * h
                and 0.6 <= w / bh):
            continue
        # The square's own sides: a pen tick's straight end over the box's corner (√
        # drawn past the top) belongs to the component but is no side.
        rows = np.flatnonzero((across[y:y + bh, x:x + w] > 0).mean(axis=1) >= 0.6)
        if len(rows) < 2:
            continue
        cols = np.flatnonzero(
            (down[y + rows[0]:y + rows[-1] + 1, x:x + w] > 0).mean(axis=0) >= 0.6)
        if len(cols) < 2:
            continue
        if cols[-1] - cols[0] + 1 < 0.85 * w:
            continue
        x, y, w, bh = x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0]) + 1, int(
            rows[-1] - rows[0]) + 1
        if not (min_side * h <= w <= 1.2 * h and min_side * h <= bh <= 1.2 * h
                and 0.75 <= w / bh <= 1.33):
            continue
        # An outline: a stroke along each side of the square.
        t = max(2, bh // 6)
        sides = (across[y:y + t, x:x + w].any(axis=0).mean(),
                 across[y + bh - t:y + bh, x:x + w].any(axis=0).mean(),
                 down[y:y + bh, x:x + t].any(axis=1).mean(),
                 down[y:y + bh, x + w - t:x + w].any(axis=1).mean())
        if min(sides) < 0.7:
            continue
        m = max(2, int(0.2 * w))
        inner = ink[y + m:y + bh - m, x + m:x + w - m]
        boxes.append((X0 + x + w / 2, float((inner > 0).mean()) if inner.size else 0.0))
    return sorted(boxes)


def _expected_boxes(line: OcrLine, options: tuple[str, ...]) -> tuple[list[str], list[float]]:
    """The options a row of check boxes names, and where each one's box should be along
    the line (image x): on its box glyph, with a glyph put back before each option
    whose box was not read (the text's characters spaced as :func:`char_offsets`
    spaces them)."""
    xs = [x for x, _y in line.polygon]
    x0, x1 = min(xs), max(xs)
    text, named, glyphs, last = "", [], [], 0
    for m in option_pattern(options).finditer(line.text):
        mark, option = m.groups()
        glyph = m.start(1) if mark else m.start(2)
        text += line.text[last:glyph]
        glyphs.append(len(text))
        text += (mark or UNCHECKED[0]) + line.text[glyph + len(mark):m.end()]
        named.append(option)
        last = m.end()
    # (the gap between two options is about a character wide, whatever the text's spaces)
    at = char_offsets(re.sub(r"\s+", "\u3000", text + line.text[last:]))
    return named, [x0 + (x1 - x0) * (at[g] + at[g + 1]) / 2 for g in glyphs]


def _fills_by_option(image: np.ndarray, line: OcrLine, options: tuple[str, ...]
                     ) -> tuple[list[str], list[float]] | None:
    """The options of a row and the ink in each one's box. The boxes found are matched
    to where the text says they are, up to a stretch and a shift (the text's spacing is
    only estimated): of the boxes, the ones in the text's order whose positions fit
    those places best (a character's strokes taken for a box, 母 or 口, fit none). None
    when no choice of boxes fits within a third of the line's height, or when two that
    fit tell different ticks apart."""
    named, where = _expected_boxes(line, options)
    if not named:
        return None
    ys = [y for _x, y in line.polygon]
    h = max(ys) - min(ys)
    for min_side in MIN_SIDES:
        fills = _matched(_boxes(image, line.polygon, min_side), where, h)
        if fills is not None:
            return named, fills
    return None


def _matched(boxes: list[tuple[float, float]], where: list[float], h: float
             ) -> list[float] | None:
    """The ink of the boxes that fit the places ``where`` the text puts them (see
    :func:`_fills_by_option`), one per place; None when none or two fits disagree."""
    if len(boxes) < len(where) or len(boxes) > len(where) + 4:
        return None
    if len(where) == 1:
        # A row's last option wrapped onto a line of its own: nothing to fit a stretch
        # to, so the one box near where its glyph was read.
        near = [fill for x, fill in boxes if abs(x - where[0]) <= h / 3]
        return near if len(near) == 1 else None
    fits = []
    w = np.asarray(where, float)
    design = np.vstack([w, np.ones_like(w)]).T
    for combo in combinations(range(len(boxes)), len(where)):
        bx = np.asarray([boxes[i][0] for i in combo], float)
        (scale, shift), *_ = np.linalg.lstsq(design, bx, rcond=None)
        residual = float(np.abs(design @ (scale, shift) - bx).max())
        if 0.75 <= scale <= 1.35 and residual <= h / 3:
            fits.append((residual, [boxes[i][1] for i in combo]))
    if not fits:
        return None
    fits.sort(key=lambda f: f[0])
    if len({int(np.argmax(f)) for _r, f in fits}) > 1:
        return None
    return fits[0][1]


def tick_score(best: float, second: float) -> float:
    """How clearly the fullest box stands out from the next: 1 - second / best, from 0.5
    (twice the ink, the least :func:`ticked_by_pixels` accepts) to 1 (no other ink).

    >>> tick_score(0.4, 0.0), tick_score(0.4, 0.2)
    (1.0, 0.5)
    """
    return 1.0 - second / best if best > 0 else 0.0


def ticked_by_pixels(image: np.ndarray, line: OcrLine,
                     options: tuple[str, ...] = _RELATIONS) -> tuple[str, float] | None:
    """The option whose box holds the tick, on a line naming two or more ``options``,
    and its :func:`tick_score`; None when the boxes do not match the options or no box
    is clearly the ticked one."""
    image, polygon = _levelled(image, line.polygon)
    found = _fills_by_option(image, line.model_copy(update={"polygon": polygon}), options)
    if found is None or len(found[0]) < 2:
        return None
    return _ticked(*found)


def _ticked(named: list[str], fills: list[float]) -> tuple[str, float] | None:
    """The option whose box is clearly the ticked one, and its :func:`tick_score`."""
    if len(named) < 2:
        return None
    order = sorted(range(len(fills)), key=lambda i: -fills[i])
    best, second = fills[order[0]], fills[order[1]]
    # A tick, or a thin pen tick among boxes with no ink at all.
    if not ((best >= MIN_FILL and best >= MARGIN * second)
            or (best >= MIN_THIN_FILL and second <= THIN_OTHERS)):
        return None
    return named[order[0]], tick_score(best, second)


def _a_row_of_boxes(marks: list[tuple[str, str]], text: str) -> bool:
    """Whether a line's options read as a row of check boxes: two options or more, one
    of them with its box glyph read, or three or more and nothing else on the line
    (本人 配偶子女 父母 其他: filled and empty boxes the recogniser read as nothing).
    Prose names options too (本人授权贵公司向医疗机构及其他有关单位查询), and its
    characters' strokes can pass for small boxes."""
    if len(marks) < 2:
        return False
    return any(mark for mark, _option in marks) or (
        len(marks) >= 3 and re.sub(r"\s+", "", text) == "".join(m + o for m, o in marks))


def relationship_from_boxes(image: np.ndarray, lines: list[OcrLine]) -> ExtractedField | None:
    """The relationship ticked on the page, from the pixels of its rows of options: one
    answer among all such rows, or None. Its confidence is the tick's score (the least
    over the rows), not yet calibrated."""
    found = []
    for row in _rows_of_boxes(lines):
        named: list[str] = []
        fills: list[float] = []
        for ln in row:
            turned, polygon = _levelled(image, ln.polygon)
            got = _fills_by_option(turned, ln.model_copy(update={"polygon": polygon}),
                                   _RELATIONS)
            if got is None:
                break
            named += got[0]
            fills += got[1]
        else:
            if (tick := _ticked(named, fills)) is not None:
                found.append((row, tick))
    if len({opt for _row, (opt, _s) in found}) != 1:
        return None
    row, (option, _score) = found[0]
    return ExtractedField(value=option, confidence=min(s for _row, (_o, s) in found),
                          boxes=[ln.polygon for ln in row],
                          raw=" ".join(ln.text for ln in row), corrections=[NOTE])


def _rows_of_boxes(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """The rows of relationship options on the page, each as its lines: a row of two
    options or more (:func:`_a_row_of_boxes`), with the line right under it when that
    line holds only options, each behind its box glyph, and starts where the row starts
    (a row wrapped in a narrow column: □本人 □父母 □配偶 □子女 over ☑其他, seed 879
    clean 0011)."""
    rows = []
    for ln in lines:
        marks = _option_marks(ln.text, _RELATIONS)
        if not _a_row_of_boxes(marks, ln.text):
            continue
        row = [ln]
        below = [o for o in lines if o is not ln and _continues(ln, o)]
        if len(below) == 1:
            row.append(below[0])
        rows.append(row)
    return rows


def _continues(row: OcrLine, line: OcrLine) -> bool:
    """Whether ``line`` is the rest of a row of options: right under it, starting where
    it starts, and nothing but options behind read box glyphs."""
    marks = _option_marks(line.text, _RELATIONS)
    if not marks or not all(mark for mark, _option in marks):
        return False
    if re.sub(r"\s+", "", line.text) != "".join(m + o for m, o in marks):
        return False
    r, o = np.asarray(row.polygon, float), np.asarray(line.polygon, float)
    h = r[:, 1].max() - r[:, 1].min()
    gap = o[:, 1].min() - r[:, 1].max()
    return -0.5 * h <= gap <= 0.8 * h and abs(o[:, 0].min() - r[:, 0].min()) <= h
