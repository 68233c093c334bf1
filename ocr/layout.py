"""Line geometry: group OCR lines into rows and read them left to right."""

from __future__ import annotations

from dataclasses import dataclass

from backoffice.models import OcrLine


@dataclass
class Row:
    lines: list[OcrLine]

    @property
    def text(self) -> str:
        return "".join(line.text for line in self.lines)

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


def group_rows(lines: list[OcrLine], overlap: float = 0.5) -> list[Row]:
    """Rows of lines whose vertical extents overlap by at least `overlap` of the
    shorter one, top to bottom, each row left to right."""
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
    return sorted(result, key=lambda r: (r.top + r.bottom) / 2)
