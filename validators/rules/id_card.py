"""Rules on the resident identity card: the front agrees with its number, the back is in date.

The front carries name, sex, ethnicity, birth date, address and number; the number
encodes the birth date, the sex and the region of first registration, so the printed
fields can be checked against it. The back carries the issuing authority and the
validity period, whose length the law ties to the age at issue (居民身份证法, art. 5).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from stdnum.exceptions import ValidationError

from domain import gb11643
from domain.ethnic_groups import ethnic_group
from domain.models import CheckResult, DocType, Severity
from domain.validity import LIFETIME, period_years
from validators.fields import age_on, missing, parse_date, text
from validators.registry import Example, RuleContext, failed, passed, rule, skipped
from validators.rules._samples import BACK, BACK_YOUNG, FRONT, STANDARD_ID

ID_FRONT = DocType.ID_CARD_FRONT
# A temporary card carries the same fields: the front's rules apply to it too.
ID_TEMPORARY = DocType.ID_CARD_TEMPORARY
ID_BACK = DocType.ID_CARD_BACK

Fields = Mapping[str, str | None]


def _number_parts(fields: Fields) -> tuple[str, str] | None:
    """The compact number and its kind, or None when it is missing or malformed."""
    value = text(fields, "id_number")
    if value is None:
        return None
    try:
        number = gb11643.compact(value)
        return number, gb11643.kind(number)
    except ValidationError:
        return None


# --- front --------------------------------------------------------------------------

_FRONT_REQUIRED = ("name", "sex", "ethnicity", "birth_date", "address", "id_number")


@rule(
    "id_card.front_required_fields",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=_FRONT_REQUIRED,
    examples=[
        Example(FRONT, True),
        Example({**FRONT, "ethnicity": None, "id_number": "810000199001010019"}, True,
                note="residence permits for HK/MO/TW residents print no ethnicity"),
        Example({**FRONT, "address": " "}, False, note="blank counts as missing"),
        Example({}, False),
    ],
)  # fmt: skip
def front_required_fields(fields: Fields, ctx: RuleContext) -> CheckResult:
    """Every field printed on a card front was read."""
    required = list(_FRONT_REQUIRED)
    parts = _number_parts(fields)
    if parts is not None and parts[1] == "hk_mo_tw":
        required.remove("ethnicity")
    absent = missing(fields, required)
    if absent:
        return failed("missing: " + ", ".join(absent), fields=absent)
    return passed()


@rule(
    "id_card.birth_date_matches",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("birth_date", "id_number"),
    examples=[
        Example(FRONT, True),
        Example({**FRONT, "birth_date": "1949-12-13"}, False, note="digits swapped"),
        Example({**FRONT, "birth_date": "1949年12月31日"}, False, note="not in normal form"),
        Example({"id_number": STANDARD_ID}, False, expect_severity=Severity.INFO,
                note="no printed birth date: skipped"),
    ],
)  # fmt: skip
def birth_date_matches(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The printed birth date is the one encoded in the ID number."""
    printed_text = text(fields, "birth_date")
    parts = _number_parts(fields)
    if printed_text is None or parts is None:
        return skipped("birth_date or a well-formed id_number is missing")
    printed = parse_date(printed_text)
    if printed is None:
        return failed(
            "printed birth date is not a date in the form YYYY-MM-DD", fields=["birth_date"]
        )
    try:
        encoded = gb11643.get_birth_date(parts[0])
    except ValidationError:
        return skipped("the ID number holds no real date (see id_number.components)")
    if printed != encoded:
        return failed("printed birth date differs from the one in the ID number")
    return passed()


@rule(
    "id_card.sex_matches",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("sex", "id_number"),
    examples=[
        Example(FRONT, True),
        Example({**FRONT, "sex": "男"}, False, note="sequence 002 is even: a woman"),
        Example({**FRONT, "sex": "F"}, False, note="must be 男 or 女"),
    ],
)
def sex_matches(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The printed sex agrees with the parity of the ID number's sequence code."""
    printed = text(fields, "sex")
    parts = _number_parts(fields)
    if printed is None or parts is None:
        return skipped("sex or a well-formed id_number is missing")
    if printed not in ("男", "女"):
        return failed("printed sex must be 男 or 女", fields=["sex"])
    if printed != gb11643.get_sex(parts[0]):
        return failed("printed sex differs from the one the ID number encodes (odd: 男, even: 女)")
    return passed()


@rule(
    "id_card.address_province",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("address", "id_number"),
    severity=Severity.WARNING,
    examples=[
        Example(FRONT, True),
        Example({"address": "广西南宁市青秀区民族大道100号", "id_number": "450103199001010016"}, True,
                note="short province name"),
        Example({**FRONT, "address": "上海市浦东新区世纪大道1号"}, False,
                note="moved to Shanghai: possible, hence only a warning"),
    ],
)  # fmt: skip
def address_province(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The address starts with the province of the ID number's region code.

    A household registration can move to another province while the number stays, so
    a difference is a warning only.
    """
    address = text(fields, "address")
    parts = _number_parts(fields)
    if address is None or parts is None:
        return skipped("address or a well-formed id_number is missing")
    if parts[1] == "hk_mo_tw":
        return skipped("a residence permit's address is on the mainland, not in its region code")
    try:
        region = gb11643.get_region(parts[0])
    except ValidationError:
        return skipped("the ID number's province is unknown (see id_number.components)")
    address = "".join(address.split())
    if any(address.startswith(name) for name in gb11643.province_forms(region.province)):
        return passed(province=region.province)
    return failed(
        "address is not in the province of the ID number's region code", province=region.province
    )


@rule(
    "id_card.address_county",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("address",),
    severity=Severity.WARNING,
    examples=[
        Example(FRONT, True),
        Example({"address": "湖南省怀化市沅镇杨柳村82号"}, False,
                note="沅陵县平安 dropped from a hard photo"),
        Example({"address": "广东省东莞市虎门镇连升路1号"}, True,
                note="a prefecture without counties: its towns follow"),
    ],
)  # fmt: skip
def address_county(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The address begins with its province, prefecture and county as GB/T 2260 names them
    in full, as a card prints them: a part dropped or misread between them (湖南省怀化市沅镇,
    沅陵县平安 left out of a hard photo's reading) is caught. A county renamed after the
    data (python-stdnum's) was made is flagged too: hence a warning."""
    address = text(fields, "address")
    if address is None:
        return skipped("no address")
    address = "".join(address.split())
    if not any(address.startswith(p) for p in gb11643.provinces()):
        return skipped("the address does not begin with a province's full name")
    if gb11643.address_start_known(address):
        return passed()
    return failed("the address names no county of its province and prefecture (GB/T 2260) "
                  "after them: a part dropped or misread?")


@rule(
    "id_card.ethnicity_known",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("ethnicity",),
    severity=Severity.WARNING,
    examples=[
        Example(FRONT, True),
        Example({"ethnicity": "维吾尔族"}, True, note="a trailing 族 is tolerated"),
        Example({"ethnicity": "汊"}, False, note="misread 汉"),
    ],
)
def ethnicity_known(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The ethnicity is one of the recognised groups."""
    value = text(fields, "ethnicity")
    if value is None:
        return skipped("no ethnicity")
    if ethnic_group(value) is not None:
        return passed()
    return failed("ethnicity is not one of the recognised groups (misread?)")


@rule(
    "id_card.name_complete",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("name",),
    examples=[
        Example(FRONT, True),
        Example({"name": "阿依古丽·买买提"}, True, note="a transliterated name"),
        Example({"name": "易"}, False, note="易志 with its 志 dropped"),
    ],
)
def name_complete(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The name has at least two characters: a registered name is a surname and a given
    name, so one character alone is a name with a character not read."""
    value = text(fields, "name")
    if value is None:
        return skipped("no name")
    if len("".join(value.split())) >= 2:
        return passed()
    return failed("the name has one character only (a character not read?)")


# --- back ---------------------------------------------------------------------------

_BACK_REQUIRED = ("issuing_authority", "valid_from", "valid_until")


@rule(
    "id_card.back_required_fields",
    doc_types={ID_BACK},
    reads=_BACK_REQUIRED,
    examples=[Example(BACK, True), Example({**BACK, "valid_until": None}, False)],
)
def back_required_fields(fields: Fields, ctx: RuleContext) -> CheckResult:
    """Every field printed on a card back was read."""
    absent = missing(fields, _BACK_REQUIRED)
    if absent:
        return failed("missing: " + ", ".join(absent), fields=absent)
    return passed()


@rule(
    "id_card.issuing_authority",
    doc_types={ID_BACK},
    reads=("issuing_authority",),
    severity=Severity.WARNING,
    examples=[Example(BACK, True), Example({"issuing_authority": "北京市公安局朝阳分局"}, True),
              Example({"issuing_authority": "北京市朝阳区人民政府"}, False),
              Example({"issuing_authority": "宁分局"}, False,
                      note="the end of 上海市公安局长宁分局 read alone from a hard photo")],
)
def issuing_authority(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The issuing authority is a public security bureau (X公安局) or a branch of one
    (X市公安局Y分局): its name holds 公安局. A branch's name alone (宁分局) is a part of
    the line read without the rest, and the place rule cannot check it."""
    value = text(fields, "issuing_authority")
    if value is None:
        return skipped("no issuing_authority")
    if "公安局" in value:
        return passed()
    return failed("issuing authority is not a public security bureau or its branch (公安局)")


@rule(
    "id_card.issuing_authority_place",
    doc_types={ID_BACK},
    reads=("issuing_authority",),
    severity=Severity.WARNING,
    examples=[Example(BACK, True),
              Example({"issuing_authority": "重庆市梁平县公安局"}, True),
              Example({"issuing_authority": "天津市公安局红桥分局"}, True),
              Example({"issuing_authority": "整源县公安局"}, False)],
)
def issuing_authority_place(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The place of the issuing authority (before 公安局) is a real province, city or county
    of GB/T 2260: a character misread in it (婺源 read as 整源) is caught."""
    value = text(fields, "issuing_authority")
    if value is None:
        return skipped("no issuing_authority")
    m = re.match(r"^(.+?)公安局", value)
    if m is None:
        return skipped("no 公安局 in the issuing authority")
    if gb11643.known_places(m.group(1)):
        return passed()
    return failed("the place of the issuing authority is not a GB/T 2260 province, city or "
                  "county (a misread character?)", details={"place": m.group(1)})


def _validity(fields: Fields) -> tuple[datetime.date | None, datetime.date | None, bool]:
    """valid_from, valid_until (None for 长期 or unreadable), and whether it is 长期."""
    until_text = text(fields, "valid_until")
    lifetime = until_text == LIFETIME
    return (
        parse_date(text(fields, "valid_from")),
        None if lifetime else parse_date(until_text),
        lifetime,
    )


@rule(
    "id_card.validity_dates",
    doc_types={ID_BACK},
    reads=("valid_from", "valid_until"),
    examples=[
        Example(BACK, True),
        Example(BACK_YOUNG, True),
        Example({**BACK, "valid_from": "2016-02-30"}, False, note="no such day"),
        Example({**BACK, "valid_until": "永久"}, False, note="the card says 长期"),
        Example({**BACK_YOUNG, "valid_until": "2008-06-01"}, False, note="ends before it starts"),
        Example({**BACK, "valid_from": "2026-01-01"}, False, note="not yet issued on the example day"),
    ],
)  # fmt: skip
def validity_dates(fields: Fields, ctx: RuleContext) -> list[CheckResult] | CheckResult:
    """valid_from is a date, valid_until a date or 长期, the first before the second, issued by today."""
    if text(fields, "valid_from") is None or text(fields, "valid_until") is None:
        return skipped("valid_from or valid_until is missing")
    valid_from, valid_until, lifetime = _validity(fields)
    problems = []
    if valid_from is None:
        problems.append(
            failed("valid_from is not a date in the form YYYY-MM-DD", fields=["valid_from"])
        )
    if valid_until is None and not lifetime:
        problems.append(
            failed("valid_until is neither a date (YYYY-MM-DD) nor 长期", fields=["valid_until"])
        )
    if valid_from is not None and valid_until is not None and valid_from >= valid_until:
        problems.append(failed("valid_from is not before valid_until"))
    if valid_from is not None and valid_from > ctx.today:
        problems.append(failed("valid_from is in the future", fields=["valid_from"]))
    return problems or passed()


def _period_for_age(age: int) -> str:
    """The validity period the law gives at an age (居民身份证法, art. 5)."""
    if age < 16:
        return "5"
    if age <= 25:
        return "10"
    if age <= 45:
        return "20"
    return LIFETIME


# The application precedes the issue date by some weeks; someone who crossed an age
# boundary in between legitimately holds the period of the younger age.
_APPLICATION_LEAD = datetime.timedelta(days=90)


@rule(
    "id_card.validity_period",
    doc_types={ID_BACK},
    reads=("valid_from", "valid_until", "birth_date"),
    examples=[
        Example({**BACK, "birth_date": "1949-12-31"}, True, note="66 at issue: 长期"),
        Example(BACK_YOUNG, True, note="18 at issue: 10 years"),
        Example({**BACK_YOUNG, "valid_until": "2038-06-01"}, False, note="20 years at 18"),
        Example({**BACK_YOUNG, "valid_until": "2030-06-01"}, False, note="12 years is no period"),
        Example({**BACK, "birth_date": "1990-01-01"}, False, note="长期 at 26"),
        Example({"valid_from": "2010-02-28", "valid_until": "2030-02-28", "birth_date": "1975-03-01"}, True,
                note="34 at issue: 20 years"),
        Example({"valid_from": "2021-02-01", "valid_until": "2031-02-01", "birth_date": "1995-01-15"}, True,
                note="26 at issue, but 25 when applying weeks earlier: 10 years is right"),
        Example({key: BACK_YOUNG[key] for key in ("valid_from", "valid_until")}, False,
                expect_severity=Severity.INFO, note="length fine; no birth date, age check skipped"),
    ],
)  # fmt: skip
def validity_period(fields: Fields, ctx: RuleContext) -> list[CheckResult] | CheckResult:
    """The validity period is 5, 10 or 20 years or 长期, and fits the age at issue.

    The back shows no birth date: the age check needs a birth_date field (from the
    front, joined by the caller) and is skipped without it.
    """
    valid_from, valid_until, lifetime = _validity(fields)
    if valid_from is None or (valid_until is None and not lifetime):
        return skipped("validity dates unreadable (see id_card.validity_dates)")
    period = LIFETIME if lifetime else None
    if valid_until is not None:
        years = period_years(valid_from, valid_until)
        period = str(years) if years is not None else None
    if period is None:
        return failed("validity period is not 5, 10 or 20 years, nor 长期")
    length = passed(check="length", period=period)
    birth_text = text(fields, "birth_date")
    if birth_text is None:
        return [
            length,
            skipped(
                "no birth_date to check the period against the age at issue",
                fields=["birth_date"],
                check="age",
            ),
        ]
    birth_date = parse_date(birth_text)
    if birth_date is None:
        return [
            length,
            failed(
                "birth_date is not a date in the form YYYY-MM-DD",
                fields=["birth_date"],
                check="age",
            ),
        ]
    if birth_date > valid_from:
        return [length, failed("birth date is after the card was issued", check="age")]
    expected = {
        _period_for_age(age_on(birth_date, valid_from)),
        _period_for_age(
            age_on(birth_date, max(birth_date, _days_before(valid_from, _APPLICATION_LEAD)))
        ),
    }
    if period in expected:
        return [length, passed(check="age", period=period)]
    return [
        length,
        failed(
            f"a validity period of {period} does not fit the age at issue",
            check="age",
            period=period,
            expected=sorted(expected),
        ),
    ]


def _days_before(day: datetime.date, delta: datetime.timedelta) -> datetime.date:
    """`day - delta`, stopping at the first representable date."""
    try:
        return day - delta
    except OverflowError:
        return datetime.date.min


@rule(
    "id_card.not_expired",
    doc_types={ID_BACK},
    reads=("valid_until",),
    examples=[
        Example(BACK, True, note="长期"),
        Example(BACK_YOUNG, True),
        Example({"valid_until": "2025-06-01"}, True, note="valid through its last day"),
        Example({"valid_until": "2025-05-31"}, False, note="expired the day before"),
    ],
)
def not_expired(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The card has not expired: valid_until is 长期 or not before today."""
    until_text = text(fields, "valid_until")
    if until_text is None:
        return skipped("no valid_until")
    if until_text == LIFETIME:
        return passed()
    valid_until = parse_date(until_text)
    if valid_until is None:
        return skipped("valid_until unreadable (see id_card.validity_dates)")
    if valid_until < ctx.today:
        return failed("the card has expired")
    return passed()


RULES = [
    front_required_fields,
    birth_date_matches,
    sex_matches,
    address_province,
    ethnicity_known,
    back_required_fields,
    issuing_authority,
    issuing_authority_place,
    validity_dates,
    validity_period,
    not_expired,
]
