"""How long a resident identity card is valid (居民身份证法, art. 5): 5, 10 or 20 years from
its day of issue, or 长期. One place for the rule that checks a card back's period and
the reader that decodes a blurred one.

>>> add_years(datetime.date(2020, 2, 29), 10)
datetime.date(2030, 2, 28)
>>> sorted(period_ends(datetime.date(2020, 2, 29), 5))
[datetime.date(2025, 2, 28), datetime.date(2025, 3, 1)]
>>> period_years(datetime.date(2012, 5, 30), datetime.date(2032, 5, 30))
20
>>> period_years(datetime.date(2012, 5, 30), datetime.date(2032, 5, 31)) is None
True
"""

from __future__ import annotations

import datetime

__all__ = ["LIFETIME", "PERIOD_YEARS", "add_years", "period_ends", "period_years"]

#: What a card valid for life prints as its end.
LIFETIME = "长期"
#: The lengths of a card's validity besides 长期, in years.
PERIOD_YEARS = (5, 10, 20)


def add_years(day: datetime.date, years: int) -> datetime.date:
    """Return the same calendar day `years` later; 29 February becomes 28 February.

    Past year 9999 the result is clamped to date.max, so that junk never raises.
    """
    if day.year + years > datetime.MAXYEAR:
        return datetime.date.max
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def period_ends(valid_from: datetime.date, years: int) -> set[datetime.date]:
    """The end dates a period of `years` gives; 29 February may end on 28 Feb or 1 Mar."""
    end = add_years(valid_from, years)
    ends = {end}
    if (valid_from.month, valid_from.day) == (2, 29) and end != datetime.date.max:
        ends.add(end + datetime.timedelta(days=1))
    return ends


def period_years(valid_from: datetime.date, valid_until: datetime.date) -> int | None:
    """Which of :data:`PERIOD_YEARS` the two dates span; None when none."""
    return next((n for n in PERIOD_YEARS if valid_until in period_ends(valid_from, n)), None)
