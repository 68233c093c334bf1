"""Tests of domain.gb11643: the Chinese resident identity number, 18- and 15-digit."""

from __future__ import annotations

import datetime
import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from domain import gb11643
from validators.cli_support import describe_id_number

TODAY = datetime.date(2025, 6, 1)
STANDARD = "11010519491231002X"


def with_check_digit(body: str) -> str:
    return body + gb11643.calc_check_digit(body)


def test_module_doctests() -> None:
    result = doctest.testmod(gb11643)
    assert result.attempted > 10
    assert result.failed == 0


def test_standard_example() -> None:
    # GB 11643-1999 works the check digit of 11010519491231002 through to X.
    assert gb11643.calc_check_digit("11010519491231002") == "X"
    assert gb11643.validate(STANDARD) == STANDARD
    assert gb11643.get_birth_date(STANDARD) == datetime.date(1949, 12, 31)
    assert gb11643.get_sex(STANDARD) == "女"
    assert gb11643.get_region(STANDARD) == gb11643.Region("110105", "北京市", "朝阳区")
    assert gb11643.kind(STANDARD) == "18"


def test_check_digit_agrees_with_stdnum() -> None:
    for body in ("11010519491231002", "44030619850612003", "36042619910101007"):
        number = body + gb11643.calc_check_digit(body)
        assert stdnum_ric.calc_check_digit(number) == number[-1]
        assert gb11643.calc_check_digit(number) == number[-1]  # full number: last char ignored


def test_compact_normalises_what_people_and_ocr_write() -> None:
    assert gb11643.compact(" 110105-19491231-002x ") == STANDARD
    assert gb11643.compact("１１０１０５１９４９１２３１００２Ｘ") == STANDARD  # full-width
    assert gb11643.format("110105 19491231 002x") == STANDARD


@pytest.mark.parametrize(
    ("number", "error"),
    [
        ("1101051949123100", InvalidLength),
        ("", InvalidLength),
        ("11010519491231002XX", InvalidLength),
        ("1101051949123100AX", InvalidFormat),
        ("11010519491231002Y", InvalidFormat),
        ("11010549123100X", InvalidFormat),  # 15-digit numbers have no X
        ("110105194912310021", InvalidChecksum),
        (with_check_digit("11010519800230001"), InvalidComponent),  # 30 February
        (with_check_digit("11010519801301001"), InvalidComponent),  # month 13
        (with_check_digit("99000019800101001"), InvalidComponent),  # no province 99
        (with_check_digit("11010518000101001"), InvalidComponent),  # nobody born in 1800 applies
        ("110105800230001", InvalidComponent),  # 15-digit, 30 February 1980
    ],
)
def test_invalid_numbers_raise_the_right_error(number: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        gb11643.validate(number, today=TODAY)
    assert not gb11643.is_valid(number, today=TODAY)


def test_birth_date_must_not_be_in_the_future() -> None:
    number = with_check_digit("11010520250601001")
    assert gb11643.is_valid(number, today=TODAY)  # born today
    with pytest.raises(InvalidComponent, match="future"):
        gb11643.validate(number, today=TODAY - datetime.timedelta(days=1))


def test_fifteen_digit_numbers() -> None:
    assert gb11643.kind("110105491231002") == "15"
    assert gb11643.validate("110105491231002") == "110105491231002"
    assert gb11643.get_birth_date("110105491231002") == datetime.date(1949, 12, 31)
    assert gb11643.get_sex("110105491231002") == "女"  # last digit of a 15-digit number
    assert gb11643.get_sex("110105491231001") == "男"
    assert gb11643.get_region("110105491231002").county == "朝阳区"


def test_to_18_and_back() -> None:
    assert gb11643.to_18("110105491231002") == STANDARD
    assert gb11643.to_15(STANDARD) == "110105491231002"
    assert gb11643.to_18(STANDARD) == STANDARD
    assert gb11643.to_15("110105491231002") == "110105491231002"


@settings(max_examples=150, deadline=None)
@given(
    region=st.sampled_from(["110105", "310115", "440306", "510104", "650102", "120110"]),
    birth=st.dates(datetime.date(1900, 1, 1), datetime.date(1999, 12, 31)),
    sequence=st.integers(0, 999),
)
def test_15_18_round_trip(region: str, birth: datetime.date, sequence: int) -> None:
    number15 = f"{region}{birth:%y%m%d}{sequence:03d}"
    number18 = gb11643.to_18(number15)
    assert gb11643.validate(number18) == number18
    assert number18[6:14] == f"{birth:%Y%m%d}"
    assert gb11643.to_15(number18) == number15
    assert gb11643.get_sex(number18) == gb11643.get_sex(number15)
    assert gb11643.get_birth_date(number18) == gb11643.get_birth_date(number15) == birth


def test_no_15_digit_form_outside_the_1900s_or_for_permits() -> None:
    with pytest.raises(InvalidComponent):
        gb11643.to_15(with_check_digit("11010520000501001"))
    with pytest.raises(InvalidComponent):
        gb11643.to_15("810000199001010019")


def test_hong_kong_macao_taiwan_permits() -> None:
    for body, province in (
        ("81000019900101001", "香港特别行政区"),
        ("82000019950505002", "澳门特别行政区"),
        ("83000019880808003", "台湾地区"),
    ):
        number = with_check_digit(body)
        assert gb11643.kind(number) == "hk_mo_tw"
        assert gb11643.validate(number, today=TODAY) == number
        assert gb11643.get_region(number).province == province
    # stdnum refuses these: 810000 dates from 1997 and 830000 is not in its data.
    assert not stdnum_ric.is_valid("810000199001010019")
    assert not stdnum_ric.is_valid("830000198808080033")


def test_county_created_after_birth_is_not_rejected() -> None:
    # 密云区 (110118) exists since 2015; a man born in 1980 registered there later.
    number = with_check_digit("11011819800101001")
    assert not stdnum_ric.is_valid(number)
    assert gb11643.is_valid(number, today=TODAY)
    assert gb11643.get_region(number).county == "密云区"


def test_county_name_follows_the_birth_year() -> None:
    # 120110 was 东郊区 until 1991, then 东丽区.
    assert gb11643.get_region(with_check_digit("12011019850101001")).county == "东郊区"
    assert gb11643.get_region(with_check_digit("12011019950101001")).county == "东丽区"


def test_unknown_county_in_a_real_province_is_valid_without_county() -> None:
    number = with_check_digit("11999919800101001")
    assert gb11643.is_valid(number, today=TODAY)
    assert gb11643.get_region(number) == gb11643.Region("119999", "北京市", None)


def test_unknown_province_has_no_region() -> None:
    with pytest.raises(InvalidComponent):
        gb11643.get_region(with_check_digit("99000019800101001"))


_ID_LIKE = st.one_of(
    st.text(max_size=25),
    st.text(alphabet="0123456789Xx -", min_size=14, max_size=20),
    st.from_regex(r"\A[0-9]{17}[0-9X]\Z"),
    st.from_regex(r"\A[0-9]{15}\Z"),
)


@settings(max_examples=300, deadline=None)
@given(_ID_LIKE)
def test_junk_raises_only_validation_errors(value: str) -> None:
    for function in (
        gb11643.validate,
        gb11643.kind,
        gb11643.get_birth_date,
        gb11643.get_sex,
        gb11643.get_region,
        gb11643.to_18,
        gb11643.to_15,
        gb11643.calc_check_digit,
    ):
        try:
            function(value)
        except ValidationError:
            pass
    assert gb11643.is_valid(value) in (True, False)


@pytest.mark.parametrize("junk", [None, 12345, b"110105", object()])
def test_non_text_is_invalid_not_a_crash(junk: object) -> None:
    with pytest.raises(ValidationError):
        gb11643.validate(junk)  # type: ignore[arg-type]
    assert gb11643.is_valid(junk) is False  # type: ignore[arg-type]


# --- describe_id_number (the CLI helper) --------------------------------------------

KEYS = {"input", "valid", "kind", "normalized", "birth_date", "sex", "region", "checks"}


def test_describe_valid_18() -> None:
    info = describe_id_number(STANDARD, today=TODAY)
    assert set(info) == KEYS
    assert info["valid"] is True
    assert (info["kind"], info["normalized"], info["birth_date"], info["sex"]) == (
        "18",
        STANDARD,
        "1949-12-31",
        "女",
    )
    assert info["region"] == {"code": "110105", "province": "北京市", "county": "朝阳区"}
    assert [c["passed"] for c in info["checks"]] == [True, True, True]


def test_describe_15_gives_the_18_digit_form() -> None:
    info = describe_id_number("110105491231002", today=TODAY)
    assert info["valid"] is True and info["kind"] == "15"
    assert info["normalized"] == STANDARD


def test_describe_unknown_county_is_valid_with_a_warning() -> None:
    info = describe_id_number(with_check_digit("11999919800101001"), today=TODAY)
    assert info["valid"] is True
    assert info["region"]["county"] is None
    components = next(c for c in info["checks"] if c["rule"] == "id_number.components")
    assert (components["passed"], components["severity"]) == (False, "warning")


@pytest.mark.parametrize("junk", ["", "hello", "1101051949123100", "11010519491231002Y"])
def test_describe_junk(junk: str) -> None:
    info = describe_id_number(junk, today=TODAY)
    assert set(info) == KEYS
    assert info["valid"] is False and info["kind"] is None and info["normalized"] is None
    assert info["checks"][0]["rule"] == "id_number.format" and not info["checks"][0]["passed"]


def test_describe_masks_the_number_in_checks() -> None:
    info = describe_id_number("110105194912310021", today=TODAY)
    assert info["valid"] is False and info["kind"] == "18"
    assert "110105194912310021" not in repr(info["checks"])


def test_validity_period_doctests() -> None:
    """The card's validity periods (domain.validity), shared by the rule and the reader."""
    from domain import validity

    result = doctest.testmod(validity)
    assert result.attempted and result.failed == 0


@settings(max_examples=150, deadline=None)
@given(
    region=st.sampled_from(["110105", "310115", "440306", "510104", "650102", "522324"]),
    birth=st.dates(datetime.date(1930, 1, 1), datetime.date(2015, 12, 31)),
    sequence=st.integers(0, 999),
    at=st.integers(0, 17),
    digit=st.sampled_from("0123456789"),
)
def test_a_number_one_character_off_has_the_true_one_among_its_valid_neighbours(
        region: str, birth: datetime.date, sequence: int, at: int, digit: str) -> None:
    """A digit dropped or misread: the true number is among the valid numbers one edit
    away, and every one of them is valid with a known county."""
    number = with_check_digit(f"{region}{birth:%Y%m%d}{sequence:03d}")
    dropped = number[:at] + number[at + 1:]
    changed = number[:at] + digit + number[at + 1:]
    near = gb11643.one_edit_away(dropped, today=TODAY)
    assert number in near
    assert all(gb11643.is_valid(n, today=TODAY) and gb11643.county_code(n[:6]) for n in near)
    if changed != number and not gb11643.is_valid(changed, today=TODAY) and digit != "X":
        assert number in gb11643.one_edit_away(changed, today=TODAY)
    assert gb11643.one_edit_away(number[:15]) == []  # too short to say
