"""Cross-system rules: what the document says against what the downstream systems know.

They read the systems only through ``ctx.lookup`` (a :class:`~validators.lookup.SystemLookup`)
and report "skipped" (info) when there is none, or when the document's own identity
number is unusable: the id_number rules already say why. Legacy systems may hold a
person under the 15-digit number of a first-generation card, so insured persons are
looked up under both forms.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from stdnum.exceptions import ValidationError

from domain import cn_amount
from domain.models import CheckResult, DocType, Severity
from validators.fields import parse_date, same_name, text
from validators.lookup import SystemLookup
from validators.registry import Example, RuleContext, failed, passed, rule, skipped
from validators.rules._samples import (
    CLAIM,
    EMPTY_LOOKUP,
    FRONT,
    LOOKUP,
    LOOKUP_DISAGREEING,
    LOOKUP_WITH_DUPLICATE,
)
from validators.rules.id_number import IdNumberFacts, examine_id_number

ID_FRONT = DocType.ID_CARD_FRONT
# A temporary card carries the same fields: the front's rules apply to it too.
ID_TEMPORARY = DocType.ID_CARD_TEMPORARY
CLAIM_FORM = DocType.CLAIM_FORM
Fields = Mapping[str, str | None]

NO_LOOKUP = "no system lookup configured"

#: Policy statuses under which a policy never gave cover, whatever its dates say.
NEVER_IN_FORCE = frozenset({"void", "voided", "declined", "rejected", "pending", "quoted"})


def _valid_number(fields: Fields, name: str, ctx: RuleContext) -> IdNumberFacts | None:
    value = text(fields, name)
    if value is None:
        return None
    facts = examine_id_number(value, today=ctx.today)
    return facts if facts.valid else None


def _mismatches(
    record: Mapping[str, Any], name: str | None, birth_date: datetime.date | None
) -> list[str]:
    """Which of name and birth date a record contradicts; absent values are not contradictions."""
    differences = []
    if name is not None and record.get("name") and not same_name(name, str(record["name"])):
        differences.append("name")
    recorded_birth = parse_date(record.get("birth_date"))
    if birth_date is not None and recorded_birth is not None and recorded_birth != birth_date:
        differences.append("birth date")
    return differences


def _on_record(records: list[Mapping[str, Any]], name: str | None,
               birth_date: datetime.date | None) -> list[str]:
    """Which of name and birth date the records hold and agree with (the caller has
    found no contradiction): what the records vouch for."""
    out = []
    if name is not None and any(r.get("name") for r in records):
        out.append("name")
    if birth_date is not None and any(parse_date(r.get("birth_date")) for r in records):
        out.append("birth_date")
    return out


def _verb(differences: list[str]) -> str:
    return "differs" if len(differences) == 1 else "differ"


# --- identity card against the core system ------------------------------------------


@rule(
    "crossref.customer_exists",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("id_number",),
    severity=Severity.WARNING,
    examples=[
        Example(FRONT, True, lookup=LOOKUP),
        Example(FRONT, False, lookup=EMPTY_LOOKUP, note="a new customer: worth a look"),
        Example(FRONT, False, expect_severity=Severity.INFO, note="no lookup: skipped"),
    ],
)
def customer_exists(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The core system has a customer under the card's 18-digit number."""
    if ctx.lookup is None:
        return skipped(NO_LOOKUP)
    facts = _valid_number(fields, "id_number", ctx)
    if facts is None or facts.id18 is None:
        return skipped("no valid id_number (see the id_number rules)")
    customer = ctx.lookup.find_customer(facts.id18)
    if customer is None:
        return failed("no customer in the core system under this ID number", id_number=facts.masked)
    return passed(customer_id=customer.get("customer_id"))


@rule(
    "crossref.customer_identity_agrees",
    doc_types={ID_FRONT, ID_TEMPORARY},
    reads=("name", "birth_date", "id_number"),
    examples=[
        Example(FRONT, True, lookup=LOOKUP),
        Example(FRONT, False, lookup=LOOKUP_DISAGREEING, note="core has another name and birth date"),
        Example(FRONT, False, lookup=EMPTY_LOOKUP, expect_severity=Severity.INFO,
                note="no customer to compare with"),
    ],
)  # fmt: skip
def customer_identity_agrees(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The card's name and birth date agree with the core system's customer record."""
    if ctx.lookup is None:
        return skipped(NO_LOOKUP)
    facts = _valid_number(fields, "id_number", ctx)
    if facts is None or facts.id18 is None:
        return skipped("no valid id_number (see the id_number rules)")
    customer = ctx.lookup.find_customer(facts.id18)
    if customer is None:
        return skipped("no customer record to compare with")
    birth_date = parse_date(text(fields, "birth_date")) or facts.birth_date
    differences = _mismatches(customer, text(fields, "name"), birth_date)
    if differences:
        return failed(
            f"{' and '.join(differences)} {_verb(differences)} from the core system's customer record",
            customer_id=customer.get("customer_id"),
            differences=differences,
        )
    return passed(customer_id=customer.get("customer_id"),
                  on_record=_on_record([customer], text(fields, "name"), birth_date))


# --- claim form against the claims and policy systems --------------------------------


def _insured_records(lookup: SystemLookup, id18: str, id15: str | None) -> list[dict[str, Any]]:
    return list(lookup.find_insured(id18, id15))


@rule(
    "crossref.insured_found",
    doc_types={CLAIM_FORM},
    reads=("insured_id_number",),
    examples=[
        Example(CLAIM, True, lookup=LOOKUP, note="found under the old 15-digit number"),
        Example({"insured_id_number": "110105491231002"}, True, lookup=LOOKUP,
                note="a 15-digit number on the form finds the same record"),
        Example(CLAIM, False, lookup=EMPTY_LOOKUP),
        Example(CLAIM, False, expect_severity=Severity.INFO, note="no lookup: skipped"),
    ],
)  # fmt: skip
def insured_found(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The claims system knows the insured, under the 18- or the 15-digit number."""
    if ctx.lookup is None:
        return skipped(NO_LOOKUP)
    facts = _valid_number(fields, "insured_id_number", ctx)
    if facts is None or facts.id18 is None:
        return skipped("no valid insured_id_number (see claim.insured_id_number_valid)")
    records = _insured_records(ctx.lookup, facts.id18, facts.id15)
    if not records:
        return failed(
            "insured person not found in the claims system (18- or 15-digit number)",
            id_number=facts.masked,
        )
    matched_by = sorted({"15" if r.get("id_number") == facts.id15 else "18" for r in records})
    return passed(matched_by=matched_by, records=len(records))


@rule(
    "crossref.insured_identity_agrees",
    doc_types={CLAIM_FORM},
    reads=("insured_name", "insured_id_number"),
    examples=[
        Example(CLAIM, True, lookup=LOOKUP),
        Example(CLAIM, False, lookup=LOOKUP_DISAGREEING,
                note="both systems have another name; core also another birth date"),
        Example({**CLAIM, "insured_name": "李秀"}, False, lookup=LOOKUP),
        Example(CLAIM, False, lookup=EMPTY_LOOKUP, expect_severity=Severity.INFO,
                note="nothing to compare with"),
    ],
)  # fmt: skip
def insured_identity_agrees(fields: Fields, ctx: RuleContext) -> list[CheckResult] | CheckResult:
    """The insured's name and birth date agree with the claims and core systems' records."""
    if ctx.lookup is None:
        return skipped(NO_LOOKUP)
    facts = _valid_number(fields, "insured_id_number", ctx)
    if facts is None or facts.id18 is None:
        return skipped("no valid insured_id_number (see claim.insured_id_number_valid)")
    name = text(fields, "insured_name")
    sources: list[tuple[str, Mapping[str, Any]]] = [
        ("claims system", record) for record in _insured_records(ctx.lookup, facts.id18, facts.id15)
    ]
    customer = ctx.lookup.find_customer(facts.id18)
    if customer is not None:
        sources.append(("core system", customer))
    if not sources:
        return skipped("no record in either system to compare with")
    problems = []
    for system, record in sources:
        differences = _mismatches(record, name, facts.birth_date)
        if differences:
            problems.append(
                failed(
                    f"insured's {' and '.join(differences)} {_verb(differences)} from the {system}'s record",
                    system=system,
                    differences=differences,
                )
            )
    return problems or passed(records=len(sources), on_record=_on_record(
        [record for _system, record in sources], name, facts.birth_date))


@rule(
    "crossref.policy_in_force",
    doc_types={CLAIM_FORM},
    reads=("policy_number", "accident_date"),
    examples=[
        Example(CLAIM, True, lookup=LOOKUP),
        Example({**CLAIM, "policy_number": "P2023000077"}, False, lookup=LOOKUP, note="lapsed in 2023"),
        Example({**CLAIM, "policy_number": "P2025000999"}, False, lookup=LOOKUP, note="void"),
        Example({**CLAIM, "accident_date": "2024-12-31"}, False, lookup=LOOKUP, note="before cover began"),
        Example({**CLAIM, "policy_number": "P0000000000"}, False, lookup=LOOKUP, note="unknown policy"),
        Example(CLAIM, False, expect_severity=Severity.INFO, note="no lookup: skipped"),
    ],
)  # fmt: skip
def policy_in_force(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The policy exists and was in force on the accident date."""
    if ctx.lookup is None:
        return skipped(NO_LOOKUP)
    policy_number = text(fields, "policy_number")
    accident = parse_date(text(fields, "accident_date"))
    if policy_number is None or accident is None:
        return skipped("policy_number or a readable accident_date is missing")
    policy = ctx.lookup.find_policy(policy_number)
    if policy is None:
        return failed("policy not found in the policy system", fields=["policy_number"])
    status = str(policy.get("status") or "").strip().lower()
    if status in NEVER_IN_FORCE:
        return failed(f"policy never gave cover (status {status})", status=status)
    start, end = parse_date(policy.get("start_date")), parse_date(policy.get("end_date"))
    if start is None or end is None:
        return skipped("the policy record has no readable cover dates")
    if accident < start:
        return failed("the accident happened before cover began", status=status)
    if accident > end:
        return failed("the accident happened after cover ended", status=status)
    return passed(status=status)


@rule(
    "crossref.duplicate_claim",
    doc_types={CLAIM_FORM},
    reads=("policy_number", "accident_date", "claim_amount"),
    examples=[
        Example(CLAIM, True, lookup=LOOKUP, note="an earlier claim on another date"),
        Example(CLAIM, False, lookup=LOOKUP_WITH_DUPLICATE),
        Example(CLAIM, False, expect_severity=Severity.INFO, note="no lookup: skipped"),
    ],
)
def duplicate_claim(fields: Fields, ctx: RuleContext) -> CheckResult:
    """No claim on the same policy, accident date and amount is already registered."""
    if ctx.lookup is None:
        return skipped(NO_LOOKUP)
    policy_number = text(fields, "policy_number")
    accident = parse_date(text(fields, "accident_date"))
    if policy_number is None or accident is None:
        return skipped("policy_number or a readable accident_date is missing")
    amount: Decimal | None
    try:
        amount = cn_amount.parse_figures(text(fields, "claim_amount") or "")
    except ValidationError:
        amount = None  # search more broadly: same policy and accident date
    existing = ctx.lookup.find_claims(policy_number, accident, amount)
    if existing:
        return failed(
            f"possibly a duplicate of {len(existing)} claim(s) already registered",
            claim_ids=[str(c.get("claim_id")) for c in existing],
        )
    return passed()


RULES = [
    customer_exists,
    customer_identity_agrees,
    insured_found,
    insured_identity_agrees,
    policy_in_force,
    duplicate_claim,
]
