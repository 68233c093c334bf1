"""The medical-invoice rules: worked cases and properties (hypothesis).

Properties: no values make a rule raise; invoices whose items add up pass
``invoice.items_add_up`` and fail it when one item is off by a cent or more, with the
difference as a figure; a total and its capitals written by ``domain.cn_amount`` pass
``invoice.amount_words_match``; payments within the total pass, beyond it fail.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import cn_amount
from domain.models import DocType
from validators.registry import RuleContext, default_registry, run_rules
from validators.rules import invoice
from validators.rules._samples import INVOICE

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TODAY = datetime.date(2025, 6, 1)
CTX = RuleContext(today=TODAY)
INVOICE_FIELDS = sorted(INVOICE)

cents = st.integers(min_value=0, max_value=10**9).map(lambda c: Decimal(c) / 100)
item_names = st.sampled_from(["西药费", "检查费", "化验费", "治疗费", "床位费", "卫生材料费"])
items = st.lists(st.tuples(item_names, cents), min_size=1, max_size=12)
junk = st.one_of(st.none(), st.text(max_size=30),
                 st.from_regex(r"\A[0-9]{1,13}(\.[0-9]{1,3})?\Z"),
                 st.text(alphabet="零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整", max_size=16),
                 st.from_regex(r"\A([^:;]{0,4}:[0-9.]{0,8};?){0,4}\Z"),
                 st.sampled_from(["", " ", "0.00", "2025-02-30", "9999-12-31", "0001-01-01"]))


def _items_text(pairs) -> str:
    return ";".join(f"{n}:{a:.2f}" for n, a in pairs)


def _one(rule, fields):
    results = rule.func(fields, CTX)
    return results if not isinstance(results, list) else results[0]


def test_rules_registered_for_invoices():
    names = {r.name for r in default_registry() if r.applies_to(DocType.MEDICAL_INVOICE)}
    assert {"invoice.required_fields", "invoice.items_add_up", "invoice.amount_words_match",
            "invoice.payments_add_up", "invoice.date_sane"} <= names


def test_sample_passes_every_invoice_rule():
    results = [r for r in run_rules(DocType.MEDICAL_INVOICE, INVOICE, ctx=CTX)
               if r.rule.startswith("invoice.")]
    assert len(results) >= 5 and all(r.passed for r in results), [
        r for r in results if not r.passed]


@SETTINGS
@given(st.dictionaries(st.sampled_from(INVOICE_FIELDS), junk, max_size=len(INVOICE_FIELDS)),
       st.booleans())
def test_no_values_make_a_rule_raise(changes, from_sample):
    fields = {**INVOICE, **changes} if from_sample else changes
    for rule in invoice.RULES:
        results = rule.func(fields, CTX)
        for r in results if isinstance(results, list) else [results]:
            assert r.message is not None
    for r in run_rules(DocType.MEDICAL_INVOICE, fields, ctx=CTX):
        assert not r.message.startswith("rule failed"), (r.rule, r.message)


@SETTINGS
@given(items)
def test_items_that_add_up_pass(pairs):
    total = sum((a for _, a in pairs), Decimal("0.00"))
    r = _one(invoice.items_add_up, {"items": _items_text(pairs), "total_amount": f"{total:.2f}"})
    assert r.passed, r.message


@SETTINGS
@given(items, st.integers(min_value=0, max_value=11),
       st.integers(min_value=-10**6, max_value=10**6).filter(lambda d: d != 0))
def test_items_off_by_a_cent_or_more_fail_with_the_difference(pairs, k, delta_cents):
    total = sum((a for _, a in pairs), Decimal("0.00"))
    k %= len(pairs)
    name, amount = pairs[k]
    changed = amount + Decimal(delta_cents) / 100
    if changed < 0:
        return
    pairs = [*pairs[:k], (name, changed), *pairs[k + 1:]]
    r = _one(invoice.items_add_up, {"items": _items_text(pairs), "total_amount": f"{total:.2f}"})
    assert not r.passed
    assert Decimal(r.details["difference"]) == Decimal(delta_cents) / 100


@SETTINGS
@given(cents)
def test_total_and_its_capitals_match(total):
    fields = {"total_amount": f"{total:.2f}", "total_amount_in_words": cn_amount.format(total)}
    assert _one(invoice.amount_words_match, fields).passed


@SETTINGS
@given(cents, cents.filter(lambda c: c > 0))
def test_total_and_other_capitals_differ(total, delta):
    fields = {"total_amount": f"{total:.2f}",
              "total_amount_in_words": cn_amount.format(total + delta)}
    r = _one(invoice.amount_words_match, fields)
    assert not r.passed and not r.details.get("skipped")


@SETTINGS
@given(cents, st.floats(0, 1), st.floats(0, 1))
def test_payments_within_the_total_pass(total, a, b):
    insurance = (total * Decimal(str(round(a, 4)))).quantize(Decimal("0.01"), "ROUND_DOWN")
    self_paid = ((total - insurance) * Decimal(str(round(b, 4)))).quantize(
        Decimal("0.01"), "ROUND_DOWN")
    fields = {"total_amount": f"{total:.2f}", "insurance_paid": f"{insurance:.2f}",
              "self_paid": f"{self_paid:.2f}"}
    assert _one(invoice.payments_add_up, fields).passed


@SETTINGS
@given(cents, cents, cents.filter(lambda c: c > 0))
def test_payments_beyond_the_total_fail(insurance, self_paid, over):
    total = insurance + self_paid - over
    if total < 0:
        return
    fields = {"total_amount": f"{total:.2f}", "insurance_paid": f"{insurance:.2f}",
              "self_paid": f"{self_paid:.2f}"}
    r = _one(invoice.payments_add_up, fields)
    assert not r.passed and Decimal(r.details["difference"]) == over


@SETTINGS
@given(st.dates(datetime.date(1990, 1, 1), datetime.date(9999, 12, 31)))
def test_date_sane_is_not_in_the_future(day):
    r = _one(invoice.date_sane, {"invoice_date": day.isoformat()})
    assert r.passed == (day <= TODAY)


def test_required_fields_name_the_missing():
    r = _one(invoice.required_fields, {**INVOICE, "hospital": None, "invoice_code": " "})
    assert not r.passed and r.fields == ["invoice_code", "hospital"]
