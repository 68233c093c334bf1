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

import re
from collections.abc import Callable

import numpy as np

from domain.models import ExtractedField, OcrLine

from .layout import bbox

NOTE = "read again from the cell right of its label"
_SEX_LABEL = re.compile(r"^[性牲][别別]$")


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
        polygon = [(float(X0), float(Y0)), (float(X1), float(Y0)), (float(X1), float(Y1)),
                   (float(X0), float(Y1))]
        return ExtractedField(value=found.pop(), confidence=round(float(score), 4),
                              boxes=[polygon], raw=text, corrections=[NOTE])
    return None
