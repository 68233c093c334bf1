"""Tests of domain.cn_amount: amounts in Chinese financial capitals, both ways."""

from __future__ import annotations

import doctest
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.exceptions import InvalidFormat, ValidationError

from domain import cn_amount


def test_module_doctests() -> None:
    result = doctest.testmod(cn_amount)
    assert result.attempted > 5
    assert result.failed == 0


# The worked examples of 《正确填写票据和结算凭证的基本规定》, every spelling it allows.
STANDARD_CASES = [
    ("1409.50", ["壹仟肆佰零玖元伍角", "壹仟肆佰零玖元伍角整"]),
    ("6007.14", ["陆仟零柒元壹角肆分"]),
    ("1680.32", ["壹仟陆佰捌拾元叁角贰分", "壹仟陆佰捌拾元零叁角贰分"]),
    ("107000.53", ["壹拾万柒仟元伍角叁分", "壹拾万柒仟元零伍角叁分", "壹拾万零柒仟元伍角叁分"]),
    ("16409.02", ["壹万陆仟肆佰零玖元零贰分"]),
    ("325.04", ["叁佰贰拾伍元零肆分"]),
]


@pytest.mark.parametrize(("figures", "spellings"), STANDARD_CASES)
def test_standard_examples(figures: str, spellings: list[str]) -> None:
    assert cn_amount.format(figures) == spellings[0]
    for words in spellings:
        assert cn_amount.parse(words) == Decimal(figures)


@pytest.mark.parametrize(
    ("figures", "words"),
    [
        ("0", "零元整"),
        ("0.05", "伍分"),
        ("0.5", "伍角"),
        ("10", "壹拾元整"),
        ("15", "壹拾伍元整"),
        ("100", "壹佰元整"),
        ("100000", "壹拾万元整"),
        ("100005000", "壹亿伍仟元整"),
        ("100050000", "壹亿零伍万元整"),
        ("200000000", "贰亿元整"),
        ("1000000.01", "壹佰万元零壹分"),
        ("999999999999.99", "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ],
)
def test_format_and_parse(figures: str, words: str) -> None:
    assert cn_amount.format(figures) == words
    assert cn_amount.parse(words) == Decimal(figures)


@pytest.mark.parametrize(
    ("words", "figures"),
    [
        ("人民币壹佰元整", "100"),
        ("人民币（大写）：壹佰元整", "100"),
        ("大写：人民币 壹 佰 元 正", "100"),
        ("貳萬參仟圓整", "23000"),
        ("拾元整", "10"),  # bad style (壹拾) but unambiguous
        ("壹佰元", "100"),  # 整 omitted
        ("壹万零伍佰元整", "10500"),
        ("壹万伍佰元整", "10500"),  # 零 omitted between explicit units: still unambiguous
    ],
)
def test_lenient_where_unambiguous(words: str, figures: str) -> None:
    assert cn_amount.parse(words) == Decimal(figures)


@pytest.mark.parametrize(
    "words",
    [
        "",
        "整",
        "元整",
        "壹佰",  # no 元
        "壹佰伍元",  # 105 or 150?
        "壹万伍元",
        "一百元整",  # lower-case numerals are not capitals
        "壹贰元",
        "佰元",
        "零佰元",
        "壹佰拾元",
        "壹拾佰元",
        "壹万壹万元",
        "壹亿万元",
        "壹佰元伍分角",
        "壹佰元元",
        "壹佰元整伍角",
        "USD100",
    ],
)
def test_refuses_what_is_not_an_amount(words: str) -> None:
    with pytest.raises(InvalidFormat):
        cn_amount.parse(words)
    assert not cn_amount.is_valid(words)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**14 - 1))
def test_round_trip(cents: int) -> None:
    amount = Decimal(cents) / 100
    words = cn_amount.format(amount)
    assert cn_amount.parse(words) == amount


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整人民币", max_size=20)
    | st.text(max_size=20)
)
def test_junk_raises_only_validation_errors(text: str) -> None:
    try:
        value = cn_amount.parse(text)
    except ValidationError:
        return
    # Whatever is accepted must read back the same when formatted canonically.
    assert cn_amount.parse(cn_amount.format(value)) == value


@pytest.mark.parametrize("bad", ["-1", "0.001", "1e12", "NaN", "Infinity", "abc"])
def test_format_refuses_non_amounts(bad: str) -> None:
    with pytest.raises(ValueError):
        cn_amount.format(bad)


def test_format_refuses_floats() -> None:
    with pytest.raises(TypeError):
        cn_amount.format(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("12345.67", True),
        ("100", True),
        ("0.5", True),
        ("12,345.67", False),
        ("¥100", False),
        ("1.234", False),
        ("", False),
        ("１００", False),
    ],
)
def test_parse_figures(text: str, ok: bool) -> None:
    if ok:
        assert cn_amount.parse_figures(text) == Decimal(text)
    else:
        with pytest.raises(InvalidFormat):
            cn_amount.parse_figures(text)
