"""How common each character is in Chinese given names: what a reader knows before
looking at a blurred name (明 and 春 are everywhere in names, 阐 and 组 almost nowhere).

The counts (``given_name_chars.txt``) are the PyPI package ngender's (MIT): 32 million
characters of real given names, men's and women's added. They are only ever weighed
against what the recogniser reads on the card (``ocr.names``): a rare character read
clearly stays as read.

>>> round(given_char_log_prior("明") - given_char_log_prior("阐"), 1)
9.5
>>> common_given_chars(3)
('华', '明', '伟')
>>> given_char_log_prior("㐀") == given_char_log_prior("\U00020000")  # never seen: one half
True
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

__all__ = ["common_given_chars", "given_char_log_prior"]

_LIST = Path(__file__).with_name("given_name_chars.txt")
#: the count given a character the corpus never shows in a given name
UNSEEN_COUNT = 0.5


@functools.cache
def _counts() -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    for line in _LIST.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            ch, n = line.split("\t")
            counts[ch] = int(n)
    return counts, sum(counts.values())


def given_char_log_prior(ch: str) -> float:
    """The natural log of ``ch``'s share of the characters of given names."""
    counts, total = _counts()
    return math.log(counts.get(ch, UNSEEN_COUNT) / total)


@functools.cache
def common_given_chars(n: int) -> tuple[str, ...]:
    """The ``n`` commonest characters of given names, commonest first."""
    counts, _ = _counts()
    return tuple(sorted(counts, key=lambda c: -counts[c])[:n])
