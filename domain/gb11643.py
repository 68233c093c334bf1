"""RIC No. (Chinese Resident Identity Card number), 18- and 15-digit, and HK/MO/TW permits.

Builds on python-stdnum (the ``cn/loc`` region data behind :mod:`stdnum.cn.ric`, its
ISO 7064 MOD 11-2 module and its exception tree) and wraps the limits of
:mod:`stdnum.cn.ric` itself:

* 15-digit numbers of GB 11643-1989 (first-generation cards, still found in old
  policies and claims systems) are understood and can be upgraded with :func:`to_18`
  and mapped back with :func:`to_15`;
* residence permits for Hong Kong, Macao and Taiwan residents (prefixes 810000,
  820000, 830000; the 830000 code is not in stdnum's data) are recognised;
* a county code is accepted if it was known at *any* time: stdnum rejects a number
  whose county was created after the birth year, but people who moved their household
  registration there later get exactly such numbers;
* a county code unknown to the data in a province that exists is not invalid (the data
  lag behind re-organisations); callers see it as ``get_region(n).county is None``;
* the birth date must be a real date and not in the future.

The 18-digit number: 6 digits region (GB/T 2260), 8 digits birth date, 3 digits
sequence (odd for men, even for women), 1 check digit (ISO 7064 MOD 11-2, 'X' for 10).

>>> validate('11010519491231002X')            # the example of GB 11643-1999
'11010519491231002X'
>>> validate('110105 19491231 002x')
'11010519491231002X'
>>> validate('110105491231002')               # the same person's 15-digit number
'110105491231002'
>>> to_18('110105491231002')
'11010519491231002X'
>>> to_15('11010519491231002X')
'110105491231002'
>>> calc_check_digit('11010519491231002')
'X'
>>> get_birth_date('11010519491231002X')
datetime.date(1949, 12, 31)
>>> get_sex('11010519491231002X')
'女'
>>> get_region('11010519491231002X')
Region(code='110105', province='北京市', county='朝阳区')
>>> kind('11010519491231002X'), kind('110105491231002'), kind('810000199001010019')
('18', '15', 'hk_mo_tw')
>>> validate('110118198001010018')            # 密云区 (2015) for a man born in 1980
'110118198001010018'
>>> get_region('119999198001010018').county is None   # unknown county: still valid
True
>>> validate('110105194912310021')            # check digit should be X
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidChecksum: The number's checksum or check digit is invalid.
>>> validate('990000198001010012')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidComponent: unknown province code 99
>>> validate('110105300001010014', today=datetime.date(2025, 6, 1))
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidComponent: birth date is in the future
"""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from typing import NamedTuple

from stdnum import numdb
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.iso7064 import mod_11_2
from stdnum.util import clean, isdigits

__all__ = [
    "HK_MO_TW_PREFIXES",
    "Region",
    "calc_check_digit",
    "check_birth_date",
    "compact",
    "format",
    "get_birth_date",
    "get_region",
    "get_sex",
    "is_valid",
    "kind",
    "place_names",
    "province_forms",
    "provinces",
    "to_15",
    "to_18",
    "validate",
]

#: Region prefixes of the residence permits for Hong Kong, Macao and Taiwan residents
#: (港澳台居民居住证, issued since 2018 under the same number scheme).
HK_MO_TW_PREFIXES = frozenset({"810000", "820000", "830000"})

# Nobody alive when first-generation cards were issued (1984) was born much before
# 1870; an earlier year is a misread, not a person.
_EARLIEST_BIRTH_YEAR = 1870

# stdnum's data spell 81/82 in traditional characters and lack 83 (the Taiwan-resident
# permit code is not a GB/T 2260 region). Names here follow the permits' wording.
_PROVINCE_NAMES = {
    "81": "香港特别行政区",
    "82": "澳门特别行政区",
    "83": "台湾地区",
}
_EXTRA_COUNTIES = {"830000": "台湾地区"}


class Region(NamedTuple):
    """Where a number was first registered: the 6-digit code and its names."""

    code: str
    province: str
    county: str | None


def compact(number: str) -> str:
    """Convert the number to its minimal form: no spaces or hyphens, upper-case X.

    Full-width characters (common in OCR output and in forms typed with a Chinese
    input method) are folded to ASCII first.
    """
    number = clean(number, " -")
    return unicodedata.normalize("NFKC", number).replace(" ", "").upper().strip()


def kind(number: str) -> str:
    """Tell the number's shape: '18', '15' or 'hk_mo_tw'; raise if it has none.

    This looks at length and characters only; use :func:`validate` for the rest.
    """
    number = compact(number)
    if len(number) == 15:
        if not isdigits(number):
            raise InvalidFormat()
        return "15"
    if len(number) == 18:
        if not isdigits(number[:17]) or not (isdigits(number[17]) or number[17] == "X"):
            raise InvalidFormat()
        return "hk_mo_tw" if number[:6] in HK_MO_TW_PREFIXES else "18"
    raise InvalidLength()


def calc_check_digit(number: str) -> str:
    """Calculate the ISO 7064 MOD 11-2 check digit of an 18-digit number.

    Takes the 17-digit body, or a full 18-character number whose last character is
    then ignored.
    """
    number = compact(number)
    if len(number) == 18:
        number = number[:17]
    if len(number) != 17 or not isdigits(number):
        raise InvalidFormat()
    return mod_11_2.calc_check_digit(number)


def calc_check_values(bodies):
    """The check digits of many 17-digit bodies at once, for set-based work over whole
    columns: an (n, 17) integer array of digits in, an (n,) array of values 0..10 out
    (10 is written 'X'). The same arithmetic as :func:`calc_check_digit` (ISO 7064
    MOD 11-2: weights 2**(17-i) mod 11), which the tests compare it with.
    """
    import numpy as np

    weights = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
    total = (np.asarray(bodies, dtype=np.int64) * weights).sum(axis=1)
    return (12 - total % 11) % 11


def _birth_digits(number: str) -> str:
    """The birth date as YYYYMMDD; 15-digit numbers all belong to the 1900s."""
    if kind(number) == "15":
        return "19" + number[6:12]
    return number[6:14]


def get_birth_date(number: str) -> datetime.date:
    """Return the birth date the number encodes; raise InvalidComponent if not a date."""
    number = compact(number)
    digits = _birth_digits(number)
    try:
        return datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise InvalidComponent("birth date is not a real date") from None


def get_sex(number: str) -> str:
    """Return '男' or '女' from the parity of the sequence code's last digit."""
    number = compact(number)
    digit = number[16] if kind(number) != "15" else number[14]
    return "男" if int(digit) % 2 else "女"


@functools.cache
def _loc_db() -> numdb.NumDB:
    return numdb.get("cn/loc")


@functools.cache
def place_names() -> frozenset[str]:
    """Every place name of the GB/T 2260 data (provinces, prefectures, counties, with the
    names they had before a renaming), for checking a printed place such as an issuing
    authority's (兰坪白族普米族自治县公安局)."""
    names: set[str] = set(_PROVINCE_NAMES.values())
    for _code, info in _walk(_loc_db()):
        for key in ("province", "county"):
            for entry in info.get(key, "").split(","):
                name = entry.split("]", 1)[-1].strip()
                if name and name != "市辖区":
                    names.add(name)
    return frozenset(names)


def known_places(text: str) -> bool:
    """Whether the text is one or more GB/T 2260 place names in a row (重庆市梁平县).

    >>> known_places("重庆市梁平县"), known_places("整源县")
    (True, False)
    """
    names = place_names()
    reach = [True] + [False] * len(text)
    for i in range(len(text)):
        if reach[i]:
            for j in range(i + 2, min(len(text), i + 16) + 1):
                if text[i:j] in names:
                    reach[j] = True
    return reach[-1]


_AUTHORITY_RE = re.compile(r"^(.+?)公安局(?:(.+)分局)?$")


def authority_known(value: str) -> bool:
    """Whether an ID card's issuing authority names real places of GB/T 2260: a county's
    or a city's public security bureau (婺源县公安局, 重庆市梁平县公安局), or a city's
    bureau and the branch of one of its districts (天津市公安局红桥分局: 红桥区;
    上海市公安局浦东分局: 浦东新区).

    >>> authority_known("花垣县公安局"), authority_known("北京市公安局门头沟分局")
    (True, True)
    >>> authority_known("北京市公安局门头公分局"), authority_known("和群县公安局")
    (False, False)
    """
    m = _AUTHORITY_RE.match(value)
    if m is None or not known_places(m.group(1)):
        return False
    branch = m.group(2)
    return branch is None or any(branch + tail in place_names() for tail in ("区", "新区", ""))


#: The municipalities (直辖市): their districts and counties have no prefecture between.
_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})


def _names(entries: str) -> list[str]:
    """Every name of stdnum's '[start-end]name,...' history, placeholders left out."""
    names = [e.split("]", 1)[-1].strip() for e in entries.split(",")]
    return [n for n in names if n and n not in ("市辖区", "县", "市区", "郊区")
            and "直辖" not in n and "行政单位" not in n]


_ADMINISTRATIVE = re.compile("公安局|分局|自治|地区|[省市区县旗]")


def place_core(name: str) -> str:
    """A place's or a bureau's name without its administrative words (省, 市, 区, 县, 旗,
    自治, 地区, 公安局, 分局): the characters that tell it from another.

    >>> place_core("湖南省湘潭市雨湖区"), place_core("厦门市公安局思明分局")
    ('湖南湘潭雨湖', '厦门思明')
    """
    return _ADMINISTRATIVE.sub("", name)


@functools.cache
def prefecture_counties() -> dict[str, frozenset[str]]:
    """Each prefecture's short name (阜阳) and the short names of its counties and
    districts (颍州, 颍东, 颍泉, 临泉 ...), current and former, as :func:`place_core`
    gives them: what a bank's branch or a hospital names after its city.

    >>> {"颍东", "颍州", "临泉"} <= prefecture_counties()["阜阳"]
    True
    """
    entries = dict(_walk(_loc_db()))
    out: dict[str, set[str]] = {}
    for code, info in entries.items():
        if len(code) != 6 or code[4:] == "00" or code[2:4] == "00" or "county" not in info:
            continue
        counties = {place_core(n) for n in _names(info["county"])}
        for prefecture in _names(entries.get(code[:4] + "00", {}).get("county", "")):
            core = place_core(prefecture)
            if len(core) >= 2:
                out.setdefault(core, set()).update(c for c in counties if len(c) >= 2)
    return {k: frozenset(v) for k, v in out.items()}


@functools.cache
def authority_names() -> tuple[str, ...]:
    """Every issuing authority a resident identity card prints in GB/T 2260's names
    (current and former; each passes :func:`authority_known`): a county's or a county
    city's bureau (托克逊县公安局), a prefecture city's (厦门市公安局), a district's branch
    of its city's bureau (厦门市公安局思明分局, 上海市公安局浦东分局), and a
    municipality's county named with it (重庆市梁平县公安局).

    >>> names = authority_names()
    >>> all(a in names for a in ("托克逊县公安局", "厦门市公安局思明分局", "上海市公安局浦东分局"))
    True
    >>> len(names) > 4000
    True
    """
    entries = dict(_walk(_loc_db()))
    out: set[str] = set()
    for code, info in entries.items():
        if len(code) != 6 or code[2:] == "0000" or "county" not in info:
            continue
        names = _names(info["county"])
        if code[4:] == "00":  # a prefecture: its city's bureau
            out.update(f"{n}公安局" for n in names if n.endswith("市"))
            continue
        province = _PROVINCE_NAMES.get(code[:2]) or next(
            (p for p in _names(entries.get(code[:2], {}).get("province", ""))), "")
        if code[:2] in _MUNICIPALITIES:
            cities = [province]
        else:
            cities = [n for n in _names(entries.get(code[:4] + "00", {}).get("county", ""))
                      if n.endswith("市")]
        for county in names:
            if county.endswith("区") and cities:
                stem = county[:-2] if county.endswith("新区") and len(county) > 3 else (
                    county[:-1] if len(county) > 2 else county)
                out.update(f"{city}公安局{stem}分局" for city in cities)
                continue
            out.add(f"{county}公安局")
            if code[:2] in _MUNICIPALITIES:
                out.add(f"{province}{county}公安局")
    return tuple(sorted(a for a in out if authority_known(a)))


@functools.cache
def address_prefixes() -> tuple[str, ...]:
    """Every way a card's address may begin in GB/T 2260's names (current and former):
    its province, its prefecture (none in a municipality or for a county the province
    administers) and its county, as printed in full (湖南省湘潭市雨湖区,
    北京市丰台区, 海南省五指山市).

    >>> prefixes = address_prefixes()
    >>> all(p in prefixes for p in ("湖南省湘潭市雨湖区", "北京市丰台区", "海南省五指山市",
    ...                             "新疆维吾尔自治区吐鲁番地区托克逊县"))
    True
    """
    entries = dict(_walk(_loc_db()))
    province_names = _province_names()
    out: set[str] = set()
    for code, info in entries.items():
        if len(code) != 6 or code[4:] == "00" or "county" not in info:
            continue
        province = province_names.get(code[:2])
        if not province:
            continue
        prefectures = [] if code[:2] in _MUNICIPALITIES else _names(
            entries.get(code[:4] + "00", {}).get("county", ""))
        for county in _names(info["county"]):
            if not prefectures:
                out.add(province + county)
            out.update(province + (p if p != county else "") + county for p in prefectures)
    return tuple(sorted(out))


@functools.cache
def _address_starts() -> frozenset[str]:
    """:func:`address_prefixes`, and a province with each prefecture that has no county
    under it (广东省东莞市: its towns follow)."""
    entries = dict(_walk(_loc_db()))
    province_names = _province_names()
    parents = {code[:4] for code, info in entries.items()
               if len(code) == 6 and code[4:] != "00" and "county" in info}
    out = set(address_prefixes())
    for code, info in entries.items():
        if (len(code) == 6 and code[4:] == "00" and code[2:4] != "00" and "county" in info
                and code[:4] not in parents and code[:2] in province_names):
            out.update(province_names[code[:2]] + p for p in _names(info["county"]))
    return frozenset(out)


def address_start_known(address: str) -> bool:
    """Whether an address begins with its province, prefecture and county as GB/T 2260
    names them in full (:func:`address_prefixes`), or with a province and a prefecture
    that has no county (广东省东莞市); a part dropped or misread between them is not
    (湖南省怀化市沅镇: 沅陵县平安 dropped).

    >>> address_start_known("湖南省怀化市沅陵县平安镇杨柳村82号")
    True
    >>> address_start_known("湖南省怀化市沅镇杨柳村82号"), address_start_known("广东省东莞市虎门镇1号")
    (False, True)
    """
    starts = _address_starts()
    text = "".join(address.split())
    return any(text[:n] in starts for n in range(4, min(len(text), 40) + 1))


#: What a province's full name ends in, dropped in its short form (广西壮族自治区 → 广西).
_PROVINCE_SUFFIX_RE = re.compile(r"(壮族|回族|维吾尔)?自治区$|特别行政区$|地区$|省$|市$")


@functools.cache
def provinces() -> tuple[str, ...]:
    """The full names of the provinces, autonomous regions, municipalities and special
    administrative regions (the first level of GB/T 2260), as addresses print them.

    >>> len(provinces()), "新疆维吾尔自治区" in provinces(), "北京市" in provinces()
    (35, True, True)
    """
    names = _province_names()
    return tuple(names[code] for code in sorted(names))


@functools.cache
def _province_names() -> dict[str, str]:
    """The province's full name by its two-digit code."""
    names = dict(_PROVINCE_NAMES)
    for code, info in _walk(_loc_db()):
        if len(code) == 2 and info.get("province") and code not in names:
            names[code] = info["province"].split("]", 1)[-1].strip()
    return names


def province_forms(province: str) -> tuple[str, ...]:
    """The full name of a province and its short form.

    >>> province_forms("广西壮族自治区"), province_forms("北京市")
    (('广西壮族自治区', '广西'), ('北京市', '北京'))
    """
    short = _PROVINCE_SUFFIX_RE.sub("", province)
    return (province, short) if short and short != province else (province,)


def _walk(db: numdb.NumDB):
    """(code, properties) of every entry of a numdb tree."""
    stack = [("", db.prefixes)]
    while stack:
        prefix, nodes = stack.pop()
        for _length, low, _high, props, children in nodes:
            yield prefix + low, props
            if children:
                stack.append((prefix + low, children))


def _county_name(entries: str, birth_year: int | None) -> str:
    """Pick a county name from stdnum's '[start-end]name,...' history.

    Prefer the name in use in the birth year; otherwise take the latest name: a code
    created after the birth year is still a real place (see the module docstring).
    """
    parsed: list[tuple[int | None, int | None, str]] = []
    for entry in entries.split(","):
        if entry.startswith("[") and "]" in entry:
            years, name = entry[1:].split("]", 1)
            start, _, end = years.partition("-")
            parsed.append((int(start) if start else None, int(end) if end else None, name))
        else:
            parsed.append((None, None, entry))
    if birth_year is not None:
        for start, end, name in parsed:
            if (start is None or start <= birth_year) and (end is None or birth_year <= end):
                return name
    return parsed[-1][2]


def county_code(code: str) -> bool:
    """Whether six digits are a county's code in the GB/T 2260 data (current or former).

    >>> county_code("110105"), county_code("110199"), county_code("999999")
    (True, False, False)
    """
    if len(code) != 6 or not code.isdigit():
        return False
    if code in _EXTRA_COUNTIES:
        return True
    parts = _loc_db().info(code)
    return len(parts) > 1 and "county" in parts[1][1]


def get_region(number: str) -> Region:
    """Return the region of the number's first 6 digits.

    Raises InvalidComponent when the province does not exist; an unknown county in an
    existing province gives ``county=None``.
    """
    number = compact(number)
    kind(number)
    code = number[:6]
    province_code = code[:2]
    try:
        birth_year: int | None = get_birth_date(number).year
    except ValidationError:
        birth_year = None
    parts = _loc_db().info(code)
    province = _PROVINCE_NAMES.get(province_code)
    county: str | None = _EXTRA_COUNTIES.get(code)
    if parts and "province" in parts[0][1]:
        province = province or parts[0][1]["province"]
        if len(parts) > 1 and "county" in parts[1][1]:
            county = _county_name(parts[1][1]["county"], birth_year)
    if province is None:
        raise InvalidComponent(f"unknown province code {province_code}")
    return Region(code=code, province=province, county=county)


def validate(number: str, *, today: datetime.date | None = None) -> str:
    """Check the number and return its compact form (15 or 18 characters), or raise.

    Raises InvalidLength, InvalidFormat, InvalidChecksum (18-digit forms only: the
    15-digit form has no check digit) or InvalidComponent (birth date not real, in the
    future or implausibly early; unknown province).
    """
    number = compact(number)
    shape = kind(number)
    if shape != "15" and number[17] != calc_check_digit(number):
        raise InvalidChecksum()
    check_birth_date(number, today=today)
    get_region(number)
    return number


def check_birth_date(number: str, *, today: datetime.date | None = None) -> datetime.date:
    """Return the birth date if it is real, not after `today` and not implausibly early.

    Raises InvalidComponent otherwise.
    """
    birth_date = get_birth_date(number)
    if birth_date > (today or datetime.date.today()):
        raise InvalidComponent("birth date is in the future")
    if birth_date.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidComponent("birth date is implausibly early")
    return birth_date


def is_valid(number: str, *, today: datetime.date | None = None) -> bool:
    """Check whether the number is valid (see :func:`validate`)."""
    try:
        return bool(validate(number, today=today))
    except ValidationError:
        return False


def one_edit_away(read: str, *, today: datetime.date | None = None) -> list[str]:
    """The valid 18-character numbers (:func:`validate`, with a county known to GB/T 2260)
    one character away from ``read``, a run of 17 or 18 digits (the last may be X): a
    character put in anywhere (17), or one changed (18). Empty for anything else.
    About one body in eleven has the right check digit, so a run has a few to a score.

    >>> "11010519491231002X" in one_edit_away("1101051949123102X")  # a 0 dropped
    True
    >>> "11010519491231002X" in one_edit_away("11010519491231082X")  # a 0 read 8
    True
    """
    if not re.fullmatch(r"\d{16}[\dX]|\d{17}[\dX]", read):
        return []
    tries: set[str] = set()
    for i in range(18):
        for d in "0123456789X" if i == 17 else "0123456789":
            tries.add(read[:i] + d + read[i:] if len(read) == 17 else read[:i] + d + read[i + 1:])
    tries.discard(read)
    return sorted(n for n in tries
                  if is_valid(n, today=today) and county_code(n[:6]))


def format(number: str) -> str:
    """Reformat the number to the standard presentation: compact, upper-case X."""
    return compact(number)


def to_18(number: str) -> str:
    """Return the 18-digit form of a valid 15- or 18-digit number.

    A 15-digit number gets the century '19' inserted before its birth date and a check
    digit appended (GB 11643-1999, appendix on upgrading).
    """
    number = validate(number)
    if len(number) == 18:
        return number
    body = number[:6] + "19" + number[6:]
    return body + calc_check_digit(body)


def to_15(number: str) -> str:
    """Return the 15-digit form of a valid number, for matching against old records.

    Only numbers of people born in the 1900s have one (15-digit numbers carry a
    2-digit year), and residence permits never had one: those raise InvalidComponent.
    """
    number = validate(number)
    if len(number) == 15:
        return number
    if number[:6] in HK_MO_TW_PREFIXES:
        raise InvalidComponent("residence permit numbers have no 15-digit form")
    if number[6:8] != "19":
        raise InvalidComponent("only births in the 1900s have a 15-digit form")
    return number[:6] + number[8:17]
