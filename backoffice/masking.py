"""Personal-data masking: the one function used for logs, artifacts and messages.

The full values live only in the store; everything a person or a log sees goes
through `mask_value` (a known field) or `mask_text` (free text).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

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


class MaskingFilter(logging.Filter):
    """A logging filter that masks a record's message, arguments and traceback in place.

    Usable in a logging configuration (`(): backoffice.masking.MaskingFilter`);
    `install_log_masking` applies the same to every record the process creates.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


def _mask_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_masked", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record still gets logged, masked
        message = f"{record.msg!r} % {record.args!r}"
    record.msg, record.args = mask_text(message), None
    if record.exc_info and record.exc_info[1] is not None:
        # Formatters print exc_text when set; the raw exception is dropped so that no
        # handler renders its unmasked text.
        record.exc_text = mask_traceback(record.exc_info[1])
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    record._masked = True
    return record


_installed = False


def install_log_masking() -> None:
    """Mask every log record of this process when it is created (ours, Prefect's run
    loggers that ship records to the API, libraries'), whatever handler sends it on."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        return _mask_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True


class MaskedError(RuntimeError):
    """An exception re-raised with a masked message (the original type is named in it)."""


def mask_exceptions(func):
    """Decorator for flow and task bodies: an exception leaving them carries a masked
    message, so Prefect's state messages and stored results hold no personal data."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MaskedError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised, masked
            logging.getLogger("backoffice").error(
                "%s failed:\n%s", func.__name__, mask_traceback(exc))
            raise MaskedError(f"{type(exc).__name__}: {mask_text(str(exc))[:500]}") from None

    return wrapper
