"""Amounts in Chinese financial capitals (中文大写金额), read and written both ways.

Claim forms carry the amount twice, in figures and in capitals; the capitals exist so
that the figures cannot be altered unnoticed. This module parses capitals to a Decimal
and formats a Decimal in capitals following the rules of 《正确填写票据和结算凭证的基本规定》:
壹 before 拾 is written, 零 marks zeros in the middle, 整 ends an amount in whole yuan.

>>> format('12345.67')
'壹万贰仟叁佰肆拾伍元陆角柒分'
>>> format('100')
'壹佰元整'
>>> format('1409.50'), format('16409.02'), format('6007.14')
('壹仟肆佰零玖元伍角', '壹万陆仟肆佰零玖元零贰分', '陆仟零柒元壹角肆分')
>>> format('107000.53'), format('100050000'), format('0.05'), format('0')
('壹拾万柒仟元伍角叁分', '壹亿零伍万元整', '伍分', '零元整')
>>> parse('壹万贰仟叁佰肆拾伍元陆角柒分')
Decimal('12345.67')
>>> parse('人民币（大写）：壹佰元整')
Decimal('100.00')

Both spellings the rules allow for an optional 零 are read, and so are the traditional
forms of the characters:

>>> parse('壹仟陆佰捌拾元零叁角贰分') == parse('壹仟陆佰捌拾元叁角贰分') == Decimal('1680.32')
True
>>> parse('壹拾万零柒仟元伍角叁分') == parse('壹拾万柒仟元伍角叁分')
True
>>> parse('貳萬圓正')
Decimal('20000.00')

A missing 零 before a final digit makes the amount ambiguous (壹佰伍元: 105 or 150?),
so it is refused, like anything else that is not an amount:

>>> parse('壹佰伍元')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidFormat: missing 零 before the last digit
>>> parse('一百元')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidFormat: not a capital amount character: 一
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from stdnum.exceptions import InvalidFormat, ValidationError

__all__ = ["compact", "format", "is_valid", "parse", "parse_figures"]

_DIGITS = {
    "零": 0, "壹": 1, "贰": 2, "貳": 2, "叁": 3, "叄": 3, "參": 3, "肆": 4,
    "伍": 5, "陆": 6, "陸": 6, "柒": 7, "捌": 8, "玖": 9,
}  # fmt: skip
_SMALL_UNITS = {"拾": 1, "佰": 2, "仟": 3}
_BIG_UNITS = {"万": 4, "萬": 4, "亿": 8, "億": 8}
_YUAN = "元圆圓"
_WHOLE = "整正"
_CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_CAPITAL_SMALL_UNITS = ("", "拾", "佰", "仟")
_LIMIT = Decimal(10) ** 12  # beyond 9999亿 the unit 万亿 would be needed; no claim is that big
_CENT = Decimal("0.01")

# Printed forms put a label before the amount: 人民币（大写）：…, 大写金额：人民币…
_PREFIX_RE = re.compile(r"^(人民币|人民幣|RMB|CNY|金额|金額|大写|大寫|[()\[\]【】:])")
_FRACTION_RE = re.compile(
    r"^零*(?:([零壹贰貳叁叄參肆伍陆陸柒捌玖])角)?零?(?:([零壹贰貳叁叄參肆伍陆陸柒捌玖])分)?([整正])?$"
)
_FIGURES_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")


def compact(text: str) -> str:
    """Strip whitespace, full-width forms and a leading label such as 人民币（大写）：."""
    try:
        text = unicodedata.normalize("NFKC", str(text))
    except Exception:  # noqa: BLE001 - anything unprintable is simply not an amount
        raise InvalidFormat("not text") from None
    text = "".join(text.split())
    while True:
        stripped = _PREFIX_RE.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def _parse_integer(text: str) -> int:
    """Read the yuan part (everything before 元)."""
    total = 0
    group = 0  # value of the current 4-digit group (before 万 or 亿, or the last one)
    last_pos: int | None = None  # power of the last 拾/佰/仟 written in this group
    last_big: int | None = None  # power of the last 万/亿 written
    digit: int | None = None  # a digit waiting for its unit
    zero_seen = False  # a 零 since the last unit: the next digit may skip positions
    for ch in text:
        if ch in _DIGITS:
            value = _DIGITS[ch]
            if digit is not None:
                raise InvalidFormat("two digits without a unit between them")
            if value == 0:
                zero_seen = True
            else:
                digit = value
        elif ch in _SMALL_UNITS:
            pos = _SMALL_UNITS[ch]
            if digit is None:
                # 拾元 for 10 is bad style (壹拾元) but not ambiguous: only at the start.
                if pos == 1 and total == 0 and group == 0 and last_big is None and not zero_seen:
                    digit = 1
                else:
                    raise InvalidFormat(f"{ch} without a digit before it")
            if last_pos is not None and pos >= last_pos:
                raise InvalidFormat("units out of order")
            group += digit * 10**pos
            last_pos, digit, zero_seen = pos, None, False
        elif ch in _BIG_UNITS:
            power = _BIG_UNITS[ch]
            if digit is not None:
                _check_last_digit(last_pos, last_big, zero_seen)
                group += digit
            if group == 0:
                raise InvalidFormat(f"{ch} without a number before it")
            if last_big is not None and power >= last_big:
                raise InvalidFormat("units out of order")
            total += group * 10**power
            group, last_pos, last_big, digit, zero_seen = 0, None, power, None, False
        else:
            raise InvalidFormat(f"not a capital amount character: {ch}")
    if digit is not None:
        _check_last_digit(last_pos, last_big, zero_seen)
        group += digit
    return total + group


def _check_last_digit(last_pos: int | None, last_big: int | None, zero_seen: bool) -> None:
    """A digit without unit is the ones digit: it must follow 拾, a 零, or stand alone."""
    if zero_seen or last_pos == 1 or (last_pos is None and last_big is None):
        return
    raise InvalidFormat("missing 零 before the last digit")


def parse(text: str) -> Decimal:
    """Read an amount in capitals and return it as a Decimal with 2 decimal places.

    Raises InvalidFormat (from stdnum.exceptions) when the text is not an amount.
    """
    text = compact(text)
    if not text:
        raise InvalidFormat("empty")
    positions = [i for i, ch in enumerate(text) if ch in _YUAN]
    if len(positions) > 1:
        raise InvalidFormat("元 more than once")
    if positions:
        integer_text, fraction_text = text[: positions[0]], text[positions[0] + 1 :]
        if not integer_text:
            raise InvalidFormat("元 without a number before it")
        yuan = _parse_integer(integer_text)
    else:
        # Only amounts under one yuan may omit 元 (伍角, 伍分).
        integer_text, fraction_text, yuan = "", text, 0
        if not any(unit in text for unit in "角分"):
            raise InvalidFormat("missing 元")
    match = _FRACTION_RE.match(fraction_text)
    if match is None:
        raise InvalidFormat("malformed 角/分 part")
    jiao = _DIGITS[match.group(1)] if match.group(1) else 0
    fen = _DIGITS[match.group(2)] if match.group(2) else 0
    if not integer_text and not (match.group(1) or match.group(2)):
        raise InvalidFormat("no amount")
    return (Decimal(yuan) + Decimal(jiao) / 10 + Decimal(fen) / 100).quantize(_CENT)


def is_valid(text: str) -> bool:
    """Check whether the text is an amount in capitals that :func:`parse` reads."""
    try:
        parse(text)
    except ValidationError:
        return False
    return True


def _to_decimal(amount: Decimal | str | int) -> Decimal:
    if isinstance(amount, float):
        raise TypeError("pass a Decimal or a string: floats do not hold cents exactly")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite() or value < 0 or value >= _LIMIT:
        raise ValueError("amount must be between 0 and 999999999999.99")
    if value != value.quantize(_CENT):
        raise ValueError("amount has more than 2 decimal places")
    return value.quantize(_CENT)


def _group_words(group: int) -> str:
    """Write 1..9999 with 拾佰仟, one 零 for any run of inner zeros."""
    words = []
    started = zero = False
    for pos in (3, 2, 1, 0):
        d = group // 10**pos % 10
        if d == 0:
            zero = zero or started
            continue
        if zero:
            words.append("零")
            zero = False
        words.append(_CAPITAL_DIGITS[d] + _CAPITAL_SMALL_UNITS[pos])
        started = True
    return "".join(words)


def format(amount: Decimal | str | int) -> str:
    """Write an amount (0 to 999999999999.99, at most 2 decimals) in capitals.

    Where the rules make a 零 optional, it is left out (壹仟陆佰捌拾元叁角贰分).
    """
    cents = int(_to_decimal(amount) * 100)
    yuan, rest = divmod(cents, 100)
    jiao, fen = divmod(rest, 10)
    words = []
    for group, big in ((yuan // 10**8, "亿"), (yuan // 10**4 % 10**4, "万"), (yuan % 10**4, "")):
        if group == 0:
            continue
        if words and group < 1000:
            words.append("零")  # the group's leading zeros sit in the middle of the number
        words.append(_group_words(group) + big)
    text = "".join(words) + ("元" if yuan else "")
    if jiao == 0 and fen == 0:
        return (text or "零元") + "整"
    if jiao:
        text += _CAPITAL_DIGITS[jiao] + "角"
    elif yuan:
        text += "零"  # 元零贰分: required when 角 is zero and 分 is not
    if fen:
        text += _CAPITAL_DIGITS[fen] + "分"
    return text


def parse_figures(text: str) -> Decimal:
    """Read an amount in figures in the normal form of the field (12345.67).

    Thousands separators and a currency sign are not part of the normal form: the
    extractor removes them, so here they are an error.
    """
    text = str(text).strip()
    if not _FIGURES_RE.match(text):
        raise InvalidFormat("not an amount in figures like 12345.67")
    return Decimal(text).quantize(_CENT)
