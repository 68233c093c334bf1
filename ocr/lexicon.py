"""Words as a prior on a text's doubted characters.

The recogniser scores each character alone: in 右膝前交叉韧带损伤 it gives 叉 0.75, 又
0.19 and 义 0.06, and the field's confidence (its least character's) sends a right
diagnosis to a person. A reader settles it by the word: 交叉 is a word, 交又 and 交义
are not. Here each doubted character's probability is weighed again, every candidate
the recogniser gave it by whether it makes a word with its neighbours in the value
(Bayes, with a word prior :data:`NON_WORD` times smaller for a character that makes
none, or whose words cover less of the value than another candidate's: 湘西凤凰支行
segments into words whole, 湘西风凰支行 does not, though 西风 is a word):

    P(c | pixels, words) = p(c) w(c) / sum over candidates c' of p(c') w(c')

The words are jieba's dictionary (349,000 words with their counts, the ones seen at
least :data:`MIN_COUNT` times) and the GB/T 2260 place names, with their short forms.

It only ever weighs the confidence, never the value: the reading stays what the
recogniser wrote. A doubted character that makes no word while a candidate would (交又
when 叉 stood by) loses confidence, so the field goes to a person; a candidate the
recogniser did not give is never considered.

The weighed score is calibrated by the text family's curve, as the score it stands for
(the probability that the value's least sure character is right): the value is still
the recogniser's own reading, so it is no other source of a value with a curve of its
own. On training seeds 722 and 723 (288 forms of every tier) the readings it weighed
were right as often as that curve says: see the README. A character the recogniser is sure of
(:data:`DOUBT` or more) keeps its probability: the word prior is for settling doubt, not
for raising it (a rare character that makes no word, 郫, is not doubted for that).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

from domain.gb11643 import place_core, place_names, prefecture_counties

from .text import fold_chinese

__all__ = ["DOUBT", "LEXICON_NOTE", "NON_WORD", "PLACE_NOTE", "in_word", "lexical_score",
           "near_counties", "words"]

#: How a value whose confidence the word prior weighed says so (its note).
LEXICON_NOTE = ("its doubted characters weighed by whether each of the recogniser's "
                "candidates makes a word")
#: A character's probability below which its candidates are weighed by the words.
#: At 0.95 (session 18), 颍 read 颖 at 0.965 in 交通银行阜阳颍东支行 (seed 724) and 挫 read
#: 控 at 0.953 in 挫裂伤 (seed 879) went straight through unweighed; at 0.99, on training
#: seeds 725 and 726 (288 forms, every tier), 106 readings were weighed and the 6 wrong
#: ones stayed at 0.61 or below.
DOUBT = 0.99
#: The word prior of a candidate that makes no word, against 1 for one that does.
NON_WORD = 0.1
#: jieba's words seen fewer times than this are left out (typos and one-offs).
MIN_COUNT = 3
#: The longest word looked for (place names run to 16 characters).
MAX_WORD = 16


@cache
def words() -> frozenset[str]:
    """The word list: jieba's dictionary words of two characters or more and the GB/T
    2260 place names, full (巴音郭楞蒙古自治州) and short (巴音郭楞)."""
    out: set[str] = set()
    with resources.files("jieba").joinpath("dict.txt").open(encoding="utf-8") as f:
        for line in f:
            word, count, *_ = line.split(" ")
            if len(word) >= 2 and int(count) >= MIN_COUNT:
                out.add(word)
    for name in place_names():
        out.add(name)
        core = place_core(name)
        if len(core) >= 2:
            out.add(core)
    return frozenset(out)


def in_word(text: str, i: int) -> bool:
    """Whether the character at ``i`` is part of a word of ``text`` (two characters or
    more, in :func:`words`).

    >>> in_word("右膝前交叉韧带损伤", 4), in_word("右膝前交又韧带损伤", 4)
    (True, False)
    """
    known = words()
    n = len(text)
    for a in range(max(0, i - MAX_WORD + 1), i + 1):
        for b in range(max(i + 1, a + 2), min(n, a + MAX_WORD) + 1):
            if text[a:b] in known:
                return True
    return False


def coverage(text: str) -> int:
    """How many characters of ``text`` the words cover at best (words that do not
    overlap, as a reader would segment it).

    >>> coverage("湘西凤凰支行"), coverage("湘西风凰支行")
    (6, 4)
    """
    known = words()
    best = [0] * (len(text) + 1)
    for j in range(1, len(text) + 1):
        best[j] = best[j - 1]
        for a in range(max(0, j - MAX_WORD), j - 1):
            if text[a:j] in known:
                best[j] = max(best[j], best[a] + j - a)
    return best[-1]


def _weights(text: str, i: int, chars: Sequence[str]) -> list[float]:
    """The word prior of each candidate for the character at ``i``: 1 for one that makes
    a word with its neighbours and lets the words cover as much of the text as any
    candidate does (湘西凤凰, not 湘西风凰, though 西风 is a word), else :data:`NON_WORD`."""
    texts = [text[:i] + c + text[i + 1:] for c in chars]
    makes = [in_word(t, i) for t in texts]
    covered = [coverage(t) if m else -1 for t, m in zip(texts, makes, strict=True)]
    top = max(covered)
    return [1.0 if m and c == top else NON_WORD
            for m, c in zip(makes, covered, strict=True)]


def lexical_score(value: str, alternatives: Sequence[Sequence[tuple[str, float]]],
                  char_probs: Sequence[float]) -> float | None:
    """The least probability over the characters of ``value`` once each doubted one
    (below :data:`DOUBT`) is weighed with its candidates by the words; None when the
    recogniser gave no candidates for a doubted character (nothing to weigh) or the
    lists do not match the value.

    ``alternatives[i]`` are the recogniser's candidates for ``value[i]``, its own
    reading first; ``char_probs[i]`` its probability. The probability the candidates
    leave (the blank, characters too unlikely to list) counts as making no word.

    >>> round(lexical_score("交叉", [[("交", 1.0)], [("叉", 0.75), ("又", 0.19)]], [1.0, 0.75]), 3)
    0.968
    >>> round(lexical_score("交又", [[("交", 1.0)], [("又", 0.75), ("叉", 0.19)]], [1.0, 0.75]), 3)
    0.277
    """
    if len(alternatives) != len(value) or len(char_probs) != len(value):
        return None
    least = 1.0
    for i, (char, p) in enumerate(zip(value, char_probs, strict=True)):
        if p >= DOUBT:
            least = min(least, p)
            continue
        cands = alternatives[i]
        if not cands:
            return None
        others = [(fold_chinese(c), q) for c, q in cands if fold_chinese(c) != char]
        rest = max(0.0, 1.0 - p - sum(q for _, q in others))
        weights = _weights(value, i, [char, *(c for c, _ in others)])
        mine = p * weights[0]
        total = mine + sum(q * w for (_, q), w in zip(others, weights[1:], strict=True)
                           ) + NON_WORD * rest
        least = min(least, mine / total if total > 0 else p)
    return least


#: How a value doubted for a near miss of a county of its city says so (its note; a
#: source without a calibration curve of its own, so a person confirms it).
PLACE_NOTE = ("a character after its city one character away from a county of that city, "
              "which the recogniser finds nearly as likely")


_ADMIN = frozenset("省市州盟区县旗地")


def near_counties(value: str) -> list[str]:
    """``value`` with a county or district of a prefecture it names put in place of the
    text after the prefecture, where that text is not one of its counties and differs
    from one in one character (交通银行阜阳颖东支行: 颍东 is a district of 阜阳, 颖东 is
    no place). A branch or a hospital named after its city names the county next; the
    recogniser can read a rare character of it as a common one, surely.

    >>> near_counties("交通银行阜阳颖东支行"), near_counties("交通银行阜阳颍东支行")
    (['交通银行阜阳颍东支行'], [])
    """
    out = []
    counties = prefecture_counties()
    for k in range(len(value) - 1):
        for n in (2, 3, 4):
            city = value[k:k + n]
            if city not in counties:
                continue
            rest = value[k + n:]
            if rest[:1] in _ADMIN or any(rest.startswith(c) for c in counties[city]):
                continue  # (锦州市中心医院: the city's own 市, not a county)
            for county in sorted(counties[city]):
                seen = rest[:len(county)]
                if len(seen) == len(county) and sum(
                        a != b for a, b in zip(seen, county, strict=True)) == 1:
                    out.append(value[:k + n] + county + rest[len(county):])
    return list(dict.fromkeys(out))
