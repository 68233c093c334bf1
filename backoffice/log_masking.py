"""Masking of everything the process logs and raises: a log-record factory, a logging
filter, and a decorator that masks exceptions leaving flows and tasks. The maskers
themselves are :mod:`domain.masking`.
"""

from __future__ import annotations

import logging

from domain.masking import mask_text, mask_traceback


class MaskingFilter(logging.Filter):
    """A logging filter that masks a record's message, arguments and traceback in place.

    Usable in a logging configuration (`(): backoffice.log_masking.MaskingFilter`);
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
