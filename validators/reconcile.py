"""Reconciliation of two customer masters by identity number: set-based, pure logic.

The core system holds 18-digit numbers; the claims system holds 15- and 18-digit ones,
with typos and other spellings of the names. This module classes every row of both
masters into exactly one class (:data:`CLASSES`):

``matched``
    one core row and one claims row share the normalised key and the compared fields
    (name, birth date, phone, the check character) agree;
``mismatch``
    the pair joins but fields differ: the reason names them;
``matched_with_typo``
    the claims number is invalid or matches nothing, and the typo-tolerant match found
    exactly one unmatched core customer for it (same 17-digit body, one digit changed,
    two adjacent digits swapped, or same name + birth date + region); a pair found this
    way whose other fields differ is a ``mismatch`` whose reason includes
    ``id_number_typo``;
``missing_in_claims`` / ``missing_in_core``
    no partner on the other side;
``ambiguous``
    a key held by several rows on a side (two core customers whose numbers share the
    17-digit body, a claims record entered twice), or a typo-tolerant match with several
    candidates.

**The normalised key** is the 17-digit body of the 18-digit form, as an ``int64``: a
15-digit number gets the century ``19`` inserted (``to_18`` without the check digit).
For people born in the 1900s it is in one-to-one correspondence with the 15-digit form
(``to_15``), so old and new numbers join; unlike the 15-digit form it also exists for
people born since 2000 and for HK/MO/TW residence permits, who have no 15-digit number.
The check character is not part of the key: a pair whose 18-digit numbers differ only
there is a ``mismatch`` on ``id_number``.

**Compared fields** of a pair: the name once normalised (:func:`name_key`), the birth
date of the records (a blank one differs from a date), the phone (only when both sides
have one) and, when both numbers have 18 digits, the check character.

**The typo-tolerant match** takes the claims rows the exact join left without a class
(invalid numbers, and valid ones whose key no core row holds) and the core rows left
without one, and finds candidate pairs among them by equi-joins: the same 17-digit body
(only the check digit was wrong); one digit changed; two adjacent digits swapped (as
written, so a 15-digit number's region and year digits count as neighbours); or the same
name + birth date + region. A changed or swapped digit must be corroborated by the name
or the birth date. A claims row with exactly one candidate, itself the candidate of no
other row, forms a pair; rows with several are ``ambiguous``. A typo'd claims record
whose customer already has an exact partner (a duplicate with a typo) stays
``missing_in_core``.

Everything is vectorised with numpy/pandas over whole columns: the exact join is one hash
factorisation of both key columns; name normalisation (OpenCC ``t2s``, NFKC, spaces,
middle dots) runs only on pairs whose raw names differ, once per distinct name; the
typo-tolerant match works on the (small) sets of rows left over by the exact join.

>>> core = Master.from_columns(
...     ["11010519491231002X", "110105198001010016", "440301199001010012"],
...     ["李秀英", "张伟", "王芳"], ["1949-12-31", "1980-01-01", "1990-01-01"])
>>> claims = Master.from_columns(
...     ["110105491231002", "110105198001010019", "310101199001010012"],
...     ["李 秀英", "張偉", "赵敏"], ["1949-12-31", "1980-01-01", "1990-01-01"])
>>> result = reconcile(core, claims)
>>> {name: row["outcomes"] for name, row in result.counts().items() if row["outcomes"]}
{'matched': 1, 'matched_with_typo': 1, 'missing_in_claims': 1, 'missing_in_core': 1}
>>> describe(int(result.claims_reason[1]), int(claims.ids.status[1]))
'id_number_typo(same_body+name_birth_region),invalid_id_number(checksum)'
"""

from __future__ import annotations

import datetime
import enum
import functools
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from domain import gb11643
from validators.fields import normalize_name, parse_date

__all__ = [
    "CLASSES",
    "IdStatus",
    "Master",
    "Outcome",
    "ParsedIds",
    "Reason",
    "Reconciliation",
    "describe",
    "key_text",
    "name_key",
    "parse_dates",
    "parse_id_numbers",
    "parse_phones",
    "reconcile",
]


class Outcome(enum.IntEnum):
    """The class a row lands in (stored as uint8)."""

    MATCHED = 0
    MATCHED_WITH_TYPO = 1
    MISMATCH = 2
    MISSING_IN_CLAIMS = 3
    MISSING_IN_CORE = 4
    AMBIGUOUS = 5


CLASSES: tuple[str, ...] = tuple(o.name.lower() for o in Outcome)
#: The classes in which a core row and a claims row form one outcome (a pair).
PAIR_CLASSES = frozenset({Outcome.MATCHED, Outcome.MATCHED_WITH_TYPO, Outcome.MISMATCH})
_UNASSIGNED = 255


class Reason(enum.IntFlag):
    """Why a row is in its class (stored as uint32); fields that differ come first."""

    NAME = 1
    BIRTH_DATE = 2
    PHONE = 4
    ID_CHECK_DIGIT = 8  # same 17-digit body, different check character
    ID_TYPO = 16  # the numbers differ: paired by the typo-tolerant match
    VIA_SAME_BODY = 32
    VIA_ONE_DIGIT = 64
    VIA_TRANSPOSITION = 128
    VIA_NAME_BIRTH_REGION = 256
    DUPLICATE_IN_CORE = 512
    DUPLICATE_IN_CLAIMS = 1024
    SEVERAL_CANDIDATES = 2048
    INVALID_ID = 4096  # the claims number fails validation (see IdStatus)


FIELD_REASONS = Reason.NAME | Reason.BIRTH_DATE | Reason.PHONE | Reason.ID_CHECK_DIGIT
_REASON_TEXT = {
    Reason.NAME: "name",
    Reason.BIRTH_DATE: "birth_date",
    Reason.PHONE: "phone",
    Reason.ID_CHECK_DIGIT: "id_number",
    Reason.DUPLICATE_IN_CORE: "duplicate_key_in_core",
    Reason.DUPLICATE_IN_CLAIMS: "duplicate_key_in_claims",
}
_VIA_TEXT = {
    Reason.VIA_SAME_BODY: "same_body",
    Reason.VIA_ONE_DIGIT: "one_digit",
    Reason.VIA_TRANSPOSITION: "transposition",
    Reason.VIA_NAME_BIRTH_REGION: "name_birth_region",
}


class IdStatus(enum.IntEnum):
    """What validation says of a number, in the order :func:`gb11643.validate` checks."""

    VALID = 0
    MISSING = 1
    BAD_LENGTH = 2
    BAD_FORMAT = 3
    BAD_CHECKSUM = 4
    BAD_DATE = 5  # not a real date
    FUTURE_DATE = 6
    EARLY_DATE = 7
    UNKNOWN_PROVINCE = 8


_STATUS_TEXT = {
    IdStatus.MISSING: "missing",
    IdStatus.BAD_LENGTH: "length",
    IdStatus.BAD_FORMAT: "format",
    IdStatus.BAD_CHECKSUM: "checksum",
    IdStatus.BAD_DATE: "birth_date_not_real",
    IdStatus.FUTURE_DATE: "birth_date_in_future",
    IdStatus.EARLY_DATE: "birth_date_too_early",
    IdStatus.UNKNOWN_PROVINCE: "unknown_province",
}


def describe(reason: int, id_status: int = 0) -> str:
    """Spell a reason bitmask (and the claims number's status) as comma-separated words."""
    parts = [text for flag, text in _REASON_TEXT.items() if reason & flag]
    if reason & Reason.ID_TYPO:
        via = "+".join(text for flag, text in _VIA_TEXT.items() if reason & flag)
        parts.insert(0, f"id_number_typo({via})" if via else "id_number_typo")
    if reason & Reason.SEVERAL_CANDIDATES:
        parts.append("several_typo_candidates")
    if reason & Reason.INVALID_ID or id_status:
        parts.append(f"invalid_id_number({_STATUS_TEXT.get(IdStatus(id_status), 'invalid')})"
                     if id_status else "invalid_id_number")
    return ",".join(parts)


# --- column parsing -----------------------------------------------------------------

_P10 = 10 ** np.arange(16, -1, -1, dtype=np.int64)  # place values of the 17 body digits
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_EARLIEST_YEAR = 1870  # as gb11643: an earlier year is a misread, not a person


@functools.cache
def _known_provinces() -> np.ndarray:
    """A lookup table, by the first two digits, of provinces gb11643 knows (incl. 81-83)."""
    table = np.zeros(100, dtype=bool)
    for code in range(10, 100):
        body = f"{code}0000" + "19800101" + "001"
        try:
            gb11643.get_region(body + gb11643.calc_check_digit(body))
            table[code] = True
        except gb11643.ValidationError:
            pass
    return table


def _objects(values: Sequence | np.ndarray | pd.Series) -> np.ndarray:
    """The values as a 1-d object array, missing values (None/NaN/NA) as None."""
    if isinstance(values, pd.Series | pd.Index):
        if values.dtype == object:  # as read with na_filter=False: no copy, no NA scan
            return values.to_numpy()
        return values.to_numpy(dtype=object, na_value=None)
    arr = np.asarray(values, dtype=object)
    return arr.reshape(-1)


@dataclass(frozen=True)
class FixedText:
    """A text column as a byte matrix, as a plain CSV file holds it: row i is the UTF-8
    bytes ``mat[i, :lengths[i]]`` (what follows them is undefined). Parsing works on the
    matrix; only the odd rows are ever decoded to Python strings."""

    mat: np.ndarray  # uint8 (n, width)
    lengths: np.ndarray  # int64 (n,)

    def __len__(self) -> int:
        return len(self.lengths)

    def text(self, i: int) -> str:
        return bytes(self.mat[i, : self.lengths[i]]).decode("utf-8", "replace")

    def as_bytes(self) -> np.ndarray:
        """The column as a numpy bytes array (dtype S<width>)."""
        width = self.mat.shape[1]
        if width == 0:
            return np.zeros(len(self), dtype="S1")
        mat = self.mat * (np.arange(width) < self.lengths[:, None])
        return np.ascontiguousarray(mat, dtype=np.uint8).view(f"S{width}").reshape(-1)


TextColumn = Sequence | np.ndarray | pd.Series | FixedText


def _column(values: TextColumn):
    """The values ready for :func:`_fixed`, and a function giving row i's value."""
    if isinstance(values, FixedText):
        return values, values.text
    arr = _objects(values)
    return arr, arr.__getitem__


def _fixed(values: np.ndarray | FixedText, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Code points (n, width + 1) of the values' text and its length (width + 1: longer).

    One C-level conversion instead of a Python loop; a value longer than `width` shows
    as length width + 1 and goes to the callers' slow path. Missing values (None) read
    as the text 'None', which no fast path accepts. For a FixedText the "code points"
    are UTF-8 bytes: any non-ASCII text fails the fast paths and is decoded there.
    """
    if isinstance(values, FixedText):
        n, have = values.mat.shape
        if have == width + 1:
            return values.mat, values.lengths
        mat = np.zeros((n, width + 1), dtype=np.uint8)
        mat[:, : min(have, width + 1)] = values.mat[:, : width + 1]
        return mat, np.minimum(values.lengths, width + 1)
    text = np.array(values, dtype=f"<U{width + 1}")
    return text.view(np.uint32).reshape(len(values), width + 1), np.strings.str_len(text)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _real_date(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    dim = _DAYS[np.clip(m, 0, 12)] + (leap & (m == 2))
    return (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim)


def _today_int(today: datetime.date | None) -> int:
    today = today or datetime.date.today()
    return today.year * 10000 + today.month * 100 + today.day


def _fold_chars(mat: np.ndarray) -> np.ndarray:
    """Full-width digits and X to ASCII, x to X (the vectorised part of gb11643.compact)."""
    full = (mat >= 0xFF10) & (mat <= 0xFF19)
    mat = np.where(full, mat - 0xFEE0, mat)
    return np.where((mat == 0x78) | (mat == 0xFF38) | (mat == 0xFF58), 0x58, mat)


def _shape(strings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ASCII matrix (n, 18) of numbers of a valid shape and their length (15, 18 or 0)."""
    n = len(strings)
    mat, lengths = _fixed(strings, 18)
    mat = mat[:, :18]
    if mat.dtype == np.uint8:  # UTF-8 bytes: non-ASCII rows fail below, get decoded later
        small_x = mat == 0x78
        if small_x.any():
            mat = np.where(small_x, 0x58, mat).astype(np.uint8)
    else:
        unusual = ((mat > 0x7F) | (mat == 0x78)).any(axis=1)  # full-width forms, a small x
        if unusual.any():
            mat = mat.copy()
            mat[unusual] = _fold_chars(mat[unusual])
    digit = (mat >= 48) & (mat <= 57)
    ok15 = (lengths == 15) & digit[:, :15].all(axis=1)
    ok18 = (lengths == 18) & digit[:, :17].all(axis=1) & (digit[:, 17] | (mat[:, 17] == 0x58))
    out = np.where((ok15 | ok18)[:, None], mat, 0).astype(np.uint8)
    shape_len = np.zeros(n, dtype=np.uint8)
    shape_len[ok15] = 15
    shape_len[ok18] = 18
    return out, shape_len


def _digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits (n, width) of non-negative integers, zero-padded on the left."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.maximum(values, 0)[:, None] // powers) % 10 + 48).astype(np.uint8)


def _ascii_text(mat: np.ndarray) -> np.ndarray:
    """Rows of an ASCII byte matrix as an object array of str (trailing NULs dropped)."""
    mat = np.ascontiguousarray(mat)
    if mat.shape[1] == 0:
        return np.full(len(mat), "", dtype=object)
    return np.strings.decode(mat.view(f"S{mat.shape[1]}").reshape(-1), "ascii").astype(object)


def key_text(keys: np.ndarray) -> np.ndarray:
    """Normalised keys as 17-digit strings ('' for -1, no key), an object array."""
    keys = np.asarray(keys, dtype=np.int64)
    out = _ascii_text(_digit_matrix(keys, 17))
    out[keys < 0] = ""
    return out


@dataclass
class ParsedIds:
    """A column of identity numbers, parsed: the key and what validation says.

    ``key`` is the 17-digit body of the 18-digit form (-1 when the number has no such
    shape); ``length`` 15 or 18 (0: neither shape); ``check`` the ASCII check character
    of 18-digit numbers (0 otherwise); ``region`` the first 6 digits (-1 if not digits);
    ``status`` an :class:`IdStatus`. ``odd`` keeps, by row, the text of numbers that
    have no 15/18 shape, so that the report shows them as given.
    """

    key: np.ndarray
    length: np.ndarray
    check: np.ndarray
    region: np.ndarray
    status: np.ndarray
    odd: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.key)

    def text(self, rows: np.ndarray) -> np.ndarray:
        """The numbers of `rows` in compact form (odd ones as given), as an object array."""
        rows = np.asarray(rows, dtype=np.int64)
        key, length, check = self.key[rows], self.length[rows], self.check[rows]
        digits = _digit_matrix(key, 17)
        mat = np.zeros((len(rows), 18), dtype=np.uint8)
        mat[:, :17] = digits
        mat[:, 17] = check
        short = length == 15
        mat[short] = np.concatenate(
            [digits[short][:, :6], digits[short][:, 8:17], np.zeros((short.sum(), 3), np.uint8)],
            axis=1)
        out = _ascii_text(mat)
        for i in np.flatnonzero(length == 0):
            out[i] = self.odd.get(int(rows[i]), "")
        return out


def parse_id_numbers(values: TextColumn, *,
                     today: datetime.date | None = None) -> ParsedIds:
    """Parse and validate a column of 15/18-digit numbers, vectorised.

    The same verdicts as :func:`domain.gb11643.validate` (length, format, check digit,
    real birth date not in the future nor before 1870, known province; an unknown county
    is not invalid), computed over the whole column. Values needing more than the
    vectorised folding (spaces, hyphens, other Unicode forms) go through
    :func:`gb11643.compact` one by one. (Trailing NUL characters are ignored: numpy's
    fixed-width strings drop them.)

    >>> ids = parse_id_numbers(["11010519491231002X", "110105491231002", "110105194912310021",
    ...                         "110105 4912 31002", None, "12345"])
    >>> [IdStatus(s).name for s in ids.status]
    ['VALID', 'VALID', 'BAD_CHECKSUM', 'VALID', 'MISSING', 'BAD_LENGTH']
    >>> bool(ids.key[0] == ids.key[1] == ids.key[3] == 11010519491231002)
    True
    >>> list(ids.text([1, 5]))
    ['110105491231002', '12345']
    """
    arr, value_at = _column(values)
    n = len(arr)
    mat, length = _shape(arr)
    status = np.full(n, IdStatus.VALID, dtype=np.uint8)
    region = np.full(n, -1, dtype=np.int32)
    odd: dict[int, str] = {}
    irregular = np.flatnonzero(length == 0)
    if len(irregular):
        compacted = np.empty(len(irregular), dtype=object)
        for j, i in enumerate(irregular):
            value = value_at(i)
            if _missing(value):
                compacted[j] = None
                continue
            # Twice, as gb11643.validate does (kind() compacts again): removing spaces
            # after NFKC can leave a new combining sequence for a second NFKC to fold.
            compacted[j] = gb11643.compact(gb11643.compact(str(value)))
        m2, l2 = _shape(compacted)
        mat[irregular] = m2
        length[irregular] = l2
        for j, i in enumerate(irregular):
            value = compacted[j]
            if l2[j]:
                continue
            if not value:
                status[i] = IdStatus.MISSING
                continue
            odd[int(i)] = str(value_at(i))
            status[i] = IdStatus.BAD_LENGTH if len(value) not in (15, 18) else IdStatus.BAD_FORMAT
            if len(value) >= 6 and value[:6].isascii() and value[:6].isdigit():
                region[i] = int(value[:6])
    shaped = length > 0
    is18 = length == 18
    # The 17 body digits: a 15-digit number gets the century 19 after its region.
    body = np.empty((n, 17), dtype=np.uint8)
    body[:, :6] = mat[:, :6]
    body[:, 6:] = np.where(is18[:, None], mat[:, 6:17],
                           np.concatenate([np.full((n, 2), (49, 57), np.uint8), mat[:, 6:15]],
                                          axis=1))
    body -= 48
    key = np.zeros(n, dtype=np.int64)
    for j in range(17):
        key = key * 10 + body[:, j].astype(np.int64)
    key[~shaped] = -1
    region[shaped] = (key[shaped] // 10**11).astype(np.int32)
    expected = gb11643.calc_check_values(body)
    given = np.where(mat[:, 17] == 0x58, 10, mat[:, 17].astype(np.int64) - 48)
    ok = shaped.copy()
    bad_check = ok & is18 & (given != expected)
    status[bad_check] = IdStatus.BAD_CHECKSUM
    ok &= ~bad_check
    birth = (key // 1000) % 10**8
    y, m, d = birth // 10000, birth // 100 % 100, birth % 100
    for problem, code in ((~_real_date(y, m, d), IdStatus.BAD_DATE),
                          (birth > _today_int(today), IdStatus.FUTURE_DATE),
                          (y < _EARLIEST_YEAR, IdStatus.EARLY_DATE),
                          (~_known_provinces()[np.clip(key // 10**15, 0, 99)],
                           IdStatus.UNKNOWN_PROVINCE)):
        hit = ok & problem
        status[hit] = code
        ok &= ~hit
    check = np.where(is18, mat[:, 17], 0).astype(np.uint8)
    return ParsedIds(key=key, length=length, check=check, region=region, status=status, odd=odd)


def parse_dates(values: TextColumn) -> tuple[np.ndarray, dict[int, str]]:
    """Read YYYY-MM-DD dates as int32 yyyymmdd (0 when missing or not a real date).

    Returns the column and, by row, the text of values that were present but unreadable
    (the report shows them as given). ``datetime.date`` values (from SQL) are read too.

    >>> days, bad = parse_dates(["1949-12-31", "2023-02-29", "", None, datetime.date(2000, 1, 2)])
    >>> days.tolist(), str(days.dtype), bad
    ([19491231, 0, 0, 0, 20000102], 'int32', {1: '2023-02-29'})
    """
    arr, value_at = _column(values)
    n = len(arr)
    out = np.zeros(n, dtype=np.int32)
    mat, lengths = _fixed(arr, 10)
    odd: dict[int, str] = {}
    mat = mat.astype(np.int32)
    pos = [0, 1, 2, 3, 5, 6, 8, 9]
    digit = ((mat[:, pos] >= 48) & (mat[:, pos] <= 57)).all(axis=1)
    dashes = (mat[:, 4] == 45) & (mat[:, 7] == 45)
    dig = mat - 48
    y = dig[:, 0] * 1000 + dig[:, 1] * 100 + dig[:, 2] * 10 + dig[:, 3]
    mo = dig[:, 5] * 10 + dig[:, 6]
    d = dig[:, 8] * 10 + dig[:, 9]
    fast = (lengths == 10) & digit & dashes
    good = fast & _real_date(y, mo, d)
    out[good] = (y * 10000 + mo * 100 + d)[good]
    for i in np.flatnonzero(fast & ~good):
        odd[int(i)] = str(value_at(i))
    lengths = np.where(fast, 10, np.where(lengths == 10, -1, lengths))
    for i in np.flatnonzero((lengths != 10) & (lengths != 0)):
        value = value_at(i)
        if _missing(value):
            continue
        if isinstance(value, datetime.date):
            out[i] = value.year * 10000 + value.month * 100 + value.day
            continue
        text = str(value).strip()
        if not text:
            continue
        day = parse_date(text)
        if day is not None:
            out[i] = day.year * 10000 + day.month * 100 + day.day
            continue
        odd[int(i)] = str(value)
    return out, odd


_NON_DIGITS = re.compile(r"\D")


def parse_phones(values: TextColumn) -> tuple[np.ndarray, np.ndarray]:
    """Read phone numbers as int64 digits (0 when missing) and their digit counts.

    Separators are dropped and a +86 country code is removed; the count keeps leading
    zeros (landline area codes) for the report.

    >>> phones, digits = parse_phones(["13812345678", "", "+86 138-1234-5678", "010 6512 3456"])
    >>> phones.tolist(), digits.tolist()
    ([13812345678, 0, 13812345678, 1065123456], [11, 0, 11, 11])
    """
    if isinstance(values, pd.Series) and pd.api.types.is_numeric_dtype(values.dtype):
        num = values.to_numpy(dtype=np.float64, na_value=np.nan)
        out = np.where(np.isnan(num), 0, num).astype(np.int64)
        digits = np.where(out > 0, np.floor(np.log10(np.maximum(out, 1))) + 1, 0)
        return out, digits.astype(np.uint8)
    arr, value_at = _column(values)
    mat, lengths = _fixed(arr, 15)
    pos = np.arange(16)
    digit = (mat >= 48) & (mat <= 57)
    plain = ((digit | (pos >= lengths[:, None])).all(axis=1) & (lengths > 0) & (lengths <= 15))
    out = np.zeros(len(arr), dtype=np.int64)
    for j in range(15):
        inside = plain & (j < lengths)
        out = np.where(inside, out * 10 + (mat[:, j].astype(np.int64) - 48), out)
    digits = np.where(plain, lengths, 0).astype(np.uint8)
    digits[out == 0] = 0
    for i in np.flatnonzero(~plain & (lengths > 0)):
        value = value_at(i)
        if _missing(value):
            continue
        text = str(value).strip().removeprefix("+86")
        only = _NON_DIGITS.sub("", text)
        if 0 < len(only) <= 15:
            out[i], digits[i] = int(only), len(only)
    return out, digits


@functools.cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=1 << 18)
def name_key(name: str | None) -> str | None:
    """The form every spelling of one name shares, for comparison (None if blank).

    Traditional characters become simplified (OpenCC ``t2s``), then as
    :func:`validators.fields.normalize_name`: full-width forms, spaces and the middle
    dot variants (· • ‧ . ・) folded, upper case.

    >>> name_key("張 偉") == name_key("张伟"), name_key("买买提•艾力") == name_key("買買提.艾力")
    (True, True)
    >>> name_key("  "), name_key(None)
    (None, None)
    """
    if not isinstance(name, str):
        return None
    folded = normalize_name(name)
    if not folded:
        return None
    return _t2s().convert(folded)


# --- the masters --------------------------------------------------------------------

_NAME_BYTES = 128


def _encode_names(values: TextColumn) -> tuple[np.ndarray, dict[int, str]]:
    """Names as a bytes column; longer ones whole in a dict, a digest in the column."""
    if isinstance(values, FixedText):
        texts = [values.text(i) for i in range(len(values))]
    else:
        texts = [v if isinstance(v, str) else "" if _missing(v) else str(v)
                 for v in _objects(values)]
    # Python's own encoder beats numpy's per-element one by far here.
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    overflow: dict[int, str] = {}
    width = max(map(len, encoded), default=1) or 1
    if width > _NAME_BYTES:
        for i, b in enumerate(encoded):
            if len(b) > _NAME_BYTES:  # b'\xff' never starts UTF-8: no real name looks alike
                overflow[i] = texts[i]
                encoded[i] = b"\xff" + hashlib.blake2b(b, digest_size=16).digest()
        width = max(map(len, encoded))
    return np.array(encoded, dtype=f"S{width}"), overflow


@dataclass
class Master:
    """One system's customer master in the columnar form the reconciliation works on.

    ``name`` holds the names as UTF-8 bytes (numpy ``S`` dtype, b'' when blank: a
    compact column that compares in C); a name longer than 128 bytes is kept whole in
    ``name_overflow`` and stands in the column as a digest. ``birth`` int32 yyyymmdd of
    the birth-date field (0 when missing); ``phone`` int64 digits (0 when missing) with
    ``phone_digits``. ``odd_birth`` keeps unreadable birth dates as given. ``carry``
    holds further columns that go through to the report unchanged (e.g. the claims
    system's ``policy_count``).
    """

    ids: ParsedIds
    name: np.ndarray
    birth: np.ndarray
    phone: np.ndarray
    phone_digits: np.ndarray
    odd_birth: dict[int, str] = field(default_factory=dict)
    carry: dict[str, np.ndarray] = field(default_factory=dict)
    name_overflow: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_columns(cls, id_numbers: TextColumn, names: TextColumn, birth_dates: TextColumn,
                     phones: TextColumn | None = None, *,
                     carry: dict[str, Iterable] | None = None,
                     today: datetime.date | None = None) -> Master:
        """Parse raw columns (strings as read from a file or a table) into a master."""
        ids = parse_id_numbers(id_numbers, today=today)
        n = len(ids)
        if isinstance(names, FixedText) and names.mat.shape[1] <= _NAME_BYTES:
            name, overflow = names.as_bytes(), {}
        else:
            name, overflow = _encode_names(names)
        birth, odd_birth = parse_dates(birth_dates)
        if phones is None:
            phone, digits = np.zeros(n, np.int64), np.zeros(n, np.uint8)
        else:
            phone, digits = parse_phones(phones)
        carried = {k: (v.as_bytes() if isinstance(v, FixedText) else
                       v.to_numpy() if isinstance(v, pd.Series) else np.asarray(v))
                   for k, v in (carry or {}).items()}
        if not (len(name) == len(birth) == len(phone) == n
                and all(len(v) == n for v in carried.values())):
            raise ValueError("columns of a master must have the same length")
        return cls(ids=ids, name=name, birth=birth, phone=phone, phone_digits=digits,
                   odd_birth=odd_birth, carry=carried, name_overflow=overflow)

    @classmethod
    def concat(cls, parts: Sequence[Master]) -> Master:
        """Join masters parsed chunk by chunk into one (row numbers continue)."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [len(p) for p in parts])

        def shifted(dicts):
            return {int(o) + k: v for o, d in zip(offsets, dicts, strict=False)
                    for k, v in d.items()}

        ids = ParsedIds(
            key=np.concatenate([p.ids.key for p in parts]),
            length=np.concatenate([p.ids.length for p in parts]),
            check=np.concatenate([p.ids.check for p in parts]),
            region=np.concatenate([p.ids.region for p in parts]),
            status=np.concatenate([p.ids.status for p in parts]),
            odd=shifted(p.ids.odd for p in parts))
        return cls(
            ids=ids,
            name=np.concatenate([p.name for p in parts]),
            birth=np.concatenate([p.birth for p in parts]),
            phone=np.concatenate([p.phone for p in parts]),
            phone_digits=np.concatenate([p.phone_digits for p in parts]),
            odd_birth=shifted(p.odd_birth for p in parts),
            carry={k: np.concatenate([p.carry[k] for p in parts]) for k in parts[0].carry},
            name_overflow=shifted(p.name_overflow for p in parts))

    def name_text(self, rows: np.ndarray) -> np.ndarray:
        """The names of `rows` as an object array of str ('' when blank)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.strings.decode(self.name[rows], "utf-8", "replace").astype(object)
        if self.name_overflow:
            for i in np.flatnonzero(np.isin(rows, list(self.name_overflow))):
                out[i] = self.name_overflow[int(rows[i])]
        return out

    def birth_text(self, rows: np.ndarray) -> np.ndarray:
        """Birth dates of `rows` as YYYY-MM-DD ('' if missing; unreadable ones as given)."""
        rows = np.asarray(rows, dtype=np.int64)
        v = self.birth[rows].astype(np.int64)
        digits = _digit_matrix(v, 8)
        mat = np.full((len(rows), 10), ord("-"), dtype=np.uint8)
        mat[:, [0, 1, 2, 3, 5, 6, 8, 9]] = digits
        out = _ascii_text(mat)
        for i in np.flatnonzero(v == 0):
            out[i] = self.odd_birth.get(int(rows[i]), "")
        return out

    def phone_text(self, rows: np.ndarray) -> np.ndarray:
        """Phone numbers of `rows` as digits, leading zeros kept ('' if missing)."""
        rows = np.asarray(rows, dtype=np.int64)
        v, d = self.phone[rows], self.phone_digits[rows].astype(np.int64)
        mat = _digit_matrix(v, 15)
        mat[np.arange(15) < (15 - d)[:, None]] = 0  # NULs at the front: dropped below
        mat = np.take_along_axis(mat, np.argsort(mat == 0, axis=1, kind="stable"), axis=1)
        out = _ascii_text(mat)
        out[v == 0] = ""
        return out


# --- the reconciliation -------------------------------------------------------------

@dataclass
class Reconciliation:
    """Every row's class, partner row on the other side (-1: none) and reason bitmask."""

    core_outcome: np.ndarray
    core_partner: np.ndarray
    core_reason: np.ndarray
    claims_outcome: np.ndarray
    claims_partner: np.ndarray
    claims_reason: np.ndarray

    def counts(self) -> dict[str, dict[str, int]]:
        """Per class: outcomes (a pair counts once), core rows and claims rows."""
        core = np.bincount(self.core_outcome, minlength=len(Outcome))
        claims = np.bincount(self.claims_outcome, minlength=len(Outcome))
        out = {}
        for o in Outcome:
            c, m = int(core[o]), int(claims[o])
            outcomes = c if o in PAIR_CLASSES else c + m
            out[o.name.lower()] = {"outcomes": outcomes, "core_rows": c, "claims_rows": m}
        return out

    def check_partition(self) -> None:
        """Raise AssertionError unless every row is in exactly one class, pairs symmetric."""
        for outcome in (self.core_outcome, self.claims_outcome):
            assert not (outcome == _UNASSIGNED).any(), "a row was left without a class"
        paired = self.core_outcome <= max(PAIR_CLASSES)
        assert (self.core_partner[paired] >= 0).all()
        assert (self.core_partner[~paired] == -1).all()
        partners = self.core_partner[paired]
        if len(partners):
            assert np.bincount(partners).max() == 1, "a claims row paired twice"
        assert (self.claims_partner[partners] == np.flatnonzero(paired)).all()
        assert (self.claims_outcome[partners] == self.core_outcome[paired]).all()
        assert (self.claims_outcome <= max(PAIR_CLASSES)).sum() == paired.sum()

    def mismatch_fields(self) -> dict[str, int]:
        """How many mismatched pairs differ in each field (a pair may count for several)."""
        reasons = self.core_reason[self.core_outcome == Outcome.MISMATCH]
        out = {text: int((reasons & flag != 0).sum()) for flag, text in
               ((Reason.NAME, "name"), (Reason.BIRTH_DATE, "birth_date"),
                (Reason.PHONE, "phone"), (Reason.ID_CHECK_DIGIT, "id_number"),
                (Reason.ID_TYPO, "id_number_typo"))}
        return out

    def typo_matches(self) -> dict[str, int]:
        """How the typo-tolerant match paired rows (a pair may count for several ways)."""
        paired = self.core_outcome <= max(PAIR_CLASSES)
        reasons = self.core_reason[paired & ((self.core_reason & Reason.ID_TYPO) != 0)]
        return {text: int((reasons & flag != 0).sum()) for flag, text in _VIA_TEXT.items()}


def _equi_join(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (i, j) with left[i] == right[j], every pair (a many-to-many join)."""
    if len(left) == 0 or len(right) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    joined = pd.DataFrame({"k": left, "i": np.arange(len(left))}).merge(
        pd.DataFrame({"k": right, "j": np.arange(len(right))}), on="k", sort=False)
    return joined["i"].to_numpy(np.int64), joined["j"].to_numpy(np.int64)


_NAME_KEYS: dict[str, str | None] = {}
_SEPARATOR = "\ue000"  # private use: not whitespace, kept by NFKC, upper() and OpenCC


def _name_keys(names: np.ndarray) -> np.ndarray:
    """:func:`name_key` of many names, normalising the new ones in one batch.

    The distinct names not seen before are joined by a separator that none of the
    steps touches, normalised and converted as one string, and split again: one OpenCC
    call instead of one per name.
    """
    todo = [n for n in set(names.tolist()) if isinstance(n, str) and n not in _NAME_KEYS]
    if todo:
        if len(_NAME_KEYS) > 1 << 20:
            _NAME_KEYS.clear()
        odd = [n for n in todo if _SEPARATOR in n]
        if odd:  # a name holding the separator itself: one by one
            _NAME_KEYS.update((n, name_key(n)) for n in odd)
            todo = [n for n in todo if _SEPARATOR not in n]
        keys = _t2s().convert(normalize_name(_SEPARATOR.join(todo))).split(_SEPARATOR)
        _NAME_KEYS.update(zip(todo, (k or None for k in keys), strict=True))
    return np.array([_NAME_KEYS.get(n) if isinstance(n, str) else None for n in names.tolist()],
                    dtype=object)


def _same_names(core: Master, rc: np.ndarray, claims: Master, rm: np.ndarray) -> np.ndarray:
    """Element-wise: core row rc's and claims row rm's names are the same once normalised.

    The raw bytes are compared first, in C; only names that differ are decoded and
    normalised (once per distinct name: :func:`name_key` is cached).
    """
    same = np.asarray(core.name[rc] == claims.name[rm], dtype=bool)
    differ = np.flatnonzero(~same)
    if len(differ):
        same[differ] = (_name_keys(core.name_text(rc[differ]))
                        == _name_keys(claims.name_text(rm[differ])))
    return same


def _compare(core: Master, claims: Master, pc: np.ndarray, pm: np.ndarray) -> np.ndarray:
    """Reason bits of the fields that differ between core rows pc and claims rows pm."""
    reason = np.zeros(len(pc), dtype=np.uint32)
    reason[~_same_names(core, pc, claims, pm)] |= np.uint32(Reason.NAME)
    reason[core.birth[pc] != claims.birth[pm]] |= np.uint32(Reason.BIRTH_DATE)
    cp, mp = core.phone[pc], claims.phone[pm]
    reason[(cp != 0) & (mp != 0) & (cp != mp)] |= np.uint32(Reason.PHONE)
    both18 = (core.ids.length[pc] == 18) & (claims.ids.length[pm] == 18)
    reason[both18 & (core.ids.check[pc] != claims.ids.check[pm])] |= np.uint32(Reason.ID_CHECK_DIGIT)
    return reason


def _digit_at(key: np.ndarray, p: int) -> np.ndarray:
    return (key // _P10[p]) % 10


def _typo_edges(core: Master, claims: Master, kc: np.ndarray, km: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (claims row, core row, way) among rows the exact join left over."""
    edges: list[tuple[np.ndarray, np.ndarray, int]] = []
    ck, mk = core.ids.key[kc], claims.ids.key[km]
    has_c, has_m = np.flatnonzero(ck >= 0), np.flatnonzero(mk >= 0)
    # Same body: the claims number is invalid only by its check digit (or date).
    i, j = _equi_join(mk[has_m], ck[has_c])
    edges.append((km[has_m[i]], kc[has_c[j]], Reason.VIA_SAME_BODY))
    # One digit changed, or two adjacent digits swapped, on the 17-digit body; such
    # a coincidence needs the name or the birth date to agree as well.
    near: list[tuple[np.ndarray, np.ndarray, int]] = []
    cb, mb = ck[has_c], mk[has_m]
    for p in range(17):
        i, j = _equi_join(mb - _digit_at(mb, p) * _P10[p], cb - _digit_at(cb, p) * _P10[p])
        diff = mb[i] != cb[j]
        near.append((has_m[i[diff]], has_c[j[diff]], Reason.VIA_ONE_DIGIT))
    # Adjacent as written: in a 15-digit number the region's last digit and the year's
    # first are neighbours, which the century puts three places apart in the body.
    written15 = claims.ids.length[km[has_m]] == 15
    for p, q in [(p, p + 1) for p in range(16)] + [(5, 8)]:
        a, b = _digit_at(mb, p), _digit_at(mb, q)
        swapped = mb + (b - a) * _P10[p] + (a - b) * _P10[q]
        moved = np.flatnonzero((a != b) & (written15 if q - p == 3 else True))
        i, j = _equi_join(swapped[moved], cb)
        near.append((has_m[moved[i]], has_c[j], Reason.VIA_TRANSPOSITION))
    for i, j, via in near:
        if len(i) == 0:
            continue
        rm, rc = km[i], kc[j]
        agree = (_same_names(core, rc, claims, rm)
                 | ((claims.birth[rm] != 0) & (claims.birth[rm] == core.birth[rc])))
        edges.append((rm[agree], rc[agree], via))
    # Same name, birth date (the fields, not the number's) and region.
    rc_ok = (core.ids.region[kc] >= 0) & (core.birth[kc] > 0)
    rm_ok = (claims.ids.region[km] >= 0) & (claims.birth[km] > 0)
    lc, lm = kc[rc_ok], km[rm_ok]
    i, j = _equi_join(claims.ids.region[lm].astype(np.int64) * 10**8 + claims.birth[lm],
                      core.ids.region[lc].astype(np.int64) * 10**8 + core.birth[lc])
    same = _same_names(core, lc[j], claims, lm[i])
    edges.append((lm[i[same]], lc[j[same]], Reason.VIA_NAME_BIRTH_REGION))
    rows_m = np.concatenate([e[0] for e in edges])
    rows_c = np.concatenate([e[1] for e in edges])
    via = np.concatenate([np.full(len(e[0]), int(e[2]), np.uint32) for e in edges])
    return rows_m, rows_c, via


def reconcile(core: Master, claims: Master) -> Reconciliation:
    """Class every row of both masters (see the module docstring); set-based throughout."""
    nk, nm = len(core), len(claims)
    core_outcome = np.full(nk, _UNASSIGNED, dtype=np.uint8)
    claims_outcome = np.full(nm, _UNASSIGNED, dtype=np.uint8)
    core_partner = np.full(nk, -1, dtype=np.int64)
    claims_partner = np.full(nm, -1, dtype=np.int64)
    core_reason = np.zeros(nk, dtype=np.uint32)
    claims_reason = np.zeros(nm, dtype=np.uint32)
    claims_invalid = claims.ids.status != IdStatus.VALID
    claims_reason[claims_invalid] |= np.uint32(Reason.INVALID_ID)

    # 1. The exact join on the key, over both key columns at once.
    ci = np.flatnonzero(core.ids.key >= 0)
    mi = np.flatnonzero(~claims_invalid)
    # A hash factorisation numbers the distinct keys without sorting them.
    inverse, keys = pd.factorize(np.concatenate([core.ids.key[ci], claims.ids.key[mi]]))
    inv_c, inv_m = inverse[: len(ci)], inverse[len(ci):]
    n_core = np.bincount(inv_c, minlength=len(keys))
    n_claims = np.bincount(inv_m, minlength=len(keys))
    duplicated = (n_core > 1) | (n_claims > 1)
    dup_reason = (np.where(n_core > 1, Reason.DUPLICATE_IN_CORE, 0)
                  | np.where(n_claims > 1, Reason.DUPLICATE_IN_CLAIMS, 0)).astype(np.uint32)
    amb_c, amb_m = duplicated[inv_c], duplicated[inv_m]
    core_outcome[ci[amb_c]] = Outcome.AMBIGUOUS
    core_reason[ci[amb_c]] |= dup_reason[inv_c[amb_c]]
    claims_outcome[mi[amb_m]] = Outcome.AMBIGUOUS
    claims_reason[mi[amb_m]] |= dup_reason[inv_m[amb_m]]

    one_to_one = (n_core == 1) & (n_claims == 1)
    core_at = np.full(len(keys), -1, dtype=np.int64)
    claims_at = np.full(len(keys), -1, dtype=np.int64)
    core_at[inv_c] = ci  # unique where it is read: keys with one row on the side
    claims_at[inv_m] = mi
    pair_keys = np.flatnonzero(one_to_one)
    pc, pm = core_at[pair_keys], claims_at[pair_keys]
    del keys, inverse, inv_c, inv_m, core_at, claims_at
    reason = _compare(core, claims, pc, pm)
    outcome = np.where(reason == 0, Outcome.MATCHED, Outcome.MISMATCH).astype(np.uint8)
    core_outcome[pc], claims_outcome[pm] = outcome, outcome
    core_reason[pc] |= reason
    claims_reason[pm] |= reason
    core_partner[pc], claims_partner[pm] = pm, pc

    # 2. The typo-tolerant match among the rows left over on both sides.
    kc = np.flatnonzero(core_outcome == _UNASSIGNED)
    km = np.flatnonzero(claims_outcome == _UNASSIGNED)
    rows_m, rows_c, via = _typo_edges(core, claims, kc, km)
    if len(rows_m):
        # One edge per (claims row, core row), with every way that found it.
        pair_ids, first = np.unique(rows_m * max(nk, 1) + rows_c, return_inverse=True)
        ev = np.zeros(len(pair_ids), dtype=np.uint32)
        np.bitwise_or.at(ev, first, via)
        em, ec = pair_ids // max(nk, 1), pair_ids % max(nk, 1)
        deg_m, deg_c = np.bincount(em, minlength=nm), np.bincount(ec, minlength=nk)
        clean = (deg_m[em] == 1) & (deg_c[ec] == 1)
        tm, tc = em[clean], ec[clean]
        reason = (_compare(core, claims, tc, tm) & ~np.uint32(Reason.ID_CHECK_DIGIT)
                  | Reason.ID_TYPO | ev[clean]).astype(np.uint32)
        outcome = np.where(reason & FIELD_REASONS, Outcome.MISMATCH,
                           Outcome.MATCHED_WITH_TYPO).astype(np.uint8)
        core_outcome[tc], claims_outcome[tm] = outcome, outcome
        core_reason[tc] |= reason
        claims_reason[tm] |= reason
        core_partner[tc], claims_partner[tm] = tm, tc
        for rows, outcome_col, reason_col in ((np.unique(em[~clean]), claims_outcome,
                                               claims_reason),
                                              (np.unique(ec[~clean]), core_outcome, core_reason)):
            outcome_col[rows] = Outcome.AMBIGUOUS
            reason_col[rows] |= np.uint32(Reason.SEVERAL_CANDIDATES)

    # 3. What is left has no partner on the other side.
    core_outcome[core_outcome == _UNASSIGNED] = Outcome.MISSING_IN_CLAIMS
    claims_outcome[claims_outcome == _UNASSIGNED] = Outcome.MISSING_IN_CORE
    result = Reconciliation(core_outcome, core_partner, core_reason,
                            claims_outcome, claims_partner, claims_reason)
    result.check_partition()
    return result
