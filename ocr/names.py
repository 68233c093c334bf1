"""A name's surname chosen among the known ones by the recogniser's likelihood.

A blurred surname is often read as another character, a surname or not (衡金 read 集金,
昝秋蓁 read 普秋蓁, 慕容 read 暴容). The recogniser's own candidates for the character
(``ocr.decoders.choose_surname``) rarely hold the right one when the blur is heavy, but
its output for the whole line still favours it. So each known surname
(``domain.surnames``: the Hundred Family Surnames and later ones) is put in place of
the reading's first one or two characters, the rest kept exactly as read, and every
such name is scored on the name's own line crop by the recogniser's likelihood (CTC,
every alignment summed; ``OcrEngine.score_texts``). The reading itself is one of the
candidates, so a rare surname read right (帕提古丽 has none) stays as it is unless
another is far likelier: the likeliest is taken only when it stands out from every
other candidate, the reading included, by :data:`SURNAME_MARGIN`. Nothing after the
surname is changed; the value keeps its raw reading and says how it was chosen.

>>> surname_candidates("集金", ["衡", "欧阳", "金"])[:4]
['集金', '衡金', '欧阳金', '金金']
>>> surname_candidates("暴容可善", ["慕容", "暴"])
['暴容可善', '慕容容可善', '慕容可善', '暴可善']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np

from .cells import closed_word

SURNAME_NOTE = ("its surname chosen among the known ones by the recogniser's likelihood "
                "of each, the rest as read")
#: The margin (natural log) by which the likeliest name must beat every other one,
#: the reading included.
SURNAME_MARGIN = 3.0
#: A name read with at least this confidence is left as it is (a clean scan's).
SURE_NAME = 0.97
_HAN_NAME = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]{2,6}")


def surname_candidates(name: str, surnames: Iterable[str]) -> list[str]:
    """``name`` itself, then each of ``surnames`` in place of its first character, then
    of its first two (when a character is left after them); no name twice."""
    out = [name]
    seen = {name}
    for cut in (1, 2):
        rest = name[cut:]
        if not rest:
            continue
        for surname in surnames:
            candidate = surname + rest
            if candidate not in seen:
                seen.add(candidate)
                out.append(candidate)
    return out


def choose_name(name: str, crop: np.ndarray, surnames: Iterable[str],
                score: Callable[[list[np.ndarray], list[str]], list[list[float]]],
                lead: str = "", tail: str = "") -> tuple[str, float] | None:
    """``name`` (read from ``crop`` between ``lead`` and ``tail``: a label and whatever
    else the line holds, as read)
    with the known surname the recogniser finds far likeliest, and its share of the
    candidates' likelihood; None when that is the reading itself, no name stands out,
    or ``name`` is not a name of Chinese characters alone (扎西·顿珠 and the like are
    left as read)."""
    if not _HAN_NAME.fullmatch(name):
        return None
    candidates = surname_candidates(name, surnames)
    scores = score([crop], [lead + c + tail for c in candidates])[0]
    chosen = closed_word([*map(float, scores), float("-inf")], candidates, SURNAME_MARGIN)
    if chosen is None or chosen[0] == name:
        return None
    return chosen
