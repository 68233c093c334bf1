"""Rules on a medical invoice (医疗收费票据): complete, the items add up to the total, the
total in figures equals the total in capitals, the payments do not exceed the total,
the date is sound.

Only the invoice itself is looked at here; whether it belongs to the claim (the patient,
the dates) is for the rules on a claim case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from stdnum.exceptions import ValidationError

from domain import cn_amount
from domain.models import CheckResult, DocType, Severity
from validators.fields import missing, parse_date, text
from validators.registry import Example, RuleContext, failed, passed, rule, skipped
from validators.rules._samples import INVOICE

MEDICAL_INVOICE = DocType.MEDICAL_INVOICE
Fields = Mapping[str, str | None]

REQUIRED_FIELDS = (
    "invoice_code",
    "invoice_number",
    "invoice_date",
    "patient_name",
    "hospital",
    "total_amount",
)

_ITEM_RE = re.compile(r"^(?P<name>[^:;]+):(?P<amount>[0-9]{1,12}\.[0-9]{2})$")


def parse_items(value: str) -> list[tuple[str, Decimal]] | None:
    """The items "name:amount;..." as (name, amount), or None when not in that form.

    >>> parse_items("西药费:120.50;检查费:80.00")
    [('西药费', Decimal('120.50')), ('检查费', Decimal('80.00'))]
    >>> parse_items("西药费 120.5") is None
    True
    """
    out = []
    for part in value.split(";"):
        m = _ITEM_RE.match(part.strip())
        if m is None:
            return None
        out.append((m.group("name").strip(), Decimal(m.group("amount"))))
    return out or None


def _figures(fields: Fields, name: str) -> Decimal | None | str:
    """The amount of a figures field, None when absent, "bad" when not in normal form."""
    value = text(fields, name)
    if value is None:
        return None
    try:
        return cn_amount.parse_figures(value)
    except ValidationError:
        return "bad"


@rule(
    "invoice.required_fields",
    doc_types={MEDICAL_INVOICE},
    reads=REQUIRED_FIELDS,
    examples=[
        Example(INVOICE, True),
        Example({**INVOICE, "insurance_paid": None, "self_paid": None}, True,
                note="payments are not printed on every invoice"),
        Example({**INVOICE, "invoice_number": "", "total_amount": None}, False),
    ],
)
def required_fields(fields: Fields, ctx: RuleContext) -> CheckResult:
    """Every field needed to pay the invoice back was read."""
    absent = missing(fields, REQUIRED_FIELDS)
    if absent:
        return failed("missing: " + ", ".join(absent), fields=absent)
    return passed()


@rule(
    "invoice.items_add_up",
    doc_types={MEDICAL_INVOICE},
    reads=("items", "total_amount"),
    examples=[
        Example(INVOICE, True),
        Example({**INVOICE, "items": "西药费:120.50;检查费:80.01"}, False, note="one cent more"),
        Example({**INVOICE, "items": "西药费 120.50"}, False, note="items not in normal form"),
        Example({**INVOICE, "items": None}, False, note="skipped: no items"),
    ],
)
def items_add_up(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The itemised amounts add up to the total, to the cent."""
    items_text = text(fields, "items")
    total = _figures(fields, "total_amount")
    if items_text is None or total is None:
        return skipped("items or total_amount is missing")
    if total == "bad":
        return failed("total_amount is not in the form 12345.67", fields=["total_amount"])
    items = parse_items(items_text)
    if items is None:
        return failed('items are not in the form "name:12.34;name:5.60"', fields=["items"])
    total_items = sum((a for _, a in items), Decimal("0.00"))
    if total_items != total:
        diff = total_items - total
        return failed(f"the items add up to {total_items}, the total is {total} "
                      f"(difference {diff:+.2f})", items_sum=f"{total_items:.2f}",
                      total=f"{total:.2f}", difference=f"{diff:.2f}", count=len(items))
    return passed(count=len(items))


@rule(
    "invoice.amount_words_match",
    doc_types={MEDICAL_INVOICE},
    reads=("total_amount", "total_amount_in_words"),
    examples=[
        Example(INVOICE, True),
        Example({**INVOICE, "total_amount_in_words": "贰佰元零伍角"}, True, note="optional 零"),
        Example({**INVOICE, "total_amount_in_words": "贰佰元整"}, False, note="5 jiao missing"),
        Example({**INVOICE, "total_amount_in_words": "两百元"}, False, note="not capitals"),
        Example({**INVOICE, "total_amount": "200,50"}, False, note="figures not in normal form"),
    ],
)  # fmt: skip
def amount_words_match(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The total in figures equals the total in Chinese capitals (合计 大写)."""
    total = _figures(fields, "total_amount")
    words_text = text(fields, "total_amount_in_words")
    if total is None or words_text is None:
        return skipped("total_amount or total_amount_in_words is missing")
    if total == "bad":
        return failed("total_amount is not in the form 12345.67", fields=["total_amount"])
    try:
        words = cn_amount.parse(words_text)
    except (ValidationError, ValueError) as exc:
        return failed(f"the total in words is not a readable capital amount ({exc})",
                      fields=["total_amount_in_words"])
    if words != total:
        return failed(f"the total in figures {total} differs from the total in words {words}",
                      figures=f"{total:.2f}", words=f"{words:.2f}",
                      difference=f"{total - words:.2f}")
    return passed()


@rule(
    "invoice.payments_add_up",
    doc_types={MEDICAL_INVOICE},
    reads=("insurance_paid", "self_paid", "total_amount"),
    examples=[
        Example(INVOICE, True),
        Example({**INVOICE, "insurance_paid": "150.00", "self_paid": "60.20"}, False,
                note="pays 210.20 of 200.50"),
        Example({**INVOICE, "self_paid": None}, True, note="only the fund's share printed"),
        Example({**INVOICE, "insurance_paid": "1x0.00"}, False, note="not an amount"),
    ],
)
def payments_add_up(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The fund's share and the patient's share (医保统筹支付, 个人自付) do not exceed the
    total (other payments, such as the personal account, make up the rest)."""
    total = _figures(fields, "total_amount")
    shares = {name: _figures(fields, name) for name in ("insurance_paid", "self_paid")}
    printed = {k: v for k, v in shares.items() if v is not None}
    if total is None or not printed:
        return skipped("total_amount or both payments are missing")
    bad = [k for k, v in printed.items() if v == "bad"] + (["total_amount"] if total == "bad"
                                                            else [])
    if bad:
        return failed("not in the form 12345.67: " + ", ".join(bad), fields=bad)
    paid = sum(printed.values(), Decimal("0.00"))
    if paid > total:
        return failed(f"the payments ({paid}) exceed the total ({total}) by {paid - total}",
                      paid=f"{paid:.2f}", total=f"{total:.2f}",
                      difference=f"{paid - total:.2f}")
    return passed(paid=f"{paid:.2f}", total=f"{total:.2f}")


@rule(
    "invoice.date_sane",
    doc_types={MEDICAL_INVOICE},
    reads=("invoice_date",),
    examples=[
        Example(INVOICE, True),
        Example({**INVOICE, "invoice_date": "2025-06-02"}, False, note="in the future"),
        Example({**INVOICE, "invoice_date": "2025-02-30"}, False, note="no 30 February"),
        Example({**INVOICE, "invoice_date": "1989-12-31"}, False,
                note="before electronic or current paper invoices",
                expect_severity=Severity.WARNING),
    ],
)
def date_sane(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The invoice date is a real date, not in the future (and not implausibly old)."""
    raw = text(fields, "invoice_date")
    if raw is None:
        return skipped("no invoice_date")
    day = parse_date(raw)
    if day is None:
        return failed("invoice_date is not a date in the form YYYY-MM-DD")
    if day > ctx.today:
        return failed(f"invoice_date {day} is in the future")
    if day.year < 1990:
        return failed(f"invoice_date {day} is implausibly old", severity=Severity.WARNING)
    return passed()


RULES = [required_fields, items_add_up, amount_words_match, payments_add_up, date_sane]
