"""Chinese surnames: which names begin with a known surname (single, compound such as
夏侯 or 欧阳, or a longer Manchu clan name), for the decoder that reads a name whose
first characters the recogniser doubted (``ocr.decoders.choose_surname``).

The list (``surnames.txt``) is the npm package chinese-surnames (MIT), the Hundred
Family Surnames with later additions, plus a few modern surnames it lacks. A name whose
surname is not in it is not wrong: transliterated names of minorities (扎西顿珠,
买买提·艾力) have none, and rare surnames exist beyond any list. So the list only ever
decides between readings the recogniser itself proposed.

>>> surname_of("夏侯俊悦"), surname_of("王晓明"), surname_of("复侯俊悦")
('夏侯', '王', None)
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["surname_of", "surnames"]

_LIST = Path(__file__).with_name("surnames.txt")


@functools.cache
def surnames() -> frozenset[str]:
    """Every surname of the list."""
    return frozenset(line.strip() for line in _LIST.read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.startswith("#"))


def surname_of(name: str) -> str | None:
    """The longest known surname ``name`` begins with, leaving a given name of at least one
    character; None when it begins with none."""
    known = surnames()
    for n in (5, 4, 3, 2, 1):
        if len(name) > n and name[:n] in known:
            return name[:n]
    return None
