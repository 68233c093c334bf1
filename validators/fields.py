"""Read field values in their normal forms, for rules: text, dates, names.

Rules receive a flat mapping of field name to ``str | None``. Blank strings count as
missing (an extractor that found a label but no value yields ""), and every parser here
returns None instead of raising, so that a rule only has to decide what a missing or
unreadable value means for it.

>>> text({'name': '  李秀英 '}, 'name'), text({'name': ' '}, 'name'), text({}, 'name')
('李秀英', None, None)
>>> parse_date('2024-02-29'), parse_date('2023-02-29'), parse_date('2024/02/29')
(datetime.date(2024, 2, 29), None, None)
>>> same_name('买买提·艾力', '买买提•艾力'), same_name('李秀英', '李 秀英'), same_name('李秀英', '李秀')
(True, True, False)
>>> add_years(datetime.date(2020, 2, 29), 10)
datetime.date(2030, 2, 28)
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterable, Mapping

from domain.validity import add_years

__all__ = ["add_years", "age_on", "missing", "normalize_name", "parse_date", "same_name", "text"]

_DATE_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
# Transliterated names (维吾尔族, foreign-born) join parts with a middle dot; OCR and
# input methods produce any of these.
_NAME_DOTS = str.maketrans({c: "·" for c in "•・.．‧∙⋅"})


def text(fields: Mapping[str, str | None], name: str) -> str | None:
    """Return the field's value stripped of surrounding whitespace, or None if blank."""
    value = fields.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def missing(fields: Mapping[str, str | None], names: Iterable[str]) -> list[str]:
    """Return the names among `names` whose value is missing or blank, in order."""
    return [name for name in names if text(fields, name) is None]


def parse_date(value: str | None) -> datetime.date | None:
    """Read a date in the normal form YYYY-MM-DD; None if absent or not a real date."""
    if value is None:
        return None
    match = _DATE_RE.match(str(value).strip())
    if match is None:
        return None
    try:
        return datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def normalize_name(value: str) -> str:
    """Fold a personal name for comparison: full-width forms, spaces, middle dots."""
    folded = unicodedata.normalize("NFKC", value).translate(_NAME_DOTS)
    return "".join(folded.split()).upper()


def same_name(a: str | None, b: str | None) -> bool:
    """Tell whether two names are the same person's name as written (None never matches)."""
    if not a or not b:
        return False
    return normalize_name(a) == normalize_name(b)


def age_on(birth_date: datetime.date, day: datetime.date) -> int:
    """Return the age in completed years on `day` (周岁)."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)
