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
    else the line holds, as read) with the known surname the recogniser finds far
    likeliest, and its share of the candidates' likelihood; None when that is the reading itself, no name stands out,
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


# --------------------------------------------------------------------------- given names

GIVEN_NOTE = ("a character of its given name chosen by the recogniser's likelihood and "
              "how common each is in given names")
#: How many of the commonest given-name characters are tried at each place (99.7% of
#: the characters of real given names).
GIVEN_VOCABULARY = 3000
#: The margin (natural log) by which a character must beat the one read, likelihood
#: and prior together, to replace it. At 3, rare characters read right on clean and
#: photographed forms of dev seed 869 were replaced by their common look-alikes (禛 by
#: 祯); at 4 none was, and as many misread ones were put right (字 -> 宇, 阐 -> 明).
GIVEN_MARGIN = 4.0
#: The weight of the prior against the recogniser's log-likelihood.
GIVEN_WEIGHT = 1.0


def choose_given(name: str, start: int, crop: np.ndarray,
                 score: Callable[[list[np.ndarray], list[str]], list[list[float]]],
                 vocabulary: tuple[str, ...], prior: Callable[[str], float],
                 lead: str = "", tail: str = "", weight: float = GIVEN_WEIGHT,
                 margin: float = GIVEN_MARGIN) -> tuple[str, float] | None:
    """``name`` with each character of its given name (from ``start``, after the surname)
    replaced by the character of ``vocabulary`` whose likelihood on ``crop`` (read
    between ``lead`` and ``tail``), plus ``weight`` times its log ``prior``, beats the
    character read by ``margin``; one place at a time, the others as chosen so far.
    Returns the name and the least share a chosen character had of its place's
    posterior; None when nothing changes."""
    if not _HAN_NAME.fullmatch(name) or start >= len(name):
        return None
    vocab = np.array(vocabulary)
    vocab_prior = np.array([prior(c) for c in vocabulary])  # once, not per place
    current, least = name, 1.0
    for i in range(start, len(name)):
        read = current[i]
        others = vocab != read
        chars = [read, *vocab[others].tolist()]
        texts = [lead + current[:i] + c + current[i + 1:] + tail for c in chars]
        likelihood = np.asarray(score([crop], texts)[0], dtype=np.float64)
        posterior = likelihood + weight * np.concatenate([[prior(read)], vocab_prior[others]])
        best = int(np.argmax(posterior))
        if best == 0 or posterior[best] - posterior[0] < margin:
            continue
        z = posterior - posterior[best]
        least = min(least, 1.0 / float(np.exp(z[np.isfinite(z)]).sum()))
        current = current[:i] + chars[best] + current[i + 1:]
    return None if current == name else (current, round(least, 4))
