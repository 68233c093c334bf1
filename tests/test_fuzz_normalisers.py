"""Hypothesis fuzzing of the value normalisers, the claim-form extractor and masking.

tests/test_text.py covers ID-number repair, date parsing and the ID-card extractors;
tests/test_validators_props.py every registered rule. This file adds the claim-form
value normalisers (amounts, dates, phones, accounts, names, ID numbers …), the
folding helpers, the claim extractor over label-rich lines, the amount parsers'
exception contract and the masking functions. Each property is "total and well-formed":
no exception, and any value returned is in its normal form.
"""

from __future__ import annotations

import datetime
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import cn_amount
from domain.masking import mask_known, mask_text
from domain.models import OcrLine
from ocr.extract.claim import extract_claim_form, synonyms
from ocr.extract.normalise import normalise
from ocr.text import fold_chinese, id_checksum_ok, parse_date, strip_spaces
from validators.fields import parse_date as parse_field_date
from validators.fields import same_name

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters OCR gives back on forms: digits (half and full width), capitals of amounts,
# date and currency marks, look-alike letters, CJK of names and labels, punctuation.
_ALPHABET = list("0123456789０１２３４５６７８９.,，。:：-—/ ¥￥元角分整零壹贰叁肆伍陆柒捌玖拾佰仟万亿"
                 "年月日号OolIZSBxX人民币王李张晓明被保险人姓名身份证手机号码账户开户行银行医院诊断"
                 "本人配偶父母子女（）()+·\t\n")
OCR_TEXT = st.text(alphabet=st.sampled_from(_ALPHABET), max_size=40) | st.text(max_size=40)
FIELDS = sorted(set(synonyms()) - {"_ignore"} | {"accident_date", "application_date"})


@FUZZ
@given(field=st.sampled_from(FIELDS), raw=OCR_TEXT)
def test_normalise_is_total_and_returns_normal_forms(field, raw):
    value = normalise(field, raw)
    if value is None:
        return
    assert isinstance(value, str) and value
    if field.endswith("_date"):
        datetime.date.fromisoformat(value)
    elif field == "phone":
        assert re.fullmatch(r"1[3-9]\d{9}|0\d{9,11}", value)
    elif field == "account_number":
        assert re.fullmatch(r"\d{12,25}", value)
    elif field == "claim_amount":
        assert re.fullmatch(r"\d+\.\d{2}", value), value
    elif field == "insured_id_number":
        assert len(value) in (15, 18)


@FUZZ
@given(length=st.integers(1, 400), digit=st.sampled_from("123456789"),
       cents=st.sampled_from(["", ".5", ".50", ".05"]))
def test_claim_amount_of_any_length_is_exact_or_nothing(length, digit, cents):
    figures = digit * length + cents
    value = normalise("claim_amount", f"¥{figures}")
    if value is None:
        assert length >= 10  # ten digits before the point: an account or ID number
        return
    assert re.fullmatch(r"\d+\.\d{2}", value), value
    assert value.split(".")[0] == digit * length  # exact, never rounded through a float


@FUZZ
@given(raw=st.text(max_size=60))
def test_folding_helpers_are_total(raw):
    folded = fold_chinese(raw)
    assert isinstance(folded, str)
    stripped = strip_spaces(raw)
    assert not re.search(r"\s", stripped)
    assert strip_spaces(stripped) == stripped


@FUZZ
@given(raw=OCR_TEXT)
def test_dates_are_real_calendar_days(raw):
    for parse in (parse_date, parse_field_date):
        value = parse(raw)
        if isinstance(value, str):
            datetime.date.fromisoformat(value)
        else:
            assert value is None or isinstance(value, datetime.date)


@FUZZ
@given(raw=OCR_TEXT)
def test_amount_parsers_raise_only_their_format_error(raw):
    for parse in (cn_amount.parse, cn_amount.parse_figures):
        try:
            parse(raw)
        except cn_amount.InvalidFormat:
            pass
    assert isinstance(cn_amount.is_valid(raw), bool)


@FUZZ
@given(a=st.text(max_size=8), b=st.text(max_size=8))
def test_same_name_is_total_and_symmetric(a, b):
    assert same_name(a, b) == same_name(b, a)


_LABELS = [label for field, labels in synonyms().items() for label in labels][:200]
_poly = st.tuples(st.floats(0, 2000), st.floats(0, 2800), st.floats(1, 600), st.floats(1, 80))
_claim_line = st.builds(
    lambda t, c, p: OcrLine(text=t, confidence=c, polygon=[
        (p[0], p[1]), (p[0] + p[2], p[1]), (p[0] + p[2], p[1] + p[3]), (p[0], p[1] + p[3])]),
    st.one_of(st.sampled_from(_LABELS), OCR_TEXT,
              st.builds(lambda a, b: f"{a}：{b}", st.sampled_from(_LABELS), OCR_TEXT)),
    st.floats(0, 1), _poly)


@FUZZ
@given(st.lists(_claim_line, max_size=20))
def test_claim_extractor_never_raises(lines):
    fields = extract_claim_form(lines)
    for f in fields.values():
        assert f.value is None or (isinstance(f.value, str) and f.value)
        assert 0.0 <= f.confidence <= 1.0


_ID = st.from_regex(r"[1-6][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}",
                    fullmatch=True).map(lambda s: s + _check(s))


def _check(first17: str) -> str:
    from domain.gb11643 import calc_check_digit

    return calc_check_digit(first17)


@FUZZ
@given(number=_ID, before=st.text(max_size=10), after=st.text(max_size=10),
       name=st.text(alphabet=st.sampled_from(list("王李张赵钱孙晓明红伟芳")), min_size=2,
                    max_size=4))
def test_mask_known_hides_the_number_and_the_name(number, before, after, name):
    assert id_checksum_ok(number)
    text = f"{before}{name} {number}{after}"
    masked = mask_known(text, {"name": name, "id_number": number})
    assert number not in masked and number[:6] + number[8:17] not in masked
    assert name not in masked
    assert number not in mask_text(f"{before} {number} {after}")


class _SystemsDown:
    """A lookup whose systems cannot answer (timeouts, connection refused)."""

    def _down(self, *args, **kwargs):
        from backoffice.connectors.base import LookupUnavailable

        raise LookupUnavailable("core: ConnectTimeout")

    find_customer = find_insured = find_policy = find_claims = _down


@FUZZ
@given(doc_type=st.sampled_from(["id_card_front", "id_card_back", "claim_form"]),
       fields=st.dictionaries(st.sampled_from(FIELDS + ["name", "id_number", "birth_date",
                                                        "sex", "valid_until"]),
                              OCR_TEXT | st.none(), max_size=12))
def test_rules_with_the_systems_down_never_raise_nor_quote_values(doc_type, fields):
    from domain.models import CheckResult, DocType
    from validators.registry import RuleContext, run_rules

    results = run_rules(DocType(doc_type), fields, ctx=RuleContext(lookup=_SystemsDown()))
    assert all(isinstance(r, CheckResult) for r in results)
    for r in results:
        for value in fields.values():
            if value and len(value) >= 15 and value.isdigit():
                assert value not in r.message


def _grouped(digits: str, sizes: list[int], sep: str) -> str:
    parts, i = [], 0
    for size in sizes:
        if i >= len(digits):
            break
        parts.append(digits[i:i + size])
        i += size
    if i < len(digits):
        parts.append(digits[i:])
    return sep.join(parts)


_PHONE = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
_ACCOUNT = st.from_regex(r"[1-9][0-9]{15,18}", fullmatch=True)


@FUZZ
@given(number=_ID | _PHONE | _ACCOUNT, sep=st.sampled_from([" ", "-", "\u3000", ""]),
       sizes=st.lists(st.integers(3, 8), min_size=2, max_size=5),
       before=st.text(alphabet=st.sampled_from(list("电话卡号身份证：: ,。abc")), max_size=6),
       after=st.text(alphabet=st.sampled_from(list("电话卡号身份证：: ,。abc")), max_size=6))
def test_mask_text_hides_numbers_written_in_groups(number, sep, sizes, before, after):
    written = _grouped(number, [6, 8, 4] if len(number) == 18 and sep == " " else sizes, sep)
    masked = mask_text(f"{before}{written}{after}")
    digits_left = re.sub(r"\D", "", masked)
    # At most the kept ends survive: 3+2 of an ID number, 3+4 of a phone, 4 of an account.
    assert len(digits_left) <= 7, (written, masked)
    assert number not in re.sub(r"[ \-\u3000]", "", masked)
