"""Personal-data masking: the one set of pure maskers for logs, artifacts, messages and
screens. Full values live only in the store; everything a person or a log sees goes through
`mask_value` (a known field), `mask_text` (free text) or `mask_known` (free text about a
document whose own values are known).

Which field is personal, and of what kind, is :mod:`domain.fields`'s to say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from domain.fields import PERSONAL_FIELDS, PersonalKind, personal_kind

__all__ = ["PERSONAL_FIELDS", "mask_account", "mask_address", "mask_id_number", "mask_known",
           "mask_name", "mask_phone", "mask_text", "mask_traceback", "mask_value"]


def mask_id_number(value: str | None) -> str:
    """Keep the region's first 3 and the last 2 characters: 110***********002X → 110*...2X.

    The province and prefecture and the sex and check digits tell two numbers apart in a
    list, and reveal neither the county nor the birth date. A value no longer than what
    would be kept is masked entirely.

    >>> mask_id_number("11010519491231002X")
    '110*************2X'
    >>> mask_id_number("110105491231002")
    '110**********02'
    >>> mask_id_number("12345"), mask_id_number(None)
    ('*****', '')
    """
    if not value:
        return ""
    if len(value) <= 5:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def mask_name(value: str) -> str:
    """Keep the surname only: 王晓明 → 王**.

    >>> mask_name("王晓明")
    '王**'
    """
    if not value:
        return value
    return value[0] + "*" * max(len(value) - 1, 1)


def mask_phone(value: str) -> str:
    """138****5678 style.

    >>> mask_phone("13812345678")
    '138****5678'
    """
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_account(value: str) -> str:
    """Keep the last 4 digits only.

    >>> mask_account("6222021234567890123")
    '***************0123'
    """
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def mask_address(value: str) -> str:
    """Keep the first 6 characters (province and city), hide the rest."""
    if len(value) <= 6:
        return value
    return value[:6] + "*" * min(len(value) - 6, 8)


_MASKERS = {
    PersonalKind.ID_NUMBER: mask_id_number,
    PersonalKind.NAME: mask_name,
    PersonalKind.PHONE: mask_phone,
    PersonalKind.ACCOUNT: mask_account,
    PersonalKind.ADDRESS: mask_address,
}


def mask_value(field: str, value: str | None) -> str | None:
    """Mask a field's value if the field carries personal data."""
    if value is None:
        return None
    kind = personal_kind(field)
    if kind is None:
        return value
    return _MASKERS[kind](value)


_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8}|\d{6})(\d{3})([\dXx]?)(?![0-9A-Za-z])")
_DIGITS_RE = re.compile(r"(?<!\d)\d{11,}(?!\d)")
# The same numbers as people write them, in groups: 138-1234-5678, 6222 0212 3456 7890,
# 110105 19491231 002X. Separators are one space, hyphen or full-width space.
_SEP = r"[ \-\u3000]"
_GROUPED_RE = re.compile(
    rf"(?<!\d)\d{{2,19}}(?:{_SEP}\d{{1,19}}){{1,6}}(?:[Xx])?(?!\d)")


def mask_text(text: str) -> str:
    """Mask anything in free text that looks like an ID number, phone or account.

    >>> mask_text("id 11010519491231002X, tel 13812345678")
    'id 110*************2X, tel 138****5678'
    >>> mask_text("tel 138-1234-5678, card 6222 0212 3456 7890, on 2024-05-03")
    'tel 138****5678, card ************7890, on 2024-05-03'
    """

    def _grouped(m: re.Match[str]) -> str:
        run = m.group(0)
        digits = re.sub(_SEP, "", run)
        if len(digits) < 11:
            return run  # dates (2024-05-03), short codes: not personal numbers
        if len(digits) in (15, 18):
            return mask_id_number(digits)
        return mask_phone(digits) if len(digits) == 11 else mask_account(digits)

    # Grouped forms first: masking a part of a group first would hide the rest.
    text = _GROUPED_RE.sub(_grouped, text)

    def _id(m: re.Match[str]) -> str:
        return mask_id_number(m.group(0))

    text = _ID_RE.sub(_id, text)

    def _digits(m: re.Match[str]) -> str:
        run = m.group(0)
        return mask_phone(run) if len(run) == 11 else mask_account(run)

    return _DIGITS_RE.sub(_digits, text)


def mask_known(text: str, fields: Mapping[str, str | None]) -> str:
    """Mask free text, and in it every personal value of `fields` (a document's own
    names and addresses, which no pattern can recognise).

    >>> mask_known("name 王晓明 differs from 王小明", {"name": "王晓明"})
    'name 王** differs from 王小明'
    """
    text = mask_text(text)
    known = sorted(((v, mask_value(k, v)) for k, v in fields.items()
                    if k in PERSONAL_FIELDS and v and len(v) >= 2), key=lambda kv: -len(kv[0]))
    for value, masked in known:
        text = text.replace(value, masked or "")
    return text


def mask_traceback(exc: BaseException) -> str:
    """An exception's formatted traceback, masked: safe for a log or a stored state."""
    import traceback

    return mask_text("".join(traceback.format_exception(exc)))
