"""OpenCV preprocessing: find and rectify the document, turn it upright, judge its quality.

Every geometric step is a 3x3 matrix; `Prepared.to_original` maps a point of the
prepared image back to the decoded (EXIF-upright) original, so OCR boxes can be
reported where a person sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from domain.models import Polygon, QualityMetric, QualityReport

ID_CARD_ASPECT = 85.6 / 54.0
A4_ASPECT = 297.0 / 210.0
# Rectified documents are resampled to a width the detector reads well; the detector
# itself never sees more than its side limit (960 by default).
CARD_WIDTH = 1000
PAGE_WIDTH = 1400


@dataclass
class Prepared:
    image: np.ndarray
    to_original: np.ndarray  # 3x3: prepared pixel -> original pixel
    card_quad: np.ndarray | None = None  # 4x2 in original pixels, clockwise from top-left
    rotation: int = 0
    notes: list[str] = field(default_factory=list)

    def map_polygon(self, polygon: Polygon) -> Polygon:
        pts = np.asarray(polygon, dtype=np.float64).reshape(-1, 1, 2)
        mapped = cv2.perspectiveTransform(pts, self.to_original).reshape(-1, 2)
        return [(round(float(x), 1), round(float(y), 1)) for x, y in mapped]

    def rotated(self, quarter_turns: int) -> Prepared:
        """The same page turned clockwise by 90° steps, with the mapping kept."""
        k = quarter_turns % 4
        if k == 0:
            return self
        h, w = self.image.shape[:2]
        image = np.ascontiguousarray(np.rot90(self.image, -k))
        # Matrix taking rotated coordinates back to the unrotated image.
        if k == 1:  # clockwise 90: (x', y') = (h-1-y, x) -> (x, y) = (y', h-1-x')
            back = np.array([[0, 1, 0], [-1, 0, h - 1], [0, 0, 1]], dtype=np.float64)
        elif k == 2:
            back = np.array([[-1, 0, w - 1], [0, -1, h - 1], [0, 0, 1]], dtype=np.float64)
        else:  # counter-clockwise 90: (x', y') = (y, w-1-x) -> (x, y) = (w-1-y', x')
            back = np.array([[0, -1, w - 1], [1, 0, 0], [0, 0, 1]], dtype=np.float64)
        return Prepared(
            image=image,
            to_original=self.to_original @ back,
            card_quad=self.card_quad,
            rotation=(self.rotation + 90 * k) % 360,
            notes=list(self.notes),
        )


def order_quad(pts: np.ndarray) -> np.ndarray:
    """Order four points clockwise starting at the top-left."""
    pts = np.asarray(pts, dtype=np.float64).reshape(4, 2)
    center = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - center[1], pts[:, 0] - center[0])
    pts = pts[np.argsort(angles)]  # clockwise in image coordinates (y down)
    start = int(np.argmin(pts.sum(axis=1)))
    return np.roll(pts, -start, axis=0)


def find_document_quad(image: np.ndarray) -> np.ndarray | None:
    """The four corners of the card or page lying in a photo, or None if it fills the frame.

    Looks for the largest convex quadrilateral with a document-like aspect ratio among
    the contours of several edge and brightness masks, on a downscaled copy.
    """
    h, w = image.shape[:2]
    scale = 640.0 / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    if scale >= 1:
        scale = 1.0
    sh, sw = small.shape[:2]
    frame_area = float(sh * sw)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    masks = []
    edges = cv2.Canny(blurred, 20, 80)
    edges = cv2.dilate(edges, np.ones((5, 5), np.uint8), iterations=2)
    masks.append(cv2.morphologyEx(edges, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8)))
    _, otsu = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    masks.append(cv2.morphologyEx(otsu, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)))
    # Saturation separates a pale card from a coloured table or cloth.
    sat = cv2.cvtColor(cv2.GaussianBlur(small, (7, 7), 0), cv2.COLOR_BGR2HSV)[:, :, 1]
    _, sat_mask = cv2.threshold(sat, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    masks.append(cv2.morphologyEx(sat_mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)))
    # Distance from the background colour (sampled along the frame's border) finds a
    # light card on a light table, where edges are faint.
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (9, 9), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
    border = np.concatenate([lab[:4].reshape(-1, 3), lab[-4:].reshape(-1, 3),
                             lab[:, :4].reshape(-1, 3), lab[:, -4:].reshape(-1, 3)])
    dist = np.linalg.norm(lab - np.median(border, axis=0), axis=2)
    dist = cv2.normalize(dist, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, bg_mask = cv2.threshold(dist, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    masks.append(cv2.morphologyEx(bg_mask, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8)))

    # (contour, the edge contrast it needs)
    candidates = []
    for mask in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        candidates += [(c, 6.0) for c in sorted(contours, key=cv2.contourArea, reverse=True)[:5]]
    # A pale page on a pale table: its faint outline breaks up, and the largest edge
    # contour is the print block inside it. The hull of all the larger edge pieces is
    # the page; its edges must still step, if only a little.
    edge_pieces, _ = cv2.findContours(masks[0], cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    edge_pieces = [c for c in edge_pieces if cv2.contourArea(c) >= 0.002 * frame_area]
    if edge_pieces:
        candidates.append((cv2.convexHull(np.concatenate(edge_pieces)), 3.0))
    best: tuple[float, np.ndarray] | None = None
    for contour, min_contrast in candidates:
        area = cv2.contourArea(contour)
        if area < 0.06 * frame_area or area > 0.97 * frame_area:
            continue
        quad = _quad_from_contour(contour)
        if quad is None:
            continue
        quad_area = cv2.contourArea(quad.astype(np.float32))
        if quad_area < 0.06 * frame_area or quad_area > 0.97 * frame_area:
            continue
        # The contour must fill its quadrilateral: a card, not a cluttered region.
        fill = area / max(quad_area, 1.0)
        if not 0.85 <= fill <= 1.2:
            continue
        if not 1.3 <= _quad_aspect(quad) <= 1.8:
            continue
        if _touches_frame(quad, sw, sh) >= 3 or not _mostly_light(gray, quad):
            continue
        contrast = _edge_contrast(lab, quad)
        if contrast < min_contrast or _paper_outside(lab, quad):
            continue
        score = quad_area * (1.0 - abs(1.0 - fill)) * min(contrast, 40.0)
        if best is None or score > best[0]:
            best = (score, quad)
    if best is None:
        return None
    return order_quad(best[1] / scale)


def _touches_frame(quad: np.ndarray, width: int, height: int) -> int:
    """How many corners lie on the frame's edge: the background, not a card, does that."""
    mx, my = 0.03 * width, 0.03 * height
    return sum(1 for x, y in quad if x < mx or y < my or x > width - mx or y > height - my)


def _edge_contrast(lab: np.ndarray, quad: np.ndarray, offset: float = 5.0) -> float:
    """The weakest side's colour step across the quadrilateral's edge.

    A real card or page differs from what lies outside it along all four sides; a
    region inside a card (the portrait) or a card merged with the table does not.
    """
    h, w = lab.shape[:2]
    q = order_quad(quad)
    center = q.mean(axis=0)
    weakest = float("inf")
    for i in range(4):
        a, b = q[i], q[(i + 1) % 4]
        direction = b - a
        length = float(np.linalg.norm(direction))
        if length < 1:
            return 0.0
        normal = np.array([direction[1], -direction[0]]) / length
        mid = (a + b) / 2
        if np.dot(normal, mid - center) < 0:
            normal = -normal
        steps = []
        for t in np.linspace(0.15, 0.85, 15):
            p = a + t * direction
            xi, yi = p - normal * offset
            xo, yo = p + normal * offset
            if not (0 <= xo < w and 0 <= yo < h and 0 <= xi < w and 0 <= yi < h):
                continue  # the card runs off the frame here: no evidence either way
            steps.append(float(np.linalg.norm(lab[int(yi), int(xi)] - lab[int(yo), int(xo)])))
        if len(steps) >= 5:
            weakest = min(weakest, float(np.median(steps)))
    return 0.0 if weakest == float("inf") else weakest


def _paper_outside(lab: np.ndarray, quad: np.ndarray) -> bool:
    """Whether the band around the quadrilateral is the same paper as inside it.

    On a scan that fills the frame, the block of print (a form's table, its text
    area) is a light quadrilateral with strong edges; but outside it lies more of the
    same paper, where a document photographed on a table has the table around it.
    """
    mask = np.zeros(lab.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 255)
    inside = lab[mask > 0]
    band = (cv2.dilate(mask, np.ones((25, 25), np.uint8)) > 0) & (mask == 0)
    outside = lab[band]
    if inside.size == 0 or outside.size == 0:
        return False
    paper = np.median(inside[inside[:, 0] >= np.percentile(inside[:, 0], 60)], axis=0)
    return float(np.linalg.norm(np.median(outside, axis=0) - paper)) < 6.0


def _mostly_light(gray: np.ndarray, quad: np.ndarray) -> bool:
    """Cards and forms are light paper; a portrait photo or a dark table top is not."""
    mask = np.zeros(gray.shape, np.uint8)
    cv2.fillConvexPoly(mask, quad.astype(np.int32), 255)
    inside = gray[mask > 0]
    if inside.size == 0:
        return False
    # Relative to the frame's own brightness, so a dim photo of a card still counts.
    light = max(min(float(np.percentile(gray, 90)) * 0.75, 150.0), 60.0)
    return float((inside >= light).mean()) >= 0.5


def _quad_from_contour(contour: np.ndarray) -> np.ndarray | None:
    hull = cv2.convexHull(contour)
    perimeter = cv2.arcLength(hull, True)
    for eps in (0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, eps * perimeter, True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            return approx.reshape(4, 2).astype(np.float64)
    # Rounded card corners or a cut corner: fall back to the rotated bounding box.
    rect = cv2.minAreaRect(hull)
    return cv2.boxPoints(rect).astype(np.float64)


def _quad_aspect(quad: np.ndarray) -> float:
    q = order_quad(quad)
    top = np.linalg.norm(q[1] - q[0])
    bottom = np.linalg.norm(q[2] - q[3])
    left = np.linalg.norm(q[3] - q[0])
    right = np.linalg.norm(q[2] - q[1])
    long_side = max((top + bottom) / 2, (left + right) / 2)
    short_side = max(min((top + bottom) / 2, (left + right) / 2), 1.0)
    return long_side / short_side


def rectify(image: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp the quadrilateral to a flat rectangle; return the image and its back-mapping."""
    q = order_quad(quad)
    width = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    aspect = max(width, height) / max(min(width, height), 1.0)
    # Snap to the physical aspect ratio of the document when it is close: perspective
    # foreshortening otherwise squeezes the text.
    target_aspect = ID_CARD_ASPECT if abs(aspect - ID_CARD_ASPECT) < 0.12 else (
        A4_ASPECT if abs(aspect - A4_ASPECT) < 0.08 else aspect)
    long_px = CARD_WIDTH if target_aspect == ID_CARD_ASPECT else max(
        PAGE_WIDTH if target_aspect == A4_ASPECT else CARD_WIDTH, 1)
    if width >= height:
        out_w, out_h = long_px, round(long_px / target_aspect)
    else:
        out_w, out_h = round(long_px / target_aspect), long_px
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]],
                   dtype=np.float32)
    forward = cv2.getPerspectiveTransform(q.astype(np.float32), dst)
    warped = cv2.warpPerspective(image, forward, (out_w, out_h), flags=cv2.INTER_CUBIC,
                                 borderMode=cv2.BORDER_REPLICATE)
    return warped, np.linalg.inv(forward)


def prepare(image: np.ndarray) -> Prepared:
    """Find the document, flatten it and make it landscape-or-portrait as printed."""
    quad = find_document_quad(image)
    if quad is None:
        prepared = Prepared(image=image, to_original=np.eye(3))
        prepared.notes.append("no document edge found; using the whole frame")
        return prepared
    warped, back = rectify(image, quad)
    return Prepared(image=warped, to_original=back, card_quad=quad)


#: The detector's input side (``OcrEngine.det_limit_side_len``): a region of text is
#: zoomed to it when it holds less than :data:`ZOOM_MIN` of it.
ZOOM_SIDE = 960
ZOOM_MIN = 1.4
ZOOM_MAX = 3.0
#: room kept around the text, as a share of the text's longer side (a card front's
#: portrait side prints no text)
ZOOM_PAD = 0.3
#: text turned less than this (degrees) is not levelled
LEVEL_MIN_DEG = 4.0


def text_angle(polys: list[Polygon]) -> float:
    """The median slope (degrees, -45 to 45) of the long edges of lines at least twice
    as long as they are high; 0 when none is."""
    angles = []
    for poly in polys:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        (_cx, _cy), (w, h), _a = cv2.minAreaRect(pts.astype(np.float32))
        if max(w, h) < 2.0 * max(min(w, h), 1.0):
            continue
        edges = np.diff(np.vstack([pts, pts[:1]]), axis=0)
        dx, dy = edges[int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))]
        angle = float(np.degrees(np.arctan2(dy, dx)))
        angles.append((angle + 45.0) % 90.0 - 45.0)
    return float(np.median(angles)) if angles else 0.0


def zoom_on_text(prepared: Prepared, polys: list[Polygon]) -> Prepared | None:
    """The page's text levelled and enlarged to the detector's side, when it is small in
    the frame (a card far from the camera, no outline found): the detector misses lines
    a few pixels high that it finds at twice the size. None when the text fills the
    frame already (or there is none)."""
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys]
    if not pts:
        return None
    angle = text_angle(polys)
    if abs(angle) < LEVEL_MIN_DEG:
        angle = 0.0
    allpts = np.vstack(pts)
    center = allpts.mean(axis=0)
    turn = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle, 1.0)
    level = np.vstack([turn, [0.0, 0.0, 1.0]])
    moved = cv2.transform(allpts.reshape(-1, 1, 2), turn).reshape(-1, 2)
    x0, y0 = moved.min(axis=0)
    x1, y1 = moved.max(axis=0)
    pad = ZOOM_PAD * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    scale = min(ZOOM_MAX, ZOOM_SIDE / max(x1 - x0, y1 - y0, 1.0))
    if scale < ZOOM_MIN and angle == 0.0:
        return None
    scale = max(scale, 1.0)
    fit = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale], [0.0, 0.0, 1.0]])
    forward = fit @ level
    size = (round((x1 - x0) * scale), round((y1 - y0) * scale))
    image = cv2.warpAffine(prepared.image, forward[:2], size, flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    note = f"text levelled by {angle:.0f}° and enlarged {scale:.1f} times"
    return Prepared(image=image, to_original=prepared.to_original @ np.linalg.inv(forward),
                    card_quad=prepared.card_quad, rotation=prepared.rotation,
                    notes=[*prepared.notes, note])


def text_orientation(polys: list[Polygon]) -> str:
    """'horizontal' or 'vertical', from the shapes of detected text boxes."""
    tall = wide = 0
    for poly in polys:
        pts = np.asarray(poly, dtype=np.float64)
        w = pts[:, 0].max() - pts[:, 0].min()
        h = pts[:, 1].max() - pts[:, 1].min()
        if max(w, h) < 20:
            continue
        if h > 1.5 * w:
            tall += 1
        elif w > 1.5 * h:
            wide += 1
    return "vertical" if tall > wide else "horizontal"


# --- quality ---------------------------------------------------------------------------

def _metric(value: float, *, warn: float, fail: float, higher_is_worse: bool) -> QualityMetric:
    if higher_is_worse:
        verdict = "fail" if value >= fail else "warn" if value >= warn else "ok"
        threshold = warn
    else:
        verdict = "fail" if value <= fail else "warn" if value <= warn else "ok"
        threshold = warn
    return QualityMetric(value=round(float(value), 4), threshold=threshold, verdict=verdict)


def assess_quality(original: np.ndarray, prepared: Prepared) -> QualityReport:
    """Blur, brightness, glare, black-and-white copy, border cut off, too small."""
    img = prepared.image
    h, w = img.shape[:2]
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    # Measure sharpness at a fixed width so the value does not depend on resolution.
    norm = cv2.resize(gray, (800, max(1, round(800 * h / w))), interpolation=cv2.INTER_AREA)
    blur = cv2.Laplacian(norm, cv2.CV_64F).var()
    brightness = float(gray.mean())
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    glare = _glare_fraction(img)
    saturation = float(hsv[:, :, 1].mean())
    b, g, r = (img[:, :, i].astype(np.int16) for i in range(3))
    colour_spread = float(np.mean(np.abs(b - g) + np.abs(g - r) + np.abs(r - b)) / 3)
    metrics = {
        "blur": _metric(blur, warn=120.0, fail=30.0, higher_is_worse=False),
        "brightness": _brightness_metric(brightness, float(np.percentile(norm, 0.5))),
        "glare": _metric(glare, warn=0.005, fail=0.03, higher_is_worse=True),
        "black_and_white": QualityMetric(
            value=round(colour_spread, 3), threshold=2.0,
            verdict="warn" if colour_spread < 2.0 and saturation < 8 else "ok"),
    }
    if prepared.card_quad is not None:
        oh, ow = original.shape[:2]
        q = prepared.card_quad
        margin = 2.0
        cut = sum(1 for x, y in q if x <= margin or y <= margin or x >= ow - 1 - margin
                  or y >= oh - 1 - margin)
        metrics["border_cut_off"] = QualityMetric(
            value=float(cut), threshold=1.0, verdict="warn" if cut >= 1 else "ok")
        side = min(
            np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[1]),
            np.linalg.norm(q[3] - q[2]), np.linalg.norm(q[0] - q[3]))
    else:
        metrics["border_cut_off"] = QualityMetric(value=0.0, threshold=1.0, verdict="ok")
        side = float(min(original.shape[:2]))
    metrics["too_small"] = _metric(side, warn=350.0, fail=200.0, higher_is_worse=False)
    return QualityReport(
        metrics=metrics, card_found=prepared.card_quad is not None,
        rotation=prepared.rotation, width=w, height=h)


def _glare_fraction(img: np.ndarray) -> float:
    """Share of the document washed out by a reflection: sensor-clipped blobs inside it.

    White paper is bright too, so only clipped areas that do not touch the image edge
    (the paper margin and a scanner bed do), survive an opening and outshine the paper
    around them count, and of each only the share whose print is washed out
    (:func:`_washed_share`): paper clipped by strong uneven light keeps its ink black.
    """
    h, w = img.shape[:2]
    if max(h, w) > 1000:  # the share of the area does not need full resolution
        scale = 1000.0 / max(h, w)
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    smooth = cv2.medianBlur(img, 5)
    floor = smooth.min(axis=2)
    ink = img.min(axis=2)  # not smoothed: a median filter lifts thin strokes
    if np.median(floor) >= 245:
        # The paper itself is clipped white (a flat scan): a reflection cannot be told
        # from the paper, and a scanner makes none; white cells enclosed by a form's or
        # an invoice's rules are not glare.
        return 0.0
    mask = (floor >= 248).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    h, w = mask.shape
    area = 0.0
    for i in range(1, count):
        x, y, bw, bh, a = stats[i]
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            continue
        if _paper_around(floor, labels, i, (x, y, bw, bh)) >= GLARE_PAPER_WHITE:
            # The paper around it is as white: a white cell of a form's rules in a
            # brightly lit photo, not a reflection (which outshines the paper around it).
            continue
        area += int(a) * _washed_share(ink, labels, i, (x, y, bw, bh))
    return area / float(h * w)


#: The paper around a clipped area at least this bright: the area is white paper too.
GLARE_PAPER_WHITE = 244
#: The side (pixels, on the page scaled to 1,000) of the tiles a clipped area's print is
#: judged in, and the print a tile must hold to be judged (pixels not clipped).
GLARE_TILE = 32
GLARE_TILE_PRINT = 8
#: The closing (pixels) that joins a clipped area's parts across the print between them.
GLARE_CLOSE = 15
#: Darker than this is print (or print washed out), not paper short of clipping.
GLARE_PRINT = 232
#: A clipped area filling this share of its bounding box is a rectangle: a form's cell.
GLARE_CELL_FILL = 0.9
#: Print whose darkest pixel is lighter than this is washed out.
GLARE_WASHED = 185
#: Pixels this near the page's edge are not print.
GLARE_EDGE = 12


def _washed_share(ink: np.ndarray, labels: np.ndarray, i: int, box) -> float:
    """The share of clipped area ``i`` that a reflection washed out, from 0 to 1.

    - A rectangle (its parts, joined across the print between them, fill at least
      :data:`GLARE_CELL_FILL` of their bounding box; the page is levelled): a white cell
      of a form's rules, brighter than the shaded band of labels above it. 0.
    - Otherwise, of the tiles of the area that hold print (pixels between its parts
      darker than :data:`GLARE_PRINT`, not on the page's edge), the share whose darkest
      pixel is lighter than :data:`GLARE_WASHED`: a reflection adds light to the ink as
      to the paper (under a highlight that clips paper of 230 a black stroke is lighter
      than 195), while paper clipped by strong uneven light keeps its print dark.
    - An area with no print in it counts whole: what it hides cannot be told. 1.
    """
    x, y, bw, bh = (int(v) for v in box)
    H, W = labels.shape
    pad = GLARE_CLOSE // 2 + 1
    X0, Y0, X1, Y1 = max(x - pad, 0), max(y - pad, 0), min(x + bw + pad, W), min(y + bh + pad, H)
    blob = (labels[Y0:Y1, X0:X1] == i).astype(np.uint8)
    closed = cv2.morphologyEx(blob, cv2.MORPH_CLOSE, np.ones((GLARE_CLOSE, GLARE_CLOSE), np.uint8))
    if int(closed.sum()) >= GLARE_CELL_FILL * bw * bh:
        return 0.0
    region = ink[Y0:Y1, X0:X1]
    inside = np.zeros_like(blob, dtype=bool)  # not the page's own edge (a shadow, a cut)
    inside[max(0, GLARE_EDGE - Y0):max(0, H - GLARE_EDGE - Y0),
           max(0, GLARE_EDGE - X0):max(0, W - GLARE_EDGE - X0)] = True
    held = (closed > 0) & (blob == 0) & (region < GLARE_PRINT) & inside
    judged = washed = 0
    for ty in range(0, Y1 - Y0, GLARE_TILE):
        for tx in range(0, X1 - X0, GLARE_TILE):
            tile = held[ty:ty + GLARE_TILE, tx:tx + GLARE_TILE]
            if int(tile.sum()) < GLARE_TILE_PRINT:
                continue
            judged += 1
            washed += int(region[ty:ty + GLARE_TILE, tx:tx + GLARE_TILE][tile].min()
                          > GLARE_WASHED)
    return washed / judged if judged else 1.0


def _paper_around(floor: np.ndarray, labels: np.ndarray, i: int, box) -> float:
    """The median brightness of the paper (not the ink) in a band 5 to 15 pixels
    around component ``i`` of ``labels``."""
    x, y, bw, bh = (int(v) for v in box)
    H, W = floor.shape
    X0, Y0, X1, Y1 = max(x - 25, 0), max(y - 25, 0), min(x + bw + 25, W), min(y + bh + 25, H)
    blob = (labels[Y0:Y1, X0:X1] == i).astype(np.uint8)
    ring = (cv2.dilate(blob, np.ones((31, 31), np.uint8)) > 0) & (
        cv2.dilate(blob, np.ones((11, 11), np.uint8)) == 0)
    paper = floor[Y0:Y1, X0:X1][ring]
    paper = paper[paper > 150]
    return float(np.median(paper)) if paper.size else 255.0


#: Ink this dark or darker: a bright page is white paper, not an overexposed image.
INK_DARK = 110


def _brightness_metric(value: float, ink: float = 0.0) -> QualityMetric:
    """The mean brightness, judged: too dark, or too bright when the ink is washed out
    too (``ink``: the darkest half-percent's level; a sparse form scanned on white paper
    is bright on average, its print still black)."""
    washed = ink > INK_DARK
    if value < 50 or (value > 245 and washed):
        verdict = "fail"
    elif value < 80 or (value > 235 and washed):
        verdict = "warn"
    else:
        verdict = "ok"
    return QualityMetric(value=round(value, 2), threshold=80.0, verdict=verdict)


def edge_text_cut(lines_polys: list[Polygon], width: int, height: int) -> int:
    """How many text boxes touch the image edge: a sign the document is cut off."""
    count = 0
    for poly in lines_polys:
        pts = np.asarray(poly)
        if (pts[:, 0].min() <= 1 or pts[:, 1].min() <= 1 or pts[:, 0].max() >= width - 2
                or pts[:, 1].max() >= height - 2):
            count += 1
    return count
