"""Every registered rule's declared examples, run as tests; plus the doctests of validators."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from domain.models import DocType
from validators.registry import (
    EXAMPLE_TODAY,
    RuleContext,
    check_example,
    default_registry,
    run_example,
    run_rules,
)
from validators.rules import BUILTIN_RULES
from validators.rules._samples import BACK, CLAIM, FRONT, LOOKUP

REGISTRY = default_registry()

EXAMPLES = [
    pytest.param(rule, example, id=f"{rule.name}[{index}]")
    for rule in REGISTRY
    for index, example in enumerate(rule.examples)
]


@pytest.mark.parametrize(("rule", "example"), EXAMPLES)
def test_rule_example(rule, example) -> None:
    assert check_example(rule, example) == [], example.note


def test_builtins_are_registered_through_the_entry_point() -> None:
    assert {rule.name for rule in BUILTIN_RULES} <= set(REGISTRY.names())


@pytest.mark.parametrize("rule", list(REGISTRY), ids=lambda rule: rule.name)
def test_rule_ships_passing_and_failing_examples(rule) -> None:
    outcomes = {example.expect_passed for example in rule.examples}
    assert outcomes == {True, False}
    assert rule.description and "\n" not in rule.description
    assert rule.reads, "a rule must say which fields it reads"


PERSONAL_FIELDS = (
    "name",
    "insured_name",
    "claimant_name",
    "account_name",
    "id_number",
    "insured_id_number",
    "phone",
    "account_number",
)


@pytest.mark.parametrize(("rule", "example"), EXAMPLES)
def test_results_carry_no_personal_data(rule, example) -> None:
    for result in run_example(rule, example):
        shown = result.message + json.dumps(result.details, ensure_ascii=False, default=str)
        for field in PERSONAL_FIELDS:
            value = (example.fields.get(field) or "").strip()
            if len(value) >= 2:
                assert value not in shown, f"{field} leaks into {result.rule}"


@pytest.mark.parametrize(
    ("doc_type", "fields"),
    [
        (DocType.ID_CARD_FRONT, FRONT),
        (DocType.ID_CARD_BACK, {**BACK, "birth_date": FRONT["birth_date"]}),
        (DocType.CLAIM_FORM, CLAIM),
    ],
)
def test_sample_documents_pass_every_rule(doc_type, fields) -> None:
    results = run_rules(doc_type, fields, ctx=RuleContext(today=EXAMPLE_TODAY, lookup=LOOKUP))
    assert results
    assert [(r.rule, r.message) for r in results if not r.passed] == []


def test_unknown_documents_have_no_rules() -> None:
    assert run_rules(DocType.UNKNOWN, FRONT) == []


MODULES_WITH_DOCTESTS = [
    "domain.gb11643",
    "domain.cn_amount",
    "validators.fields",
    "domain.masking",
    "validators.registry",
    "validators.cli_support",
]


@pytest.mark.parametrize("name", MODULES_WITH_DOCTESTS)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
