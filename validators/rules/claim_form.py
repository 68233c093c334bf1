"""Rules on a claim form: complete, amounts agree, dates in order, contact and payee sound.

Only the form itself is looked at here; whether the policy and the insured exist is
for the cross-system rules (:mod:`validators.rules.crossref`).
"""

from __future__ import annotations

from collections.abc import Mapping

import phonenumbers
from stdnum import luhn
from stdnum.exceptions import ValidationError

from domain import cn_amount
from domain.models import CheckResult, DocType, Severity
from validators.fields import missing, parse_date, same_name, text
from validators.registry import Example, RuleContext, failed, passed, rule, skipped
from validators.rules._samples import CLAIM
from validators.rules.id_number import examine_id_number, number_checks

CLAIM_FORM = DocType.CLAIM_FORM
Fields = Mapping[str, str | None]

REQUIRED_FIELDS = (
    "policy_number",
    "insured_name",
    "insured_id_number",
    "claimant_name",
    "relationship",
    "phone",
    "accident_date",
    "claim_amount",
    "claim_amount_in_words",
    "bank_name",
    "account_name",
    "account_number",
    "application_date",
)
# Needed to assess a medical claim, but an accident claim without treatment has none.
RECOMMENDED_FIELDS = ("hospital", "diagnosis")

#: Relationships of the claimant to the insured that the form allows.
RELATIONSHIPS = frozenset(
    "本人 配偶 丈夫 妻子 父母 父亲 母亲 子女 儿子 女儿 兄弟姐妹 兄弟 姐妹 "  # noqa: SIM905
    "祖父母 外祖父母 孙子女 外孙子女 监护人 法定继承人 受益人 其他".split()
)


@rule(
    "claim.required_fields",
    doc_types={CLAIM_FORM},
    reads=REQUIRED_FIELDS,
    examples=[
        Example(CLAIM, True),
        Example({**CLAIM, "hospital": None}, True, note="hospital is only recommended"),
        Example({**CLAIM, "account_number": "", "phone": None}, False),
    ],
)
def required_fields(fields: Fields, ctx: RuleContext) -> CheckResult:
    """Every field needed to settle the claim was read."""
    absent = missing(fields, REQUIRED_FIELDS)
    if absent:
        return failed("missing: " + ", ".join(absent), fields=absent)
    return passed()


@rule(
    "claim.recommended_fields",
    doc_types={CLAIM_FORM},
    reads=RECOMMENDED_FIELDS,
    severity=Severity.WARNING,
    examples=[Example(CLAIM, True), Example({**CLAIM, "diagnosis": None}, False)],
)
def recommended_fields(fields: Fields, ctx: RuleContext) -> CheckResult:
    """Hospital and diagnosis were read (needed for medical claims)."""
    absent = missing(fields, RECOMMENDED_FIELDS)
    if absent:
        return failed("missing: " + ", ".join(absent), fields=absent)
    return passed()


@rule(
    "claim.amount_in_words_matches",
    doc_types={CLAIM_FORM},
    reads=("claim_amount", "claim_amount_in_words"),
    examples=[
        Example(CLAIM, True),
        Example({"claim_amount": "100.00", "claim_amount_in_words": "人民币壹佰元整"}, True),
        Example({"claim_amount": "1680.32", "claim_amount_in_words": "壹仟陆佰捌拾元零叁角贰分"}, True,
                note="the optional 零 after 元"),
        Example({"claim_amount": "12345.67", "claim_amount_in_words": "壹万贰仟叁佰肆拾伍元陆角"}, False,
                note="7 fen missing in words"),
        Example({"claim_amount": "12,345.67", "claim_amount_in_words": "壹万贰仟叁佰肆拾伍元陆角柒分"}, False,
                note="figures not in normal form"),
        Example({"claim_amount": "105.00", "claim_amount_in_words": "壹佰伍元整"}, False,
                note="ambiguous words: 零 missing"),
        Example({"claim_amount": "0.00", "claim_amount_in_words": "零元整"}, False, note="nothing claimed"),
    ],
)  # fmt: skip
def amount_in_words_matches(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The amount in figures equals the amount in Chinese capitals, and is not zero."""
    figures_text = text(fields, "claim_amount")
    words_text = text(fields, "claim_amount_in_words")
    if figures_text is None or words_text is None:
        return skipped("claim_amount or claim_amount_in_words is missing")
    try:
        figures = cn_amount.parse_figures(figures_text)
    except ValidationError:
        return failed("claim amount is not in the form 12345.67", fields=["claim_amount"])
    try:
        words = cn_amount.parse(words_text)
    except ValidationError as exc:
        return failed(
            f"amount in words is not a readable capital amount ({exc})",
            fields=["claim_amount_in_words"],
        )
    if figures != words:
        return failed(
            f"amount in figures {figures} differs from amount in words {words}",
            figures=str(figures),
            words=str(words),
        )
    if figures == 0:
        return failed("claim amount is zero", fields=["claim_amount"])
    return passed(amount=str(figures))


@rule(
    "claim.dates_in_order",
    doc_types={CLAIM_FORM},
    reads=("accident_date", "application_date"),
    examples=[
        Example(CLAIM, True),
        Example({**CLAIM, "application_date": CLAIM["accident_date"]}, True, note="same day"),
        Example({**CLAIM, "accident_date": "2025-03-21"}, False, note="accident after application"),
        Example(
            {**CLAIM, "application_date": "2025-06-02"}, False, note="application in the future"
        ),
        Example({**CLAIM, "accident_date": "2025-13-01"}, False, note="no month 13"),
    ],
)
def dates_in_order(fields: Fields, ctx: RuleContext) -> list[CheckResult] | CheckResult:
    """The dates are real and in order: accident ≤ application ≤ today."""
    accident_text = text(fields, "accident_date")
    application_text = text(fields, "application_date")
    if accident_text is None and application_text is None:
        return skipped("accident_date and application_date are missing")
    accident, application = parse_date(accident_text), parse_date(application_text)
    problems = []
    for name, raw, value in (
        ("accident_date", accident_text, accident),
        ("application_date", application_text, application),
    ):
        if raw is not None and value is None:
            problems.append(failed(f"{name} is not a date in the form YYYY-MM-DD", fields=[name]))
        elif value is not None and value > ctx.today:
            problems.append(failed(f"{name} is in the future", fields=[name]))
    if accident is not None and application is not None and accident > application:
        problems.append(failed("the accident is dated after the application"))
    return problems or passed()


def _parse_phone(digits: str) -> phonenumbers.PhoneNumber | None:
    # Mainland numbers with the country code written out (8613800138000).
    candidate = "+" + digits if digits.startswith("86") and len(digits) == 13 else digits
    try:
        return phonenumbers.parse(candidate, "CN")
    except phonenumbers.NumberParseException:
        return None


@rule(
    "claim.phone_valid",
    doc_types={CLAIM_FORM},
    reads=("phone",),
    examples=[
        Example(CLAIM, True, note="mobile"),
        Example({"phone": "01062345678"}, True, note="Beijing landline with area code"),
        Example({"phone": "8613800138000"}, True, note="with country code"),
        Example({"phone": "1380013800"}, False, note="a digit short"),
        Example({"phone": "138-0013-8000"}, False, note="not digits only"),
    ],
)
def phone_valid(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The phone number is a valid mainland China number (digits only)."""
    phone = text(fields, "phone")
    if phone is None:
        return skipped("no phone")
    if not phone.isascii() or not phone.isdigit():
        return failed("phone must be digits only")
    parsed = _parse_phone(phone)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return failed("phone is not a valid Chinese phone number")
    if phonenumbers.region_code_for_number(parsed) != "CN":
        return failed("phone is not a mainland China number")
    return passed(number_type=phonenumbers.number_type(parsed))


def _account_number(fields: Fields) -> str | None:
    """The account number if it has the right shape: 16 to 19 digits."""
    value = text(fields, "account_number")
    if value is None or not value.isascii() or not value.isdigit() or not 16 <= len(value) <= 19:
        return None
    return value


@rule(
    "claim.account_number_format",
    doc_types={CLAIM_FORM},
    reads=("account_number",),
    examples=[
        Example(CLAIM, True),
        Example({"account_number": "6217000010001234"}, True, note="16 digits"),
        Example(
            {"account_number": "62220202001122334"}, True, note="17 digits; Luhn is another rule"
        ),
        Example({"account_number": "622202020011223"}, False, note="15 digits"),
        Example({"account_number": "6222 0202 0011 2233 446"}, False, note="spaces"),
    ],
)
def account_number_format(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The bank account number has 16 to 19 digits."""
    if text(fields, "account_number") is None:
        return skipped("no account_number")
    if _account_number(fields) is None:
        return failed("account number must be 16 to 19 digits")
    return passed()


@rule(
    "claim.account_number_luhn",
    doc_types={CLAIM_FORM},
    reads=("account_number",),
    severity=Severity.WARNING,
    examples=[
        Example(CLAIM, True),
        Example({"account_number": "6222020200112233445"}, False, note="last digit off by one"),
    ],
)
def account_number_luhn(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The card number passes the Luhn check (not all accounts use it: a warning)."""
    number = _account_number(fields)
    if number is None:
        return skipped("account number missing or malformed (see claim.account_number_format)")
    if luhn.is_valid(number):
        return passed()
    return failed("account number fails the Luhn check (misread digit, or a non-card account?)")


@rule(
    "claim.account_name_matches_claimant",
    doc_types={CLAIM_FORM},
    reads=("account_name", "claimant_name", "insured_name"),
    severity=Severity.WARNING,
    examples=[
        Example(CLAIM, True),
        Example({**CLAIM, "relationship": "子女", "claimant_name": "王建国"}, True,
                note="paid to the insured, claimed by a child"),
        Example({**CLAIM, "account_name": "王建国"}, False, note="paid to a third party"),
    ],
)
def account_name_matches_claimant(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The bank account is in the claimant's name, or the insured's (whose benefit it is):
    never a third party's."""
    account_name, claimant = text(fields, "account_name"), text(fields, "claimant_name")
    if account_name is None or claimant is None:
        return skipped("account_name or claimant_name is missing")
    if same_name(account_name, claimant):
        return passed()
    insured = text(fields, "insured_name")
    if insured is not None and same_name(account_name, insured):
        return passed(holder="insured")
    return failed("the account holder is neither the claimant nor the insured")


@rule(
    "claim.relationship_allowed",
    doc_types={CLAIM_FORM},
    reads=("relationship",),
    examples=[
        Example(CLAIM, True),
        Example({"relationship": "配偶"}, True),
        Example({"relationship": "朋友"}, False),
    ],
)
def relationship_allowed(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The claimant's relationship to the insured is one the form allows."""
    value = text(fields, "relationship")
    if value is None:
        return skipped("no relationship")
    if "".join(value.split()) in RELATIONSHIPS:
        return passed()
    return failed("relationship to the insured is not one of the allowed values")


@rule(
    "claim.self_claim_names_match",
    doc_types={CLAIM_FORM},
    reads=("relationship", "claimant_name", "insured_name"),
    severity=Severity.WARNING,
    examples=[
        Example(CLAIM, True),
        Example({**CLAIM, "relationship": "配偶", "claimant_name": "王建国"}, True),
        Example({**CLAIM, "claimant_name": "王建国"}, False, note="本人 but another name"),
    ],
)
def self_claim_names_match(fields: Fields, ctx: RuleContext) -> CheckResult:
    """When the claimant is the insured (本人), both names are the same."""
    if text(fields, "relationship") != "本人":
        return passed(applies=False)
    claimant, insured = text(fields, "claimant_name"), text(fields, "insured_name")
    if claimant is None or insured is None:
        return skipped("claimant_name or insured_name is missing")
    if same_name(claimant, insured):
        return passed()
    return failed("relationship is 本人 but the claimant's and insured's names differ")


@rule(
    "claim.insured_id_number_valid",
    doc_types={CLAIM_FORM},
    reads=("insured_id_number",),
    examples=[
        Example(CLAIM, True),
        Example({"insured_id_number": "110105491231002"}, True, note="old 15-digit numbers are accepted"),
        Example({"insured_id_number": "110105194912310021"}, False, note="wrong check digit"),
        Example({"insured_id_number": "11010519491231"}, False, note="too short"),
        Example({"insured_id_number": "119999198001010018"}, False, expect_severity=Severity.WARNING,
                note="unknown county: a warning"),
    ],
)  # fmt: skip
def insured_id_number_valid(fields: Fields, ctx: RuleContext) -> list[CheckResult] | CheckResult:
    """The insured's ID number is valid (18-digit, old 15-digit, or HK/MO/TW permit)."""
    value = text(fields, "insured_id_number")
    if value is None:
        return skipped("no insured_id_number")
    checks = number_checks(examine_id_number(value, today=ctx.today), allow_15=True)
    results = []
    for check, result in checks.items():
        if result.details.get("skipped"):
            continue
        results.append(result.model_copy(update={"details": {**result.details, "check": check}}))
    return results


RULES = [
    required_fields,
    recommended_fields,
    amount_in_words_matches,
    dates_in_order,
    phone_valid,
    account_number_format,
    account_number_luhn,
    account_name_matches_claimant,
    relationship_allowed,
    self_claim_names_match,
    insured_id_number_valid,
]
