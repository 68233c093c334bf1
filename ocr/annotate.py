"""Draw a document's field boxes for a reviewer: pure OpenCV, no Prefect, no database.

The reviewer sees where each field was read. Fields that need attention are drawn in
red with their name; the others in green. Fields listed in ``redact`` (personal data
the reviewer does not have to correct) are blacked out, so the picture shows no more
personal data than the review form does.

>>> import numpy as np
>>> page = np.full((100, 200, 3), 255, np.uint8)
>>> boxes = {"name": FieldBoxes([[(10, 10), (90, 10), (90, 30), (10, 30)]])}
>>> out = annotate(page, boxes, highlight={"name"})
>>> out.shape, bool((out != 255).any())
((100, 200, 3), True)
>>> black = annotate(page, boxes, redact={"name"})
>>> int(black[20, 50].max())
0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

Point = tuple[float, float]

# BGR colours: attention (red), fine (green), redaction (black), a risk signal (orange).
ATTENTION = (40, 40, 220)
RISK = (0, 140, 255)
FINE = (60, 160, 60)
REDACTED = (0, 0, 0)


@dataclass
class FieldBoxes:
    """The polygons (page pixels) a field's value was read from."""

    polygons: list[list[Point]] = field(default_factory=list)


def _poly(points: Iterable[Point]) -> np.ndarray:
    return np.asarray([[round(x), round(y)] for x, y in points], dtype=np.int32).reshape(-1, 1, 2)


def annotate(image: np.ndarray, fields: Mapping[str, FieldBoxes], *,
             highlight: Iterable[str] = (), redact: Iterable[str] = (),
             risks: Mapping[str, list[Point]] | None = None,
             max_side: int = 1400) -> np.ndarray:
    """A copy of ``image`` with every field's boxes drawn, scaled to at most ``max_side``.

    ``highlight``: fields drawn in red and labelled (they need the reviewer's eye).
    ``redact``: fields filled black (personal data not under review). A field in both is
    highlighted, never redacted: the reviewer must see what they correct.
    ``risks``: label -> polygon of a flagged risk signal's region, drawn in orange.
    """
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    out = image.copy()
    highlight, redact = set(highlight), set(redact) - set(highlight)
    h, w = out.shape[:2]
    thickness = max(2, round(max(h, w) / 500))
    for name, boxes in fields.items():
        polys = [_poly(p) for p in boxes.polygons if len(p) >= 3]
        if not polys:
            continue
        if name in redact:
            for poly in polys:
                # Pad the box a little: detector boxes are tight and strokes poke out.
                x, y, bw, bh = cv2.boundingRect(poly)
                pad = max(2, bh // 6)
                cv2.rectangle(out, (x - pad, y - pad), (x + bw + pad, y + bh + pad),
                              REDACTED, thickness=-1)
            continue
        colour = ATTENTION if name in highlight else FINE
        cv2.polylines(out, polys, isClosed=True, color=colour, thickness=thickness)
        if name in highlight:
            x, y, _, _ = cv2.boundingRect(np.vstack(polys))
            scale = max(0.5, max(h, w) / 1600)
            (tw, th), base = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            top = max(0, y - th - base - 4)
            cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
            cv2.putText(out, name, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
    for label, polygon in (risks or {}).items():
        if len(polygon) < 3:
            continue
        poly = _poly(polygon)
        cv2.polylines(out, [poly], isClosed=True, color=RISK, thickness=thickness + 1)
        x, y, _, bh = cv2.boundingRect(poly)
        scale = max(0.5, max(h, w) / 1600)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = min(max(0, y + bh + 2), max(0, h - th - base - 4))
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 4), RISK, -1)
        cv2.putText(out, label, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    longest = max(h, w)
    if longest > max_side:
        f = max_side / longest
        out = cv2.resize(out, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    return out


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of an annotated page (small enough to embed in a Prefect artifact)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV only fails on an empty image
        raise ValueError("cannot encode the image as JPEG")
    return buf.tobytes()
