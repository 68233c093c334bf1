"""Mask personal data before it goes into a check message, a log line or a report.

Rule messages end up in review screens, Prefect artifacts and logs; none of them may
carry a full identity number. This is a small local helper, kept here so that
``validators`` imports only the shared models; it behaves exactly like
``backoffice.masking.mask_id_number`` (the core's shared module), which should replace
it once the layering allows (one place for masking).

>>> mask_id_number('11010519491231002X')
'110*************2X'
>>> mask_id_number('110105491231002')
'110**********02'
>>> mask_id_number('12345')
'*****'
>>> mask_id_number(None)
''
"""

from __future__ import annotations

__all__ = ["mask_id_number", "mask_middle"]


def mask_middle(value: str | None, keep_start: int, keep_end: int) -> str:
    """Replace all but the first `keep_start` and last `keep_end` characters by '*'.

    A value no longer than what would be kept is masked entirely: showing 5 of 5
    characters would mask nothing.
    """
    if not value:
        return ""
    text = str(value)
    if len(text) <= keep_start + keep_end:
        return "*" * len(text)
    hidden = len(text) - keep_start - keep_end
    return text[:keep_start] + "*" * hidden + (text[-keep_end:] if keep_end else "")


def mask_id_number(value: str | None) -> str:
    """Mask an identity number for display: the first 3 and the last 2 characters stay.

    Three leading digits (the province and prefecture) and the last two (sex digit and
    check digit) are enough for an operator to tell two numbers apart in a list, and
    reveal neither the county nor the birth date.
    """
    return mask_middle(value, 3, 2)
