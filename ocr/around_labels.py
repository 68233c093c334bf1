"""Values the detector missed, looked for again around their labels.

The text detector reads a whole page scaled down to 960 pixels on its longer side; a
short value (a two-character name in the corner of its box: 户名 / 庞瑄, seed 724 clean
0028) can then go unseen, though a person reads it at once. When a form's field has a
label on the page but no value, the neighbourhood of the label (its row to the right,
and a few rows under it, where a value sits in any layout) is detected again at the
page's own resolution, and the lines found there that the first pass did not have are
read and added to the page's lines. The form is then read again from all its lines,
and only the fields that had no value take the new reading: a field already found
keeps its own.

>>> regions([(100, 100, 200, 130)], (1000, 800))
[(70, 85, 650, 205)]
>>> regions([(100, 100, 200, 130), (100, 150, 200, 180)], (1000, 800))
[(70, 85, 650, 255)]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from domain.models import OcrLine

from .layout import bbox

#: The note a value found this way carries. It is no calibration source of its own:
#: the value is the recogniser's reading of a line, paired with its label by the
#: extractor's geometry, as any other.
NOTE = "found by detecting the text around its label again at full resolution"
#: At most this many neighbourhoods per page (a page with more labels missing their
#: values is not read well enough for this to save it).
MAX_REGIONS = 4
#: A neighbourhood, in heights of its label: this far right of the label's end, this
#: far below its bottom, this far above its top and left of its start.
RIGHT, BELOW, ABOVE, LEFT = 15.0, 2.5, 0.5, 1.0
#: A line found again is new when at most this share of it lies in a line of the page.
NEW_OVERLAP = 0.3


def regions(labels: list[tuple[float, float, float, float]], shape: tuple[int, ...]
            ) -> list[tuple[int, int, int, int]]:
    """The neighbourhoods of these label boxes (x0, y0, x1, y1) on a page of ``shape``
    (height, width), those that overlap merged into one, top to bottom."""
    height, width = shape[:2]
    boxes = []
    for x0, y0, x1, y1 in labels:
        h = max(y1 - y0, 1.0)
        boxes.append([max(0, int(x0 - LEFT * h)), max(0, int(y0 - ABOVE * h)),
                      min(width, int(x1 + RIGHT * h)), min(height, int(y1 + BELOW * h))])
    boxes.sort(key=lambda b: b[1])
    merged: list[list[int]] = []
    for b in boxes:
        for m in merged:
            if b[0] < m[2] and m[0] < b[2] and b[1] < m[3] and m[1] < b[3]:
                m[:] = [min(m[0], b[0]), min(m[1], b[1]), max(m[2], b[2]), max(m[3], b[3])]
                break
        else:
            merged.append(b)
    return [tuple(m) for m in merged]


def _poly_box(poly: np.ndarray) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _is_new(poly: np.ndarray, known: list[tuple[float, float, float, float]]) -> bool:
    x0, y0, x1, y1 = _poly_box(poly)
    area = max((x1 - x0) * (y1 - y0), 1e-6)
    for a0, b0, a1, b1 in known:
        w, h = min(x1, a1) - max(x0, a0), min(y1, b1) - max(y0, b0)
        if w > 0 and h > 0 and w * h > NEW_OVERLAP * area:
            return False
    return True


def lines_around(image: np.ndarray, lines: list[OcrLine],
                 labels: list[tuple[float, float, float, float]],
                 detect: Callable[[np.ndarray], list[np.ndarray]],
                 crop: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 read: Callable[[list[np.ndarray]], list[tuple]],
                 threshold: float) -> list[OcrLine]:
    """The lines around these labels that the page's lines do not have: detected again
    in each neighbourhood (:func:`regions`, at most :data:`MAX_REGIONS`), read, and
    kept when read at ``threshold`` or better. ``read`` gives (text, score[,
    alternatives, char_probs]) per crop."""
    known = [bbox(ln) for ln in lines]
    found: list[np.ndarray] = []
    for x0, y0, x1, y1 in regions(labels, image.shape)[:MAX_REGIONS]:
        for poly in detect(np.ascontiguousarray(image[y0:y1, x0:x1])):
            poly = np.asarray(poly, np.float32).reshape(4, 2) + np.float32((x0, y0))
            if _is_new(poly, known):
                found.append(poly)
                known.append(_poly_box(poly))
    if not found:
        return []
    out = []
    for poly, reading in zip(found, read([crop(image, p) for p in found]), strict=True):
        text, score = reading[0], reading[1]
        if not text.strip() or score < threshold:
            continue
        out.append(OcrLine(text=text, confidence=score,
                           polygon=[(float(x), float(y)) for x, y in poly],
                           alternatives=reading[2] if len(reading) > 2 else [],
                           char_probs=reading[3] if len(reading) > 3 else []))
    return out
