"""Fraud and risk signals of a page, by signal processing on the CPU (OpenCV and numpy).

What the cloud ID-card APIs warn of, computed offline: a **photocopy** (grey or toner
colour, the pale security print washed out, halftone dots), a **recapture** (a photo of a
screen: the display's pixel grid and its moiré in the frequency domain, lifted blacks, a
cool white point), **tampering** (a region whose JPEG block grid or noise level differs
from the rest of the card: pasted text, a region saved again), a **temporary** resident
identity card, and for an ID front a missing **portrait** (no head-and-shoulders region
where the photo belongs). Each signal is a score in 0..1, a verdict and a reason that
names figures, never values; the portrait is cropped for the reviewer.

The features are measured here; how they weigh is a model per signal (boosted
decision stumps: a sum of "feature below or above a cut" votes, the log-odds),
``ocr/risk_model.json``, fitted on generated training sets (``bench/bench_risk.py --fit``)
with seeds never used for the reported figures. No model weights are downloaded.

Pure: no Prefect, no database.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from domain.models import DocType, Polygon, RiskReport, RiskSignal

from .preprocess import ID_CARD_ASPECT, Prepared, order_quad, rectify

MODEL_FILE = Path(__file__).with_name("risk_model.json")
#: Signals scored by the logistic model; portrait and temporary_id are decided directly.
MODELLED = ("photocopy", "recapture", "tampering")
#: Signals whose model knows an identity card's print (fitted on cards only).
CARD_ONLY = ("photocopy", "tampering")
ID_TYPES = {DocType.ID_CARD_FRONT, DocType.ID_CARD_BACK, DocType.ID_CARD_TEMPORARY}
FACE_TYPES = {DocType.ID_CARD_FRONT, DocType.ID_CARD_TEMPORARY}
#: The document types the signals' models were fitted on.
MODELLED_TYPES = ID_TYPES | {DocType.CLAIM_FORM}
#: An unrecognised page is judged as a card (photocopy and recapture, by the ID card's
#: models) when it shows a card's outline: long side over short side within this of an
#: ID card's 85.6/54 (a bank card has the same proportions; its read text, when there
#: is some, keeps it out: ``OTHER_TYPE_TEXT``).
CARD_OUTLINE_ASPECT = 0.15
#: A frame with no card edge in it is itself the card (a scan cropped to it) when its
#: proportions are this close to an ID card's (a camera's 3:2 and 4:3 stay out) and its
#: read text has some of an ID card's words (an invoice or a bank card scanned to its
#: edges has a card's proportions too).
CARD_FRAME_ASPECT = 0.08
#: The least classifier score of an ID card's side that counts as some of its words.
ID_TEXT = 0.1
#: An unrecognised page whose OCR text scores at least this for another type (two of a
#: claim form's words, an invoice's strong word or two weak ones, a UnionPay mark or a
#: card product) is not judged as an ID card.
OTHER_TYPE_TEXT = {DocType.CLAIM_FORM: 0.14, DocType.MEDICAL_INVOICE: 0.16,
                   DocType.BANK_CARD: 0.25}
#: The signals scored on an unrecognised page that shows a card.
UNKNOWN_CARD_SIGNALS = ("photocopy", "recapture")


@dataclass
class Measured:
    """The features of one page and the regions some of them point at."""

    features: dict[str, float] = field(default_factory=dict)
    #: feature name -> where it is strongest (a polygon in original pixels)
    regions: dict[str, Polygon] = field(default_factory=dict)


@dataclass
class Portrait:
    """The portrait found on an ID front: its crop (JPEG) and where it is."""

    present: float  # 0..1
    how: str
    jpeg: bytes | None = None
    region: Polygon | None = None  # original pixels


# --------------------------------------------------------------------------- helpers


#: Signals judged mostly by the card's colours: on a greyscale file they cannot tell a
#: copy from the card, and flag it for a person (the reason says so).
COLOUR_SIGNALS = ("photocopy",)
#: A greyscale file: at most this share of (sampled) pixels has channels more than
#: GREY_STEP apart, i.e. three equal channels. A photo or a colour scan of a grey copy
#: keeps some tint of the light or the paper and the JPEG's colour rounding (a clean
#: scan of a grey copy on near-neutral paper: 94% of its pixels a unit or two apart);
#: only a file saved grey (one channel, a 16-bit grey TIFF) has none.
GREY_SHARE, GREY_STEP = 0.001, 0


def is_greyscale(image: np.ndarray) -> bool:
    """Whether the image has no colour at all (one channel, or three equal ones)."""
    if image.ndim == 2 or image.shape[2] == 1:
        return True
    sample = image[::4, ::4].astype(np.int16)
    spread = np.maximum(np.abs(sample[..., 0] - sample[..., 1]),
                        np.abs(sample[..., 1] - sample[..., 2]))
    return float((spread > GREY_STEP).mean()) <= GREY_SHARE


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _card_mask(shape, prepared: Prepared, shrink: float = 0.06) -> np.ndarray:
    """The card (or the whole frame when no card edge was found) in original pixels,
    shrunk towards its centre so that its edge and the background stay out."""
    h, w = shape[:2]
    mask = np.zeros((h, w), np.uint8)
    if prepared.card_quad is None:
        mh, mw = int(h * shrink), int(w * shrink)
        mask[mh:h - mh, mw:w - mw] = 1
        return mask
    q = np.asarray(prepared.card_quad, np.float64)
    c = q.mean(axis=0)
    q = c + (q - c) * (1 - 2 * shrink)
    cv2.fillConvexPoly(mask, np.round(q).astype(np.int32), 1)
    return mask


def _hann(n: int) -> np.ndarray:
    w = np.hanning(n).astype(np.float32)
    return np.outer(w, w)


@lru_cache(maxsize=4)
def _radius(n: int) -> np.ndarray:
    f = np.fft.fftshift(np.fft.fftfreq(n)).astype(np.float32)
    return np.sqrt(f[None, :] ** 2 + f[:, None] ** 2)


def _windows(mask: np.ndarray, size: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of up to ``count`` windows lying wholly inside the mask."""
    h, w = mask.shape
    if h < size or w < size:
        return []
    integral = cv2.integral(mask.astype(np.uint8))
    step = max(size // 2, 16)
    found = []
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            s = (integral[y + size, x + size] - integral[y, x + size]
                 - integral[y + size, x] + integral[y, x])
            if s >= size * size:
                found.append((y, x))
    if len(found) <= count:
        return found
    pick = np.linspace(0, len(found) - 1, count).round().astype(int)
    return [found[i] for i in pick]


def _peakiness(patch: np.ndarray, bands: tuple[tuple[float, float], ...]) -> list[float]:
    """How far the strongest periodic component of the patch's fine detail stands out, in
    each band of frequencies (cycles/px): the band's largest spectral magnitude over its
    median; noise and text give a few, a pixel grid or a dot screen tens."""
    n = patch.shape[0]
    p = patch - cv2.GaussianBlur(patch, (0, 0), 3.0)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(p * _hann(n))))
    spec = cv2.blur(spec, (3, 3))
    r = _radius(n)
    out = []
    for lo, hi in bands:
        values = spec[(r >= lo) & (r <= hi)]
        med = float(np.median(values))
        out.append(max(1.0, float((values.max() + 1e-3) / (med + 1e-3))))
    return out


# --------------------------------------------------------------------------- features


def measure(original: np.ndarray, prepared: Prepared) -> Measured:
    """Every feature the modelled signals use (about 20-40 ms for a phone photo)."""
    out = Measured()
    f = out.features
    full_mask = _card_mask(original.shape, prepared)
    # Only the card's bounding box (on the 32-px grid from the origin, so that tiles and
    # the JPEG's 8-px blocks stay where they are): the table around it costs time.
    ys, xs = np.nonzero(full_mask[::4, ::4])
    h, w = full_mask.shape
    x0 = max(0, (int(xs.min()) * 4 - 8) // 32 * 32) if xs.size else 0
    y0 = max(0, (int(ys.min()) * 4 - 8) // 32 * 32) if ys.size else 0
    x1 = min(w, int(xs.max()) * 4 + 12) if xs.size else w
    y1 = min(h, int(ys.max()) * 4 + 12) if ys.size else h
    _edge_features(original, prepared, f)
    original = original[y0:y1, x0:x1]
    mask = full_mask[y0:y1, x0:x1]
    gray = _gray(original)
    # Frequency domain on the original pixels (rectifying would resample the grid away).
    wins: list[tuple[int, int]] = []
    for size in (192, 128, 96, 64):
        wins = _windows(mask, size, 4)
        if len(wins) >= 2:
            break
    if original.ndim == 3:
        chroma = original[..., 2].astype(np.float32) - original[..., 0].astype(np.float32)
    else:
        chroma = np.zeros_like(gray)
    hi_g, mid_g, hi_c = [], [], []
    for y, x in wins:
        hi, mid = _peakiness(gray[y:y + size, x:x + size], ((0.2, 0.5), (0.06, 0.2)))
        hi_g.append(hi)
        mid_g.append(mid)
        hi_c.append(_peakiness(chroma[y:y + size, x:x + size], ((0.12, 0.5),))[0])
    f["peak_hi"] = math.log(float(np.median(hi_g))) if hi_g else 0.0
    f["peak_hi_max"] = math.log(max(hi_g)) if hi_g else 0.0
    f["peak_mid"] = math.log(float(np.median(mid_g))) if mid_g else 0.0
    f["peak_chroma"] = math.log(float(np.median(hi_c))) if hi_c else 0.0
    # Colour of the rectified card, small: a copier's grey or toner colour.
    card = prepared.image if prepared.card_quad is not None else original
    ch, cw = card.shape[:2]
    small = cv2.resize(card, (256, max(8, round(256 * ch / cw))), interpolation=cv2.INTER_AREA)
    small = small[8:-8, 8:-8] if small.shape[0] > 24 else small
    if small.ndim == 3:
        lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
        a, bb = lab[..., 1] - 128, lab[..., 2] - 128
        f["chroma_std"] = float(np.sqrt(a.var() + bb.var()))
        dev = np.sqrt((a - np.median(a)) ** 2 + (bb - np.median(bb)) ** 2)
        f["chroma_p95"] = float(np.percentile(dev, 95))
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        f["saturation"] = float(hsv[..., 1].mean())
        f["blue_cast"] = float((small[..., 0].astype(np.float32) - small[..., 2]).mean())
    else:
        f["chroma_std"] = f["chroma_p95"] = f["saturation"] = f["blue_cast"] = 0.0
    _ink_colour(card, f)
    _paper_tint(card, f)
    sg = _gray(small)
    illum = cv2.GaussianBlur(sg, (0, 0), 12.0) + 1.0
    norm = sg / illum
    paper = norm > 0.85  # background, not text or portrait
    detail = norm - cv2.GaussianBlur(norm, (0, 0), 1.5)
    f["background_texture"] = float(detail[paper].std()) * 100 if paper.any() else 0.0
    f["paper_white"] = float((sg > np.percentile(sg, 99) - 4).mean())
    # A copier's levels clip the card's pale tint to the paper's white: much of the card
    # sits flat at its brightest, where a card's security print keeps varying.
    smooth = cv2.GaussianBlur(norm, (0, 0), 1.2)
    top = float(np.percentile(smooth, 98))
    f["flat_paper"] = float((smooth > 0.97 * top).mean())
    f["contrast"] = float((np.percentile(sg, 98) - np.percentile(sg, 2)) / (np.percentile(sg, 98) + 1))
    f["black_lift"] = float(np.percentile(sg, 1) / (np.percentile(sg, 99) + 1))
    _tamper_features(gray, mask, out)
    out.regions = {k: [(x + x0, y + y0) for x, y in poly] for k, poly in out.regions.items()}
    _smooth_strips(prepared, out)
    return out


def _edge_features(original: np.ndarray, prepared: Prepared, f: dict[str, float]) -> None:
    """What lies at and around the card's edge.

    ``corner_contrast``: a card's corners are rounded, so the very corner of the fitted
    quadrilateral shows the table; a copy cut from paper has square corners of the
    copy's own paper. The colour distance (Lab) between each corner's tip and the card's
    paper just inside it, the median of the four (a glare or a pale table at one corner
    does not decide). ``surround_dark``, ``surround_flat``: the band just outside the
    card: a screen's black background and bezel are darker than the card and flat (no
    grain, no weave); a table is rarely both."""
    f["corner_contrast"] = f["surround_dark"] = f["surround_flat"] = f["frame_band"] = 0.0
    if prepared.card_quad is None or prepared.image.ndim != 3:
        return
    card = prepared.image
    if card.shape[0] > card.shape[1]:
        card = np.ascontiguousarray(np.rot90(card))
    f["frame_band"] = _frame_band(card)
    ch, cw = card.shape[:2]
    small = cv2.resize(card, (200, max(8, round(200 * ch / cw))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    sh, sw = lab.shape[:2]
    tip, inner = 3, 10  # px of 200: the corner's arc spans about 7
    dists = []
    for ys, xs in (((0, tip), (0, tip)), ((0, tip), (sw - tip, sw)),
                   ((sh - tip, sh), (0, tip)), ((sh - tip, sh), (sw - tip, sw))):
        corner = np.median(lab[ys[0]:ys[1], xs[0]:xs[1]].reshape(-1, 3), axis=0)
        yi = slice(inner, inner + 6) if ys[0] == 0 else slice(sh - inner - 6, sh - inner)
        xi = slice(inner, inner + 6) if xs[0] == 0 else slice(sw - inner - 6, sw - inner)
        paper = np.median(lab[yi, xi].reshape(-1, 3), axis=0)
        dists.append(float(np.linalg.norm(corner - paper)))
    f["corner_contrast"] = float(np.median(dists))
    # the band outside the card, on a quarter-size grey of the frame
    oh, ow = original.shape[:2]
    gs = _gray(cv2.resize(original, (max(8, ow // 4), max(8, oh // 4)),
                          interpolation=cv2.INTER_AREA))
    q = np.asarray(prepared.card_quad, np.float64) / 4
    c = q.mean(axis=0)
    outer = np.zeros(gs.shape, np.uint8)
    inside = np.zeros(gs.shape, np.uint8)
    cv2.fillConvexPoly(outer, np.round(c + (q - c) * 1.12).astype(np.int32), 1)
    cv2.fillConvexPoly(inside, np.round(c + (q - c) * 1.02).astype(np.int32), 1)
    band = gs[(outer > 0) & (inside == 0)]
    card_in = gs[cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0]
    if band.size < 20 or card_in.size < 20:
        return
    paper = float(np.percentile(card_in, 75)) + 1.0
    f["surround_dark"] = 1.0 - float(np.median(band)) / paper
    detail = np.abs(gs - cv2.GaussianBlur(gs, (0, 0), 1.5))[(outer > 0) & (inside == 0)]
    f["surround_flat"] = -math.log(float(np.median(detail)) + 0.1)


def _frame_band(card: np.ndarray) -> float:
    """``frame_band``: how much darker than the card's paper the rectified edge's own
    band is (3 px of 200, corners left out; the third darkest of the four sides). The
    edge found round a card shown on a screen is often the device's: the screen's dark
    ground and bezel lie inside it; a card's own edge band is its paper."""
    ch, cw = card.shape[:2]
    g = _gray(cv2.resize(card, (200, max(48, round(200 * ch / cw))),
                         interpolation=cv2.INTER_AREA))
    h, w = g.shape
    b = 3
    sides = [g[:b, 20:-20], g[-b:, 20:-20], g[20:-20, :b], g[20:-20, -b:]]
    paper = float(np.percentile(g[h // 4:3 * h // 4, w // 4:3 * w // 4], 75)) + 1.0
    return 1.0 - sorted(float(np.median(side)) for side in sides)[2] / paper


def _paper_tint(card: np.ndarray, f: dict[str, float]) -> None:
    """``paper_tint``: how much the colour of the card's paper varies across it, seen
    coarsely (96 px across, where blur, sensor noise and JPEG blocks average away). A
    card's ground is printed in pale tints that change across it (blue-grey to warm on a
    front, blue-green to pink on a back); a copier's levels wash them out to its paper's
    one white. Only pixels within a few units of the card's median lightness count: the
    print is darker and a glare brighter."""
    if card.ndim != 3:
        f["paper_tint"] = 0.0
        return
    ch, cw = card.shape[:2]
    if ch > cw:
        card = np.ascontiguousarray(np.rot90(card))
        ch, cw = cw, ch
    small = cv2.resize(card, (96, max(8, round(96 * ch / cw))), interpolation=cv2.INTER_AREA)
    m = max(2, small.shape[0] // 16)
    lab = cv2.cvtColor(small[m:-m, 6:-6], cv2.COLOR_BGR2LAB).astype(np.float32)
    light = lab[..., 0]
    med = float(np.median(light))
    paper = np.abs(light - med) < 6
    if paper.sum() < 10:
        f["paper_tint"] = 0.0
        return
    a, b = lab[..., 1][paper], lab[..., 2][paper]
    f["paper_tint"] = float(np.sqrt(a.var() + b.var()))


def _ink_colour(card: np.ndarray, f: dict[str, float]) -> None:
    """The colours of the print: a card's blue-grey labels beside black values (and a red
    emblem on the back) against one toner's grey on a copy. Measured on the ink alone
    (pixels well below the local paper), so a colour cast of the light moves every ink
    alike and does not count.

    ``ink_chroma_std``, ``ink_hue_spread``: the spread of the ink's colour (relative to the
    paper where it sits) on strong ink. ``ink_colour_share``, ``ink_spread_p97``: the
    same on all the ink, fainter strokes too, its chroma first smoothed (a small,
    blurred, noisy and heavily compressed photo leaves a blue label pale and its colour
    speckled; the smoothing keeps the colour and drops the speckle): the share of ink
    pixels whose colour stands off the ink's median by more than a just-visible step (6
    units of Lab) and the 97th percentile of that distance. ``ink_tint_p90``,
    ``ink_tint_share``: that distance per unit of the ink's darkness (below). A copy's
    print is one colour; a card's labels (front) and emblem (back) are another. The
    card's outer 4% stays out: a fitted edge a few pixels off brings the table in."""
    zero = dict.fromkeys(("ink_chroma_std", "ink_hue_spread", "ink_colour_share",
                          "ink_spread_p97", "ink_tint_p90", "ink_tint_share"), 0.0)
    if card.ndim != 3:
        f.update(zero)
        return
    ch, cw = card.shape[:2]
    if ch > cw:  # a card is printed landscape; the measure only needs its proportions
        ch, cw = cw, ch
        card = np.ascontiguousarray(np.rot90(card))
    small = cv2.resize(card, (416, max(16, round(416 * ch / cw))), interpolation=cv2.INTER_AREA)
    mh = max(1, round(0.04 * small.shape[0]))
    small = small[mh:-mh, 16:-16]
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    light = lab[..., 0]
    # the paper around each pixel (blurred at a quarter of the size: the same, cheaper);
    # its lightness the local maximum first, so that dense text does not darken it
    sh, sw = lab.shape[:2]
    quarter = cv2.resize(lab, (sw // 4, max(2, sh // 4)), interpolation=cv2.INTER_AREA)
    quarter[..., 0] = cv2.dilate(quarter[..., 0], np.ones((3, 3), np.uint8))
    around = cv2.resize(cv2.GaussianBlur(quarter, (0, 0), 2.5), (sw, sh),
                        interpolation=cv2.INTER_LINEAR)
    ink = light < around[..., 0] * 0.75
    faint = light < around[..., 0] * 0.85
    if faint.sum() < 50:
        f.update(zero)
        return
    if ink.sum() >= 50:
        a, b = lab[..., 1][ink] - 128, lab[..., 2][ink] - 128
        # relative to the paper's own colour where the ink sits
        da, db = a - (around[..., 1][ink] - 128), b - (around[..., 2][ink] - 128)
        f["ink_chroma_std"] = float(np.sqrt(da.var() + db.var()))
        f["ink_hue_spread"] = float(np.percentile(np.hypot(da - np.median(da),
                                                           db - np.median(db)), 90))
    else:
        f["ink_chroma_std"] = f["ink_hue_spread"] = 0.0
    chroma = cv2.GaussianBlur(lab[..., 1:], (0, 0), 1.0) - around[..., 1:]
    da, db = chroma[..., 0][faint], chroma[..., 1][faint]
    ma, mb = float(np.median(da)), float(np.median(db))
    dist = np.hypot(da - ma, db - mb)
    f["ink_colour_share"] = float((dist > 6.0).mean())
    f["ink_spread_p97"] = float(np.percentile(dist, 97))
    # The ink's own colour, whatever the blur: a stroke blurred into the paper loses
    # darkness and colour alike, so their ratio (colour per unit of darkness) stays the
    # ink's. Measured at two blurs of the chroma: a fine one (p90 of the ratio) and a
    # coarser one (the share of ink whose colour is a strong one, as a blue label's).
    dark = 1.0 - light / (around[..., 0] + 1.0)
    for sigma, key in ((1.0, "ink_tint_p90"), (2.0, "ink_tint_share")):
        c = (chroma if sigma == 1.0 else
             cv2.GaussianBlur(lab[..., 1:], (0, 0), sigma) - around[..., 1:])
        ds = cv2.GaussianBlur(dark, (0, 0), sigma)
        sel = ds > 0.06
        if sel.sum() < 50:
            f[key] = 0.0
            continue
        ca, cb = c[..., 0][sel], c[..., 1][sel]
        ratio = np.hypot(ca - np.median(ca), cb - np.median(cb)) / ds[sel]
        f[key] = (float(np.percentile(ratio, 90)) if key == "ink_tint_p90"
                  else float((ratio > 30.0).mean()))


def _tile_mean(a: np.ndarray, th: int, tw: int, tile: int) -> np.ndarray:
    """The mean of each tile x tile block (area resampling by a whole factor)."""
    return cv2.resize(np.ascontiguousarray(a[:th * tile, :tw * tile], np.float32), (tw, th),
                      interpolation=cv2.INTER_AREA)


def _tile_grid(gray: np.ndarray, mask: np.ndarray, tile: int):
    h, w = gray.shape
    th, tw = h // tile, w // tile
    return th, tw, _tile_mean(mask, th, tw, tile)


def _tamper_features(gray: np.ndarray, mask: np.ndarray, out: Measured) -> None:
    """JPEG block-grid and noise-level anomalies of 32-px tiles inside the card."""
    f = out.features
    tile = 32
    th, tw, inside = _tile_grid(gray, mask, tile)
    if th < 3 or tw < 3:
        f.update(block_anom=0.0, block_phase=0.0, noise_low=0.0, noise_high=0.0)
        return
    g = gray[:th * tile, :tw * tile]
    # Blocking: the mean step across columns/rows of each phase mod 8, per tile.
    dh = np.abs(np.diff(g, axis=1, append=g[:, -1:]))
    dv = np.abs(np.diff(g, axis=0, append=g[-1:, :]))
    dh_t = dh.reshape(th, tile, tw, tile // 8, 8).mean(axis=(1, 3))  # th, tw, 8
    dv_t = dv.reshape(th, tile // 8, 8, tw, tile).mean(axis=(1, 4))  # th, 8, tw
    dv_t = np.transpose(dv_t, (0, 2, 1))
    eps = 0.5
    bh = dh_t / (dh_t.mean(axis=2, keepdims=True) + eps)
    bv = dv_t / (dv_t.mean(axis=2, keepdims=True) + eps)
    # The global grid phase (the last save's): where blocking is strongest overall.
    ph = int(np.argmax(dh.reshape(-1, tw * tile // 8, 8).mean(axis=(0, 1))))
    pv = int(np.argmax(dv.reshape(th * tile // 8, 8, -1).mean(axis=(0, 2))))
    strength = np.maximum(bh.max(axis=2), bv.max(axis=2))
    off_phase = np.maximum(bh.max(axis=2) - bh[..., ph], bv.max(axis=2) - bv[..., pv])
    flat = (dh_t.mean(axis=2) + dv_t.mean(axis=2)) / 2
    bright = _tile_mean(g, th, tw, tile)
    usable = (inside > 0.99) & (bright < 245) & (flat > 0.3)
    if usable.sum() < 6:
        f.update(block_anom=0.0, block_phase=0.0, noise_low=0.0, noise_high=0.0)
        return
    med = float(np.median(strength[usable]))
    anom = np.where(usable, strength - med, -1)
    f["block_anom"] = float(anom.max())
    phase = np.where(usable, off_phase, -1)
    f["block_phase"] = float(phase.max())
    # Noise: the second-difference magnitude per tile, each pixel's capped at twice the
    # card's median so that the strokes of text do not count as noise.
    lap = np.abs(cv2.filter2D(g, -1, np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]],
                                                np.float32)))
    cap = 2.0 * float(np.median(lap[::4, ::4])) + 0.1
    noise = _tile_mean(np.minimum(lap, cap), th, tw, tile) + 0.05
    nmed = float(np.median(noise[usable]))
    ratio = np.log(nmed / noise)
    low = np.where(usable, ratio, -9)
    high = np.where(usable, -ratio, -9)
    # A region, not one tile: the second largest of a tile and its neighbours.
    f["noise_low"] = float(_neighbour_support(low).max())
    f["noise_high"] = float(_neighbour_support(high).max())
    best = {"block_anom": anom, "block_phase": phase, "noise_low": _neighbour_support(low)}
    for name, grid in best.items():
        i, j = np.unravel_index(int(np.argmax(grid)), grid.shape)
        out.regions[name] = _box(j * tile, i * tile, (j + 1) * tile, (i + 1) * tile)


def _smooth_strips(prepared: Prepared, out: Measured, tile: int = 12) -> None:
    """Text-line shaped regions of the card far smoother than the rest of it.

    A field painted over and typed anew, or a region saved again at a low JPEG quality,
    has neither the card's fine print nor the camera's noise left. Measured per tile of
    the rectified card as the median absolute fine detail (robust to the strokes of
    text); smooth tiles on the card's paper that join into a strip no taller than a line
    of text count (a portrait's flat hair and clothes are dark)."""
    f = out.features
    if prepared.card_quad is not None and prepared.image.shape[0] > prepared.image.shape[1]:
        prepared = prepared.rotated(1)  # a card is printed landscape
    g = _gray(prepared.image)
    h, w = g.shape
    scale = 1000.0 / w
    if abs(scale - 1.0) > 0.05:
        g = cv2.resize(g, (1000, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = g.shape
    detail = np.abs(g - cv2.GaussianBlur(g, (0, 0), 1.0))
    th, tw = h // tile, w // tile
    m = 2 if prepared.card_quad is not None else max(2, th // 12)
    # the fine detail per tile, each pixel's capped so that strokes of text do not count
    cap = 2.0 * float(np.median(detail[::3, ::3])) + 0.05
    level = _tile_mean(np.minimum(detail, cap), th, tw, tile)
    bright = _tile_mean(g, th, tw, tile)
    usable = np.zeros((th, tw), bool)
    usable[m:th - m, m:tw - m] = True
    usable &= bright < 242
    if usable.sum() < 20:
        f.update(smooth_strip=0.0, smooth_depth=0.0)
        return
    ref = float(np.median(level[usable])) + 0.05
    ratio = (level + 0.02) / ref
    smooth = (usable & (ratio < 0.45)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(smooth, connectivity=4)
    paper = float(np.percentile(bright[usable], 75))
    best, depth, box = 0.0, 0.0, None
    for k in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[k])
        # a line of text: 2-6 tiles tall (24-72 px on a 1000 px card), wider than tall
        if bh > 6 or bw < 3 or bw < 1.5 * bh or area < 5:
            continue
        # on the card's paper, not in a portrait's flat hair or clothes
        if float(np.median(bright[labels == k])) < 0.8 * paper:
            continue
        if area > best:
            best = float(area)
            depth = float(np.median(ratio[labels == k]))
            box = (x, y, x + bw, y + bh)
    f["smooth_strip"] = best
    f["smooth_depth"] = depth
    if box is not None:
        x0, y0, x1, y1 = (v * tile / scale for v in box)
        out.regions["smooth_strip"] = prepared.map_polygon(_box(x0, y0, x1, y1))


def _box(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return [(float(x0), float(y0)), (float(x1), float(y0)), (float(x1), float(y1)),
            (float(x0), float(y1))]


def _neighbour_support(grid: np.ndarray) -> np.ndarray:
    """Each tile's value, but no more than its strongest 4-neighbour's (one odd tile is
    noise; two side by side are a region)."""
    padded = np.pad(grid, 1, constant_values=-9)
    neigh = np.maximum.reduce([padded[:-2, 1:-1], padded[2:, 1:-1],
                               padded[1:-1, :-2], padded[1:-1, 2:]])
    return np.minimum(grid, neigh)


# --------------------------------------------------------------------------- card outline


def _aspect(quad: np.ndarray) -> float:
    q = order_quad(quad)
    width = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    return float(max(width, height) / max(min(width, height), 1.0))


def card_outline(original: np.ndarray, prepared: Prepared, frame_is_card: bool = False
                 ) -> tuple[np.ndarray | None, str]:
    """A card's outline in the page (4x2, original pixels) and how it was found, or None.

    The document edge the preprocessing found, when it has an ID card's proportions;
    else a light rectangle of those proportions anywhere in the frame, holes included
    (the preprocessing keeps only outermost contours: a card shown on a screen lies in
    a hole of the light table around the screen's dark bezel). The rectangle must fill
    its rotated bounding box (a card's straight edges, not a cluttered region), cover
    8-95% of the frame and keep off the frame's edge. Failing both, with
    ``frame_is_card``, the frame itself when no document edge was found in it and it
    has a card's proportions (a scan cropped to the card)."""
    if prepared.card_quad is not None:
        q = np.asarray(prepared.card_quad, np.float64)
        if abs(_aspect(q) - ID_CARD_ASPECT) <= CARD_OUTLINE_ASPECT:
            return order_quad(q), "the document edge has an ID card's proportions"
    h, w = original.shape[:2]
    scale = min(1.0, 640.0 / max(h, w))
    small = cv2.resize(original, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else original
    sh, sw = small.shape[:2]
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    gray = cv2.GaussianBlur(gray.astype(np.uint8), (5, 5), 0)
    _, light = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light = cv2.morphologyEx(light, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    contours, _ = cv2.findContours(light, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    frame = float(sh * sw)
    best: tuple[float, np.ndarray, float] | None = None
    for contour in contours:
        area = cv2.contourArea(contour)
        if not 0.08 * frame <= area <= 0.95 * frame:
            continue
        rect = cv2.minAreaRect(contour)
        rw, rh = rect[1]
        if min(rw, rh) < 1:
            continue
        aspect = max(rw, rh) / min(rw, rh)
        if area / (rw * rh) < 0.88 or abs(aspect - ID_CARD_ASPECT) > CARD_OUTLINE_ASPECT:
            continue
        quad = cv2.boxPoints(rect)
        mx, my = 0.02 * sw, 0.02 * sh
        if sum(1 for x, y in quad if x < mx or y < my or x > sw - mx or y > sh - my) >= 2:
            continue
        if best is None or area > best[0]:
            best = (area, quad, aspect)
    if best is None:
        aspect = max(h, w) / max(min(h, w), 1)
        if (frame_is_card and prepared.card_quad is None
                and abs(aspect - ID_CARD_ASPECT) <= CARD_FRAME_ASPECT):
            return (np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64),
                    f"the frame has an ID card's proportions ({aspect:.2f})")
        return None, "no card outline in the image"
    return (order_quad(np.asarray(best[1], np.float64) / scale),
            f"a light rectangle of an ID card's proportions ({best[2]:.2f})")


def _text_hints(lines: list | None) -> tuple[str, str, bool]:
    """What the OCR lines of an unrecognised page say: the other document type they point
    to ("" when none), the side of an ID card they lean to ("front" unless the back's
    words outscore the front's) and whether they have some of an ID card's words."""
    if not lines:
        return "", "front", False
    from .classify import classify_text

    _, scores = classify_text(lines)
    front = scores.get(DocType.ID_CARD_FRONT.value, 0.0)
    back = scores.get(DocType.ID_CARD_BACK.value, 0.0)
    side = "back" if back > front else "front"
    for other, least in OTHER_TYPE_TEXT.items():
        if scores.get(other.value, 0.0) >= least:
            return other.value.replace("_", " "), side, False
    return "", side, max(front, back) >= ID_TEXT


def _card_prepared(original: np.ndarray, prepared: Prepared, quad: np.ndarray) -> Prepared:
    """The page rectified to the card of ``quad``, landscape. The frame itself (no
    document edge found) is measured as it is, as the models saw cropped scans."""
    h, w = original.shape[:2]
    frame = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    if (prepared.card_quad is None and np.allclose(quad, frame)) or (
            prepared.card_quad is not None
            and np.allclose(order_quad(prepared.card_quad), quad)):
        card = prepared
    else:
        warped, back = rectify(original, quad)
        card = Prepared(image=warped, to_original=back, card_quad=quad)
    h, w = card.image.shape[:2]
    return card.rotated(1) if h > w else card


# --------------------------------------------------------------------------- text geometry

#: The labels of an ID front's rows, as the recogniser reads them.
FRONT_LABELS = {"姓名": "name", "出生": "birth", "住址": "address", "公民身份号码": "id_number"}
#: A genuine front's value line against its label's line, per row, in label heights:
#: (bottom offset, top offset, height ratio); medians over the genuine fronts of the
#: generated set of seed 13 (72 fronts, their OCR line boxes).
FRONT_ROW_GEOMETRY = {"name": (0.0, -0.128, 1.122), "birth": (-0.025, -0.087, 1.032),
                      "address": (-0.073, -0.083, 1.048),
                      "id_number": (-0.093, -0.186, 1.175)}


def _bounds(polygon) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in polygon]
    ys = [float(p[1]) for p in polygon]
    return min(xs), min(ys), max(xs), max(ys)


def text_geometry(lines) -> tuple[float, Polygon | None]:
    """How far one field line of an ID front sits off the others: each value line's
    bottom, top and height against its row's label line (in label heights, less what a
    genuine front's row has), the largest difference of one row from the median of the
    others (0 when fewer than two rows pair up). A field typed anew in another font,
    size or baseline moves its own row only. Lines: OCR lines (``text``, ``polygon``) in
    the rectified card's pixels. Returns the figure and the odd line's polygon."""
    boxes = [(ln.text, _bounds(ln.polygon), ln.polygon) for ln in lines]
    labels = [(FRONT_LABELS[t], b) for t, b, _ in boxes if t in FRONT_LABELS]
    if len(labels) < 2:
        return 0.0, None
    lh = float(np.median([b[3] - b[1] for _, b in labels]))
    if lh <= 0:
        return 0.0, None
    rows: dict[str, tuple[tuple[float, float, float], object]] = {}
    for row, lb in labels:
        cands = []
        for t, b, poly in boxes:
            if t in FRONT_LABELS or b[0] < lb[2] - 0.2 * lh:
                continue
            overlap = min(b[3], lb[3]) - max(b[1], lb[1])
            if overlap < 0.5 * min(b[3] - b[1], lb[3] - lb[1]):
                continue
            cands.append((b[0], b, poly))
        if not cands:
            continue
        _, b, poly = min(cands, key=lambda c: c[0])
        expect = FRONT_ROW_GEOMETRY[row]
        rows[row] = (((b[3] - lb[3]) / lh - expect[0], (b[1] - lb[1]) / lh - expect[1],
                      (b[3] - b[1]) / lh - expect[2]), poly)
    if len(rows) < 2:
        return 0.0, None
    best, where = 0.0, None
    for k in range(3):
        for row, (e, poly) in rows.items():
            others = [o[0][k] for r, o in rows.items() if r != row]
            d = abs(e[k] - float(np.median(others)))
            if d > best:
                best, where = d, poly
    return float(best), [(float(x), float(y)) for x, y in where] if where is not None else None


# --------------------------------------------------------------------------- portrait

#: Where the photo is printed on an upright card, as shares of its width and height
#: (second-generation fronts: about x 0.62-0.92, y 0.12-0.70; temporary cards alike).
PORTRAIT_AREA = (0.56, 0.06, 0.97, 0.80)


@lru_cache(maxsize=1)
def _face_cascade():
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    return None if cascade.empty() else cascade


def _silhouette(small: np.ndarray) -> tuple[tuple | None, str, float]:
    """A head-and-shoulders region in the photo area: (its box, what it is, 0..1)."""
    sh, sw = small.shape
    dark = (small < 0.8 * _paper_light(small)).astype(np.uint8)
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    dark = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(dark)
    if count <= 1:
        return None, "", 0.0
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    # the head and the shoulders may part at a pale neck: a large region right above
    # or below the largest one and overlapping it across counts with it
    keep = [k]
    kx, kw = stats[k, cv2.CC_STAT_LEFT], stats[k, cv2.CC_STAT_WIDTH]
    for j in range(1, count):
        x, _, w_, _, area = (int(v) for v in stats[j])
        if (j != k and area >= 0.15 * stats[k, cv2.CC_STAT_AREA]
                and min(x + w_, kx + kw) - max(x, kx) >= 0.5 * min(w_, kw)):
            keep.append(j)
    union = np.isin(labels, keep)
    ys, xs = np.nonzero(union)
    bx, by = int(xs.min()), int(ys.min())
    bw, bh = int(xs.max()) - bx + 1, int(ys.max()) - by + 1
    a = int(union.sum())
    comp = union[by:by + bh, bx:bx + bw]
    rows = comp.sum(axis=1)
    top = float(np.median(rows[: max(1, bh // 4)]))
    bottom = float(rows[bh // 2:].max())  # the shoulders, however light their lower part
    fill = a / float(sh * sw)
    tall = bh / float(sh)
    taper = bottom / max(top, 1.0)
    # each test a 0..1 share of the way to a clear silhouette
    parts = [min(1.0, fill / 0.15), min(1.0, tall / 0.5),
             min(1.0, max(0.0, (taper - 1.0) / 0.3)), 1.0 if bw < 0.98 * sw else 0.5]
    present = float(np.prod(parts))
    if present <= 0:
        return None, "", 0.0
    box = (bx - 0.08 * bw, by - 0.08 * bh, bx + 1.08 * bw, by + bh + 0.02 * bh)
    return box, (f"a head-and-shoulders region ({fill:.0%} of the photo area, "
                 f"{tall:.0%} of its height)"), present


def _paper_light(small: np.ndarray) -> np.ndarray:
    """The paper's lightness around each pixel of the photo area: its largest values over
    a window wider than half the area (so a silhouette's dark does not count), smoothed.
    Against it a light falling off across the card (a shaded corner) stays paper."""
    sw = small.shape[1]
    k = max(3, int(0.6 * sw) | 1)
    # a glare is no paper: capped at the area's upper lightness first
    light = cv2.dilate(np.minimum(small, np.percentile(small, 85)), np.ones((k, k), np.uint8))
    return cv2.GaussianBlur(light, (0, 0), 0.15 * sw)


def find_portrait(prepared: Prepared, lines: list | None = None) -> Portrait:
    """The portrait on an upright ID front (:func:`_find_portrait`); when none is found
    where the photo belongs, again on a card within the frame (a photo of a screen: the
    edge found may be the device's, the card a light rectangle inside it), and with the
    front's read ``lines``, on the card placed by its text (:func:`card_from_text`: a
    white card on a pale table, whose edges were not found)."""
    found = _find_portrait(prepared)
    if found.present >= 0.5:
        return found
    image = prepared.image
    inner, _ = card_outline(image, Prepared(image=image, to_original=np.eye(3)))
    cards = []
    if inner is not None:
        cards.append(inner)
    if lines and prepared.card_quad is None:
        placed = card_from_text(lines)
        if placed is not None:
            cards.append(placed)
    for quad in cards:
        warped, back = rectify(image, quad)
        if warped.shape[0] > warped.shape[1]:
            continue
        card = Prepared(image=warped, to_original=prepared.to_original @ back,
                        card_quad=prepared.map_polygon([tuple(p) for p in quad]))
        again = _find_portrait(card)
        if again.present > found.present:
            found = again
        if found.present >= 0.5:
            break
    return found


#: Where an upright second-generation front prints its text, in shares of the card: the
#: identity number's right end (x) and baseline (y), where its digits start, and the
#: name row's baseline.
NUMBER_END = (0.87, 0.887)
NUMBER_START_X = 0.318
NAME_BASELINE_Y = 0.20
_ID_NUMBER_RE = re.compile(r"\d{17}[\dXx]")


def card_from_text(lines) -> np.ndarray | None:
    """The quadrilateral of an upright ID front placed by its printed text: the identity
    number's line gives the card's tilt, its right end and baseline where the card is,
    and the distance from the name's row down to the number's (or failing a name row,
    the number's own length) its size. None without an identity number's line."""
    number = next((ln for ln in lines
                   if _ID_NUMBER_RE.fullmatch(re.sub(r"\s", "", ln.text)[-18:])), None)
    if number is None or len(number.polygon) != 4:
        return None
    tl, tr, br, bl = (np.asarray(p, float) for p in number.polygon)
    along = (br - bl) + (tr - tl)
    length = float(np.linalg.norm(along))
    if length <= 0:
        return None
    u = along / length
    n = np.array([-u[1], u[0]])  # down the card
    names = [ln for ln in lines if ln is not number and re.sub(r"\s", "", ln.text).startswith(
        ("姓名", "姓"))]
    height = None
    if names:
        bottom = float(np.mean([np.dot(np.asarray(p, float), n) for p in names[0].polygon[2:]]))
        drop = float(np.dot(br, n)) - bottom
        if drop > 0:
            height = drop / (NUMBER_END[1] - NAME_BASELINE_Y)
    if height is None:
        if len(re.sub(r"\s", "", number.text)) != 18:
            return None  # the number run into its label: its length says nothing
        digits = float(np.linalg.norm(br - bl))
        height = digits / (NUMBER_END[0] - NUMBER_START_X) / ID_CARD_ASPECT
    width = height * ID_CARD_ASPECT
    origin = br - NUMBER_END[0] * width * u - NUMBER_END[1] * height * n
    return np.array([origin, origin + width * u, origin + width * u + height * n,
                     origin + height * n], np.float32)


def _find_portrait(prepared: Prepared) -> Portrait:
    """The portrait on an upright ID front: a head-and-shoulders silhouette (one large
    region darker than the card, reaching down to the photo's lower edge, narrower at
    the top (the head) than at the bottom (the shoulders)) or, failing that, a face
    (OpenCV's bundled frontal-face cascade). ``present`` 0 when neither is there."""
    card = prepared.image
    h, w = card.shape[:2]
    x0, y0 = int(PORTRAIT_AREA[0] * w), int(PORTRAIT_AREA[1] * h)
    x1, y1 = int(PORTRAIT_AREA[2] * w), int(PORTRAIT_AREA[3] * h)
    area = card[y0:y1, x0:x1]
    if area.size == 0:
        return Portrait(present=0.0, how="no portrait area")
    gray = _gray(area)
    scale = 160.0 / max(1, gray.shape[1])
    small = cv2.resize(gray, (160, max(8, round(gray.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    sw = small.shape[1]
    box, how, present = _silhouette(small)
    cascade = _face_cascade() if present < 0.5 else None
    if cascade is not None:  # not a silhouette: perhaps a real photo's face
        faces = cascade.detectMultiScale(small.astype(np.uint8), 1.15, 5,
                                         minSize=(int(0.25 * sw), int(0.25 * sw)))
        if len(faces):
            fx, fy, fw, fh = max(faces, key=lambda r: r[2] * r[3])
            box = (fx - 0.6 * fw, fy - 0.6 * fh, fx + 1.6 * fw, fy + 2.0 * fh)
            how, present = "a face", 1.0
    if box is None or present < 0.5:
        return Portrait(present=present, how=how or "no face or silhouette")
    bx0 = max(0, int(box[0] / scale) + x0)
    by0 = max(0, int(box[1] / scale) + y0)
    bx1 = min(w, int(box[2] / scale) + x0)
    by1 = min(h, int(box[3] / scale) + y0)
    crop = card[by0:by1, bx0:bx1]
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    region = prepared.map_polygon([(bx0, by0), (bx1, by0), (bx1, by1), (bx0, by1)])
    return Portrait(present=present, how=how, jpeg=buf.tobytes() if ok else None,
                    region=region)


# --------------------------------------------------------------------------- the model


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> dict:
    """The fitted models, ``{"signals": {signal: {bias, stumps, threshold}}}``
    (``bench/bench_risk.py --fit`` writes it)."""
    return json.loads(Path(path or MODEL_FILE).read_text(encoding="utf-8"))


def score(model: dict, features: dict[str, float]) -> float:
    """A signal's probability: the sum of its model's decision stumps ``[feature,
    threshold, value at or below, value above]`` is the log-odds (in a tree of two
    levels each value is itself such a stump)."""
    z = float(model["bias"])
    for entry in model["stumps"]:
        while isinstance(entry, list):  # a tree of two levels: its branches are entries
            name, threshold, below, above = entry
            entry = below if features.get(name, 0.0) <= threshold else above
        z += entry
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))


_WHY = {
    "photocopy": lambda f: (f"colour spread {f['chroma_std']:.1f} (a card's print is "
                            f"coloured), coloured ink {f.get('ink_tint_share', 0.0):.1%} of "
                            f"the print, paper tint {f.get('paper_tint', 0.0):.1f}, contrast "
                            f"{f['contrast']:.2f}, background texture "
                            f"{f['background_texture']:.1f}"),
    "recapture": lambda f: (f"periodic fine detail {math.exp(f['peak_hi']):.1f}x the "
                            f"spectrum's median (a pixel grid), in colour "
                            f"{math.exp(f['peak_chroma']):.1f}x, black level "
                            f"{f['black_lift']:.2f}, the edge's band "
                            f"{f.get('frame_band', 0.0):.0%} darker than the card"),
    "tampering": lambda f: (f"a smooth text-line region of {f['smooth_strip']:.0f} tiles "
                            f"({f['smooth_depth']:.2f} of the card's fine detail), JPEG "
                            f"block grid off its phase by {f['block_phase']:.2f}"),
}
_WHAT = {"photocopy": "looks like a photocopy", "recapture": "looks like a photo of a screen",
         "tampering": "a region differs from the rest of the card"}
_CLEAR = {"photocopy": "no sign of a photocopy", "recapture": "no sign of a screen",
          "tampering": "no region stands out"}


def _tamper_region(measured: Measured) -> Polygon | None:
    """Where the tampering evidence is: the smooth strip when there is one, else the tile
    whose JPEG grid is most off its phase."""
    if measured.features.get("smooth_strip", 0.0) > 0 and "smooth_strip" in measured.regions:
        return measured.regions["smooth_strip"]
    return measured.regions.get("block_phase")


def assess_risk(original: np.ndarray, prepared: Prepared, doc_type: DocType,
                model: dict | None = None, lines: list | None = None
                ) -> tuple[RiskReport, Portrait | None]:
    """The risk report of a page, and the portrait of an ID front.

    A page of a modelled type is judged as that type. An unrecognised page (``unknown``:
    a copied or re-photographed card whose text the OCR could not read well is one) is
    judged as an ID card for photocopy and recapture when it shows a card's outline
    (:func:`card_outline`), measured on that card (a front, unless its read text leans
    to the back's words); without one it is not assessed."""
    start = time.perf_counter()
    model = model or load_model()
    outline_note = ""
    side = "back" if doc_type is DocType.ID_CARD_BACK else "front"
    if doc_type is DocType.UNKNOWN:
        other, side, id_text = _text_hints(lines)
        quad, outline_note = card_outline(original, prepared, frame_is_card=id_text)
        if quad is not None and other:
            quad, outline_note = None, f"its text reads as a {other}, not an ID card"
        if quad is None:
            signals = {name: RiskSignal(
                score=0.0, flagged=False,
                reason=f"not assessed: not a recognised document and {outline_note}")
                for name in MODELLED}
            return _report(signals, doc_type, start), None
        prepared = _card_prepared(original, prepared, quad)
    measured = measure(original, prepared)
    f = measured.features
    if lines is not None and doc_type is DocType.ID_CARD_FRONT:
        # measured when the OCR lines are given; the fitted model does not weigh it (on
        # the development seeds it barely told forgeries from genuine fronts: README)
        f["text_geometry"], odd = text_geometry(lines)
        if odd is not None:
            measured.regions["text_geometry"] = prepared.map_polygon(odd)
    signals: dict[str, RiskSignal] = {}
    grey = is_greyscale(original)
    for name in MODELLED:
        if doc_type is DocType.UNKNOWN and name not in UNKNOWN_CARD_SIGNALS:
            signals[name] = RiskSignal(
                score=0.0, flagged=False,
                reason="not assessed: not a recognised document (a card's outline is "
                       "judged for photocopy and recapture only)")
            continue
        if doc_type not in MODELLED_TYPES and doc_type is not DocType.UNKNOWN:
            # The models were fitted on ID cards and claim forms only: an invoice's seal
            # and a bank card's printed picture are not a screen's pixel grid.
            signals[name] = RiskSignal(score=0.0, flagged=False,
                                       reason="not assessed: no model for this document type")
            continue
        if name in CARD_ONLY and doc_type not in ID_TYPES | {DocType.UNKNOWN}:
            # A paper form is printed in black on white: colour says nothing of a copy,
            # and its blank paper is as smooth as a painted-over field.
            signals[name] = RiskSignal(score=0.0, flagged=False,
                                       reason="not assessed: not an identity card")
            continue
        if name in COLOUR_SIGNALS and grey:
            # A file saved in greyscale (a scanner's grey mode, a 16-bit TIFF) has no
            # colour left to tell a copier's grey from the card's print: like the cloud
            # ID-card APIs' copy warning on a black-and-white image, a person looks.
            signals[name] = RiskSignal(
                score=1.0, flagged=True,
                reason="the image is greyscale: no colour to tell the card from a photocopy",
                region=_card_region(original, prepared))
            continue
        # a signal may have a model per side of the card (a back's emblem is red)
        m = model["signals"].get(f"{name}@{side}") or model["signals"][name]
        p = score(m, f)
        flagged = p >= m["threshold"]
        reason = f"{_WHAT[name] if flagged else _CLEAR[name]}: {_WHY[name](f)}"
        if doc_type is DocType.UNKNOWN:
            reason += (f" (not a recognised document; judged as an ID card {side}: "
                       f"{outline_note})")
        region = None
        if name == "tampering" and flagged:
            region = _tamper_region(measured)
        elif flagged:
            region = _card_region(original, prepared)
        signals[name] = RiskSignal(score=round(p, 4), flagged=flagged, reason=reason,
                                   region=region)
    _one_of_copy_or_screen(signals, model, side)
    portrait = None
    if doc_type in FACE_TYPES:
        portrait = find_portrait(prepared, lines if doc_type is DocType.ID_CARD_FRONT else None)
        missing = portrait.present < 0.5
        signals["portrait"] = RiskSignal(
            score=round(1.0 - portrait.present, 4), flagged=missing,
            reason=(f"no face region where the photo belongs ({portrait.how})" if missing
                    else f"portrait found: {portrait.how}"),
            region=portrait.region)
    return _report(signals, doc_type, start), portrait


def _card_region(original: np.ndarray, prepared: Prepared) -> Polygon:
    """Where a whole-card signal points: the card, or the whole frame when no card edge
    was found."""
    h, w = original.shape[:2]
    return ([(float(x), float(y)) for x, y in prepared.card_quad]
            if prepared.card_quad is not None else _box(0, 0, w - 1, h - 1))


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _one_of_copy_or_screen(signals: dict[str, RiskSignal], model: dict, side: str) -> None:
    """A page is a paper copy or a photo of a screen, not both: when both are flagged,
    the one whose score clears its threshold by less (in log-odds) is cleared (a
    screen's lifted blacks wash a card's colours out as a copier's do; a halftone dot
    screen is periodic as a pixel grid is)."""
    copy, screen = signals.get("photocopy"), signals.get("recapture")
    if not (copy and screen and copy.flagged and screen.flagged):
        return
    margins = {}
    for name in ("photocopy", "recapture"):
        m = model["signals"].get(f"{name}@{side}") or model["signals"][name]
        margins[name] = _log_odds(signals[name].score) - _log_odds(m["threshold"])
    weaker = min(margins, key=margins.get)
    stronger = "recapture" if weaker == "photocopy" else "photocopy"
    s = signals[weaker]
    signals[weaker] = RiskSignal(
        score=s.score, flagged=False,
        reason=f"{_CLEAR[weaker]}: {_WHAT[stronger]} rather (the stronger of the two); "
               f"{s.reason.split(': ', 1)[-1]}")


def _report(signals: dict[str, RiskSignal], doc_type: DocType, start: float) -> RiskReport:
    """The report with the temporary card's signal, and what it cost."""
    temporary = doc_type is DocType.ID_CARD_TEMPORARY
    signals["temporary_id"] = RiskSignal(
        score=1.0 if temporary else 0.0, flagged=temporary,
        reason=("a temporary resident identity card (临时居民身份证)" if temporary
                else "not a temporary identity card"))
    return RiskReport(signals=signals, seconds=round(time.perf_counter() - start, 4))
