"""A card's address begins with its region: chosen among the real ones by the recogniser.

A resident identity card prints the holder's address from its province, its prefecture
(none in a municipality) and its county in GB/T 2260's names (湖南省湘潭市雨湖区…), over
two or three lines. On a blurred photo the recogniser misreads a character or two of
those names (湖南省浦潭市, 四川省甘投藏庆自治州). When the address as read does not begin
with a real region, the real regions it resembles (:func:`prefix_shortlist`) are put in
place of its beginning, the rest kept as read, and each such address is scored on the
address's own line crops by the recogniser's likelihood (CTC, every alignment summed;
``OcrEngine.score_texts``). The likeliest is taken only when it stands out from every
other region by :data:`ADDRESS_MARGIN`; the value then says how it was chosen and keeps
its raw reading. Nothing after the region is changed.

>>> prefix_shortlist("湖南省浦潭市雨湖区翠苑", ("湖南省湘潭市雨湖区", "湖南省湘潭市岳塘区", "河北省保定市"))
['湖南省湘潭市雨湖区', '湖南省湘潭市岳塘区']
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from domain.gb11643 import place_core
from domain.models import OcrLine

from .cells import closed_word
from .layout import bbox

ADDRESS_NOTE = ("its region (province, prefecture, county) chosen among the real ones "
                "(GB/T 2260) by the recogniser's likelihood of each")
#: The margin (natural log) by which the likeliest region must beat every other one.
ADDRESS_MARGIN = 3.0
#: At most this many regions, those sharing the most characters with the address's
#: beginning, are scored.
SHORTLIST = 60
#: A region is considered when at least this share of its own characters appear in the
#: address's beginning (湖南省浦潭市雨湖区: 5 of 湖南湘潭雨湖's 6; 咨浦川市浦江区 holds
#: 1 of 上海松江's 4).
MIN_SHARED = 0.4


def prefix_shortlist(text: str, prefixes: tuple[str, ...], size: int = SHORTLIST
                     ) -> list[str]:
    """The regions of ``prefixes`` whose own characters (without 省, 市, 县 and the like:
    :func:`domain.gb11643.place_core`) the beginning of ``text`` (as long as each region,
    and two more) holds at least :data:`MIN_SHARED` of, those holding the most first."""
    ranked = []
    for prefix in prefixes:
        own = place_core(prefix)
        head = set(text[:len(prefix) + 2])
        shared = sum(ch in head for ch in own)
        if own and shared >= MIN_SHARED * len(own):
            ranked.append((-shared / len(own), -len(prefix), prefix))
    ranked.sort()
    return [p for *_, p in ranked[:size]]


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def region_end(prefix: str, text: str) -> int:
    """Where the region ``prefix`` ends in ``text`` as read: the length of the beginning
    of ``text`` closest to it (edit distance; of equals, the one nearest its length).

    >>> region_end("湖南省湘潭市雨湖区", "湖南省浦潭市雨湖区翠苑"), region_end("四川省甘孜藏族自治州", "四川省甘孜自治州雅江县")
    (9, 8)
    >>> region_end("内蒙古自治区兴安盟科尔沁右翼前旗", "内蒙古")  # all of a short reading
    3
    """
    hi = min(len(text), len(prefix) + 3)
    options = range(min(max(0, len(prefix) - 3), hi), hi + 1)
    return min(options, key=lambda k: (_distance(prefix, text[:k]), abs(k - len(prefix))))


def candidate_lines(prefix: str, lines: list[str]) -> list[list[str]]:
    """The address's lines (``lines``, as read, from the region on) with the region
    ``prefix`` put in place of what was read of it, the rest as read: the lines keep
    their breaks after the region; a break inside it is tried where it was read and
    moved by as many characters as the region's reading was short or long.

    >>> candidate_lines("湖南省湘潭市雨湖区", ["湖南省浦潭市雨湖区翠苑", "29栋6单元"])
    [['湖南省湘潭市雨湖区翠苑', '29栋6单元']]
    >>> candidate_lines("四川省甘孜藏族自治州", ["四川省甘孜自治州雅", "江县石桥镇"])
    [['四川省甘孜藏族自治州雅', '江县石桥镇']]
    >>> candidate_lines("新疆维吾尔自治区吐鲁番地区托克逊县", ["新疆维尔自治区吐鲁番地", "区托克逊县新华镇"])
    [['新疆维吾尔自治区吐鲁番', '地区托克逊县新华镇'], ['新疆维吾尔自治区吐鲁番地', '区托克逊县新华镇']]
    """
    text = "".join(lines)
    end = region_end(prefix, text)
    new = prefix + text[end:]
    shift = len(prefix) - end
    breaks = np.cumsum([len(line) for line in lines])[:-1].tolist()
    options = [[b + shift if b >= end else b for b in breaks]]
    if any(b < end for b in breaks) and shift:
        options.append([b + shift for b in breaks])
    out = []
    for cuts in options:
        if any(b <= a for a, b in zip([0, *cuts], [*cuts, len(new)], strict=True)):
            continue
        split = [new[a:b] for a, b in zip([0, *cuts], [*cuts, len(new)], strict=True)]
        if split not in out:
            out.append(split)
    return out


def choose_region(lines: list[str], crops: list[np.ndarray], prefixes: tuple[str, ...],
                  score: Callable[[list[np.ndarray], list[str]], list[list[float]]],
                  lead: str = "") -> tuple[list[str], float] | None:
    """The address's lines (``lines``, each read from ``crops``, from the region on;
    ``lead``: what the first crop holds before it, a label as read) with the real region
    the recogniser finds far likeliest in place of the one read, and that region's
    share of the likelihood; None when none stands out or the address already begins
    with a real region."""
    text = "".join(lines)
    if not text or text.startswith(prefixes):
        return None
    shortlist = prefix_shortlist(text, prefixes)
    if len(shortlist) < 2:
        return None
    options = {p: candidate_lines(p, lines) for p in shortlist}
    per_line: list[dict[str, float]] = []
    for i, crop in enumerate(crops):
        texts = sorted({split[i] for splits in options.values() for split in splits})
        before = lead if i == 0 else ""
        scores = score([crop], [before + t for t in texts])[0]
        per_line.append(dict(zip(texts, scores, strict=True)))
    best: dict[str, tuple[float, list[str]]] = {}
    for prefix, splits in options.items():
        for split in splits:
            if len(split) != len(crops):
                continue
            total = sum(per_line[i][t] for i, t in enumerate(split))
            if prefix not in best or total > best[prefix][0]:
                best[prefix] = (total, split)
    regions = [p for p in shortlist if p in best]
    chosen = closed_word([best[p][0] for p in regions] + [float("-inf")], regions,
                         ADDRESS_MARGIN)
    if chosen is None:
        return None
    return best[chosen[0]][1], chosen[1]


# --------------------------------------------------------------------------- the tail

TAIL_NOTE = "its last characters read from the row under it (the detector found no text there)"
#: What a card's address puts alone on its last row when its line wraps just before the
#: end: 号, 6号, 1201室 (a clean scan's 北京市门头沟区人民路27 | 号, fresh seed 886).
ADDRESS_TAIL = re.compile(r"[\dA-Za-z\-]{0,4}[号室组村弄栋楼幢]")
#: The recogniser's score a tail must be read with.
TAIL_SCORE = 0.9


def tail_box(lines: list[OcrLine], address: list[OcrLine]) -> tuple[int, int, int, int] | None:
    """Where an address's last row would go on: one line's height under its last line
    (``address``: the lines it was read from), as wide, when no detected line lies
    there. None when one does (the address went on, or another field is there).

    >>> box = [(100, 200), (500, 200), (500, 230), (100, 230)]
    >>> tail_box([], [OcrLine(text="住址北京市", confidence=0.9, polygon=box)])
    (100, 234, 500, 267)
    """
    if not address:
        return None
    x0, y0, x1, y1 = bbox(max(address, key=lambda ln: bbox(ln)[3]))
    h = y1 - y0
    box = (int(x0), int(y1 + 0.15 * h), int(x1), int(y1 + 1.25 * h))
    for ln in lines:
        bx0, by0, bx1, by1 = bbox(ln)
        if box[0] <= (bx0 + bx1) / 2 <= box[2] and box[1] <= (by0 + by1) / 2 <= box[3]:
            return None
    return box


def address_tail(text: str, score: float) -> str | None:
    """The reading of the row under an address as the address's end (号, 12室), or None
    when it is not one or was not read clearly enough (:data:`TAIL_SCORE`).

    >>> address_tail(" 号", 0.97), address_tail("26号", 0.95), address_tail("号", 0.6)
    ('号', '26号', None)
    >>> address_tail("公民身份号码", 0.99) is None
    True
    """
    text = re.sub(r"\s", "", text)
    return text if score >= TAIL_SCORE and ADDRESS_TAIL.fullmatch(text) else None
