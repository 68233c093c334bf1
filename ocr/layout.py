"""Line geometry: group OCR lines into rows and read them left to right."""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.models import OcrLine


@dataclass
class Row:
    lines: list[OcrLine]

    @property
    def text(self) -> str:
        """The row read left to right. Where the detector's boxes overlap (a label box
        reaching into the value), the characters both boxes read are kept once."""
        parts: list[str] = []
        for k, line in enumerate(self.lines):
            text = line.text
            if k + 1 < len(self.lines) and text:
                x0, _, x1, _ = bbox(line)
                nxt0 = bbox(self.lines[k + 1])[0]
                char_w = max((x1 - x0) / len(text), 1.0)
                overlap = x1 - nxt0
                nxt_text = self.lines[k + 1].text
                if overlap > 0.5 * char_w:
                    drop = min(round(overlap / char_w), len(text) - 1)
                    text = text[: len(text) - drop] if drop > 0 else text
                elif overlap > -0.3 * char_w and nxt_text and text[-1] == nxt_text[0]:
                    text = text[:-1]  # one character caught by both touching boxes
            parts.append(text)
        return "".join(parts)

    @property
    def top(self) -> float:
        return min(bbox(line)[1] for line in self.lines)

    @property
    def bottom(self) -> float:
        return max(bbox(line)[3] for line in self.lines)

    @property
    def left(self) -> float:
        return min(bbox(line)[0] for line in self.lines)

    @property
    def confidence(self) -> float:
        return min(line.confidence for line in self.lines)


def bbox(line: OcrLine) -> tuple[float, float, float, float]:
    xs = [p[0] for p in line.polygon]
    ys = [p[1] for p in line.polygon]
    return min(xs), min(ys), max(xs), max(ys)


def text_skew(lines: list[OcrLine]) -> float:
    """The dominant text angle in radians, from the top edges of wide lines."""
    angles = []
    for line in lines:
        pts = line.polygon
        if len(pts) < 4:
            continue
        (x0, y0), (x1, y1) = pts[0], pts[1]
        if x1 - x0 > 2 * max(abs(pts[3][1] - pts[0][1]), 1.0):
            angles.append(math.atan2(y1 - y0, x1 - x0))
    if not angles:
        return 0.0
    angles.sort()
    return angles[len(angles) // 2]


def _deskewed(line: OcrLine, cos_a: float, sin_a: float) -> tuple[float, float, float, float]:
    xs, ys = [], []
    for x, y in line.polygon:
        xs.append(x * cos_a + y * sin_a)
        ys.append(-x * sin_a + y * cos_a)
    return min(xs), min(ys), max(xs), max(ys)


def group_rows(lines: list[OcrLine], overlap: float = 0.5) -> list[Row]:
    """Rows of lines whose vertical extents overlap by at least `overlap` of the
    shorter one, top to bottom, each row left to right.

    Geometry is taken after undoing the text's own skew, so a photo taken at an angle
    still groups its rows right.
    """
    angle = text_skew(lines)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    box = {id(line): _deskewed(line, cos_a, sin_a) for line in lines}

    def bbox(line: OcrLine) -> tuple[float, float, float, float]:
        return box[id(line)]

    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (bbox(ln)[1] + bbox(ln)[3]) / 2):
        _, top, _, bottom = bbox(line)
        placed = False
        for row in rows:
            r_top = min(bbox(x)[1] for x in row)
            r_bottom = max(bbox(x)[3] for x in row)
            inter = min(bottom, r_bottom) - max(top, r_top)
            shorter = min(bottom - top, r_bottom - r_top)
            if shorter > 0 and inter / shorter >= overlap:
                row.append(line)
                placed = True
                break
        if not placed:
            rows.append([line])
    result = [Row(sorted(row, key=lambda ln: bbox(ln)[0])) for row in rows]
    return sorted(result, key=lambda r: sum((bbox(ln)[1] + bbox(ln)[3]) / 2 for ln in r.lines)
                  / len(r.lines))
