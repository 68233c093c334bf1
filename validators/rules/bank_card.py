"""Rules on a bank card (front): the number and the issuing bank were read, and the number
is a card number (16 to 19 digits with a Luhn check digit).

No BIN table is checked: no maintained, offline BIN table of Chinese banks with a usable
licence was found, so the issuing bank comes from the name printed on the card (the
extractor's synonym table). Whether the card is the claimant's is a case rule
(``case.bank_card_matches_account``).
"""

from __future__ import annotations

from collections.abc import Mapping

from stdnum import luhn

from domain.models import CheckResult, DocType
from validators.fields import missing, text
from validators.registry import Example, RuleContext, failed, passed, rule, skipped

BANK_CARD = DocType.BANK_CARD
Fields = Mapping[str, str | None]

REQUIRED_FIELDS = ("card_number", "bank_name")

#: A synthetic card of 中国工商银行 (the number is random, with its Luhn check digit).
CARD = {"card_number": "6222021234567890128", "bank_name": "中国工商银行", "card_holder": "李秀英"}


@rule(
    "bank_card.required_fields",
    doc_types={BANK_CARD},
    reads=REQUIRED_FIELDS,
    examples=[
        Example(CARD, True),
        Example({**CARD, "card_holder": None}, True, note="many cards print no name"),
        Example({**CARD, "bank_name": " "}, False),
        Example({"card_holder": "李秀英"}, False),
    ],
)
def required_fields(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The card number and the issuing bank were read."""
    absent = missing(fields, REQUIRED_FIELDS)
    if absent:
        return failed("missing: " + ", ".join(absent), fields=absent)
    return passed()


def card_number(fields: Fields) -> str | None:
    """The card number if it has the shape of one: 16 to 19 ASCII digits."""
    value = text(fields, "card_number")
    if value is None or not value.isascii() or not value.isdigit() or not 16 <= len(value) <= 19:
        return None
    return value


@rule(
    "bank_card.luhn",
    doc_types={BANK_CARD},
    reads=("card_number",),
    examples=[
        Example(CARD, True),
        Example({"card_number": "6225881234567898"}, True, note="16 digits"),
        Example({**CARD, "card_number": "6222021234567890129"}, False, note="check digit off"),
        Example({**CARD, "card_number": "62220212345678"}, False, note="too short"),
        Example({**CARD, "card_number": "6222 0212 3456 7890 128"}, False,
                note="not in the normal form (digits only)"),
    ],
)
def luhn_check(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The card number is 16 to 19 digits and passes the Luhn check (a misread digit fails)."""
    value = text(fields, "card_number")
    if value is None:
        return skipped("card number missing (see bank_card.required_fields)")
    number = card_number(fields)
    if number is None:
        return failed("card number must be 16 to 19 digits", length=len(value))
    if not luhn.is_valid(number):
        return failed("card number fails the Luhn check (a digit misread?)")
    return passed()


RULES = (required_fields, luhn_check)
