"""Cross-system rules against a small fake of the downstream systems.

The fake records the questions asked, so the tests can check not only the verdicts but
that the rules ask the systems the right thing (both number forms, the parsed date).
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.models import DocType, Severity
from validators.lookup import InMemoryLookup, SystemLookup
from validators.registry import RuleContext, default_registry, run_rules
from validators.rules._samples import CLAIM, FRONT, STANDARD_ID, STANDARD_ID_15

TODAY = datetime.date(2025, 6, 1)
CROSSREF = [rule for rule in default_registry() if rule.name.startswith("crossref.")]


class FakeSystems:
    """Answers from dicts and remembers every call."""

    def __init__(self, customers=None, insured=None, policies=None, claims=None) -> None:
        self.customers = customers or {}
        self.insured = insured or {}
        self.policies = policies or {}
        self.claims = claims or []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def find_customer(self, id18):
        self.calls.append(("find_customer", (id18,)))
        return self.customers.get(id18)

    def find_insured(self, id18, id15):
        self.calls.append(("find_insured", (id18, id15)))
        return [r for key, r in self.insured.items() if key in (id18, id15)]

    def find_policy(self, policy_number):
        self.calls.append(("find_policy", (policy_number,)))
        return self.policies.get(policy_number)

    def find_claims(self, policy_number, accident_date, amount):
        self.calls.append(("find_claims", (policy_number, accident_date, amount)))
        return list(self.claims)


def results_of(doc_type, fields, lookup) -> dict[str, list]:
    by_rule: dict[str, list] = {}
    for result in run_rules(doc_type, fields, ctx=RuleContext(today=TODAY, lookup=lookup)):
        if result.rule.startswith("crossref."):
            by_rule.setdefault(result.rule, []).append(result)
    return by_rule


def test_fakes_satisfy_the_protocol() -> None:
    assert isinstance(FakeSystems(), SystemLookup)
    assert isinstance(InMemoryLookup(), SystemLookup)


@pytest.mark.parametrize("rule", CROSSREF, ids=lambda r: r.name)
def test_without_lookup_every_crossref_rule_is_skipped(rule) -> None:
    doc_type = next(iter(rule.doc_types))
    fields = FRONT if doc_type is DocType.ID_CARD_FRONT else CLAIM
    [result] = [
        r for r in run_rules(doc_type, fields, ctx=RuleContext(today=TODAY)) if r.rule == rule.name
    ]
    assert (result.passed, result.severity, result.details.get("skipped")) == (
        False,
        Severity.INFO,
        True,
    )
    assert "no system lookup" in result.message


def test_insured_is_looked_up_under_both_forms() -> None:
    systems = FakeSystems(insured={STANDARD_ID_15: {"id_number": STANDARD_ID_15, "name": "李秀英"}})
    found = results_of(DocType.CLAIM_FORM, CLAIM, systems)["crossref.insured_found"]
    assert [r.passed for r in found] == [True]
    assert found[0].details["matched_by"] == ["15"]
    assert ("find_insured", (STANDARD_ID, STANDARD_ID_15)) in systems.calls


def test_a_15_digit_number_on_the_form_is_upgraded_for_the_lookup() -> None:
    systems = FakeSystems(insured={STANDARD_ID: {"id_number": STANDARD_ID, "name": "李秀英"}})
    found = results_of(DocType.CLAIM_FORM, {**CLAIM, "insured_id_number": STANDARD_ID_15}, systems)
    assert found["crossref.insured_found"][0].passed
    assert ("find_insured", (STANDARD_ID, STANDARD_ID_15)) in systems.calls


def test_births_after_1999_have_no_15_digit_form_to_look_up() -> None:
    young = "110105200005010013"
    systems = FakeSystems()
    results_of(DocType.CLAIM_FORM, {**CLAIM, "insured_id_number": young}, systems)
    assert ("find_insured", (young, None)) in systems.calls


def test_insured_not_found_fails_with_a_masked_number() -> None:
    failed = results_of(DocType.CLAIM_FORM, CLAIM, FakeSystems())["crossref.insured_found"][0]
    assert not failed.passed and failed.severity is Severity.ERROR
    assert failed.details["id_number"] == "110*************2X"
    assert STANDARD_ID not in failed.model_dump_json()


def test_invalid_number_is_not_looked_up() -> None:
    systems = FakeSystems()
    results = results_of(
        DocType.CLAIM_FORM, {**CLAIM, "insured_id_number": "110105194912310021"}, systems
    )
    assert all(r.details.get("skipped") for r in results["crossref.insured_found"])
    assert not any(call[0] == "find_insured" for call in systems.calls)


def test_identity_disagreement_names_the_system_not_the_values() -> None:
    systems = FakeSystems(
        customers={
            STANDARD_ID: {"customer_id": "C9", "name": "李秀兰", "birth_date": "1949-12-31"}
        },
        insured={
            STANDARD_ID: {"id_number": STANDARD_ID, "name": "李秀英", "birth_date": "1950-01-01"}
        },
    )
    agrees = results_of(DocType.CLAIM_FORM, CLAIM, systems)["crossref.insured_identity_agrees"]
    assert sorted((r.details["system"], tuple(r.details["differences"])) for r in agrees) == [
        ("claims system", ("birth date",)),
        ("core system", ("name",)),
    ]
    for result in agrees:
        assert "李秀兰" not in result.model_dump_json() and "李秀英" not in result.model_dump_json()


def test_records_missing_keys_are_not_mismatches() -> None:
    systems = FakeSystems(customers={STANDARD_ID: {"customer_id": "C9"}})
    front = results_of(DocType.ID_CARD_FRONT, FRONT, systems)
    assert front["crossref.customer_exists"][0].passed
    assert front["crossref.customer_identity_agrees"][0].passed


def test_policy_cover_dates() -> None:
    systems = FakeSystems(
        policies={
            "P1": {"status": "IN_FORCE", "start_date": "2025-03-10", "end_date": "2025-03-10"}
        }
    )
    on_the_day = results_of(DocType.CLAIM_FORM, {**CLAIM, "policy_number": "P1"}, systems)
    assert on_the_day["crossref.policy_in_force"][0].passed  # cover days are inclusive
    next_day = results_of(
        DocType.CLAIM_FORM, {**CLAIM, "policy_number": "P1", "accident_date": "2025-03-11"}, systems
    )
    assert "after cover ended" in next_day["crossref.policy_in_force"][0].message


def test_policy_without_dates_is_skipped_not_failed() -> None:
    systems = FakeSystems(policies={CLAIM["policy_number"]: {"status": "in_force"}})
    [result] = results_of(DocType.CLAIM_FORM, CLAIM, systems)["crossref.policy_in_force"]
    assert result.details.get("skipped") and result.severity is Severity.INFO


def test_duplicate_search_passes_parsed_values() -> None:
    systems = FakeSystems(claims=[{"claim_id": "CL7"}])
    [result] = results_of(DocType.CLAIM_FORM, CLAIM, systems)["crossref.duplicate_claim"]
    assert not result.passed and result.details["claim_ids"] == ["CL7"]
    assert (
        "find_claims",
        (CLAIM["policy_number"], datetime.date(2025, 3, 10), Decimal("12345.67")),
    ) in systems.calls


def test_unreadable_amount_widens_the_duplicate_search() -> None:
    systems = FakeSystems()
    results_of(DocType.CLAIM_FORM, {**CLAIM, "claim_amount": "12,345.67"}, systems)
    assert (
        "find_claims",
        (CLAIM["policy_number"], datetime.date(2025, 3, 10), None),
    ) in systems.calls


def test_a_failing_lookup_becomes_an_error_result() -> None:
    class Down(FakeSystems):
        def find_policy(self, policy_number):
            raise ConnectionError("policy system at 10.0.0.7 unreachable")

    [result] = results_of(DocType.CLAIM_FORM, CLAIM, Down())["crossref.policy_in_force"]
    assert (result.passed, result.severity, result.message) == (
        False,
        Severity.ERROR,
        "rule failed: ConnectionError",
    )
