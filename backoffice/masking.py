"""Personal-data masking: the one function used for logs, artifacts and messages.

The full values live only in the store; everything a person or a log sees goes
through `mask_value` (a known field) or `mask_text` (free text).
"""

from __future__ import annotations

import re

_ID_FIELDS = {"id_number", "insured_id_number"}
_NAME_FIELDS = {"name", "insured_name", "claimant_name", "account_name"}
_PHONE_FIELDS = {"phone"}
_ACCOUNT_FIELDS = {"account_number"}
_ADDRESS_FIELDS = {"address"}
PERSONAL_FIELDS = _ID_FIELDS | _NAME_FIELDS | _PHONE_FIELDS | _ACCOUNT_FIELDS | _ADDRESS_FIELDS


def mask_id_number(value: str) -> str:
    """Keep the region's first 3 and the last 2 characters: 110***********002X → 110*...2X.

    >>> mask_id_number("11010519491231002X")
    '110*************2X'
    >>> mask_id_number("110105491231002")
    '110**********02'
    """
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


def mask_value(field: str, value: str | None) -> str | None:
    """Mask a field's value if the field carries personal data."""
    if value is None:
        return None
    if field in _ID_FIELDS:
        return mask_id_number(value)
    if field in _NAME_FIELDS:
        return mask_name(value)
    if field in _PHONE_FIELDS:
        return mask_phone(value)
    if field in _ACCOUNT_FIELDS:
        return mask_account(value)
    if field in _ADDRESS_FIELDS:
        return mask_address(value)
    return value


_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8}|\d{6})(\d{3})([\dXx]?)(?![0-9A-Za-z])")
_DIGITS_RE = re.compile(r"(?<!\d)\d{11,}(?!\d)")


def mask_text(text: str) -> str:
    """Mask anything in free text that looks like an ID number, phone or account.

    >>> mask_text("id 11010519491231002X, tel 13812345678")
    'id 110*************2X, tel 138****5678'
    """

    def _id(m: re.Match[str]) -> str:
        return mask_id_number(m.group(0))

    text = _ID_RE.sub(_id, text)

    def _digits(m: re.Match[str]) -> str:
        run = m.group(0)
        return mask_phone(run) if len(run) == 11 else mask_account(run)

    return _DIGITS_RE.sub(_digits, text)
