"""The bank-card rules: their examples, and properties over any field values."""

from __future__ import annotations

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn

from domain.models import DocType
from validators.registry import RuleContext, check_example, default_registry, run_rules
from validators.rules import bank_card

REGISTRY = default_registry()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CTX = RuleContext(today=datetime.date(2026, 6, 1))


def _run(fields):
    return run_rules(DocType.BANK_CARD, fields, registry=REGISTRY, ctx=CTX)


def _by_name(results):
    return {r.rule: r for r in results}


def test_registered_for_bank_cards_only():
    names = {r.name for r in REGISTRY if r.applies_to(DocType.BANK_CARD)}
    assert {"bank_card.required_fields", "bank_card.luhn"} <= names
    for rule in bank_card.RULES:
        assert rule.doc_types == frozenset({DocType.BANK_CARD})


def test_examples_hold():
    for rule in bank_card.RULES:
        assert rule.examples
        assert check_example(rule, rule.examples[0]) == []
        for example in rule.examples:
            assert check_example(rule, example) == [], (rule.name, example)


@st.composite
def luhn_numbers(draw) -> str:
    body = draw(st.from_regex(r"\A[1-9][0-9]{14,17}\Z"))
    return body + luhn.calc_check_digit(body)


@given(luhn_numbers())
@SETTINGS
def test_any_luhn_valid_number_of_16_to_19_digits_passes(number):
    results = _by_name(_run({**bank_card.CARD, "card_number": number}))
    assert results["bank_card.luhn"].passed
    assert results["bank_card.required_fields"].passed


@given(luhn_numbers(), st.integers(0, 18), st.integers(1, 9))
@SETTINGS
def test_one_digit_changed_fails(number, pos, delta):
    pos %= len(number)
    changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1:]
    result = _by_name(_run({"card_number": changed}))
    assert not result["bank_card.luhn"].passed
    assert "Luhn" in result["bank_card.luhn"].message


@given(st.dictionaries(st.sampled_from(["card_number", "bank_name", "card_holder", "x"]),
                       st.none() | st.text(max_size=25) | st.from_regex(r"\A[0-9 ]{0,24}\Z"),
                       max_size=4))
@SETTINGS
def test_no_value_makes_a_rule_raise(fields):
    for rule in bank_card.RULES:
        rule.func(fields, CTX)  # the rule itself, not the runner's safety net
    results = _run(fields)
    rules = _by_name(results)
    assert {"bank_card.required_fields", "bank_card.luhn"} <= set(rules)
    assert [r.message for r in results if r.details.get("crashed")] == []
    number = (fields.get("card_number") or "").strip()
    if not number:
        assert not rules["bank_card.required_fields"].passed
        assert rules["bank_card.luhn"].details.get("skipped")
    elif not (number.isascii() and number.isdigit() and 16 <= len(number) <= 19):
        assert not rules["bank_card.luhn"].passed


@given(luhn_numbers())
@SETTINGS
def test_messages_never_carry_the_number(number):
    for r in _run({"card_number": number[:-1] + "x"}):
        assert number[:-1] not in r.message
