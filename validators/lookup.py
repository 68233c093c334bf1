"""The read-only view of the downstream systems that cross-system rules may consult.

Rules know nothing of HTTP or connectors: they receive an object satisfying
:class:`SystemLookup` in their context (or ``None`` when no systems are configured, in
which case cross-system rules report that they were skipped). The core implements it
against the sandbox services; :class:`InMemoryLookup` implements it over plain lists,
for rule examples, tests and offline demos.

Records are plain dicts as the systems return them (JSON), dates as ISO strings and
amounts as strings; the TypedDicts below name the keys rules read. Keys may be absent:
rules treat a missing key as "unknown", not as a mismatch.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypedDict, runtime_checkable

__all__ = [
    "ClaimRecord",
    "CustomerRecord",
    "InMemoryLookup",
    "InsuredRecord",
    "PolicyRecord",
    "SystemLookup",
]


class CustomerRecord(TypedDict, total=False):
    """A customer in the core banking/insurance system, keyed by 18-digit ID number."""

    customer_id: str
    id_number: str
    name: str
    birth_date: str  # YYYY-MM-DD


class InsuredRecord(TypedDict, total=False):
    """An insured person in the claims system; old records carry 15-digit numbers."""

    insured_id: str
    policy_number: str
    id_number: str  # 18 or 15 digits, as stored
    name: str
    birth_date: str


class PolicyRecord(TypedDict, total=False):
    """A policy in the policy administration system."""

    policy_number: str
    status: str  # e.g. in_force, lapsed, void
    start_date: str  # first day of cover
    end_date: str  # last day of cover (expiry or cancellation)
    insured_id_number: str


class ClaimRecord(TypedDict, total=False):
    """A claim already registered in the claims system."""

    claim_id: str
    policy_number: str
    accident_date: str
    amount: str
    status: str


@runtime_checkable
class SystemLookup(Protocol):
    """Read-only queries against the downstream systems, one method per question."""

    def find_customer(self, id18: str) -> dict[str, Any] | None:
        """The core-system customer with this 18-digit ID number, or None."""
        ...

    def find_insured(self, id18: str, id15: str | None) -> list[dict[str, Any]]:
        """Insured persons stored under the 18-digit or the 15-digit form."""
        ...

    def find_policy(self, policy_number: str) -> dict[str, Any] | None:
        """The policy with this number, or None."""
        ...

    def find_claims(
        self,
        policy_number: str,
        accident_date: datetime.date | None,
        amount: Decimal | None,
    ) -> list[dict[str, Any]]:
        """Existing claims on the policy for that accident date (and amount, if given)."""
        ...


def _same_amount(stored: Any, amount: Decimal) -> bool:
    try:
        return Decimal(str(stored)) == amount
    except (InvalidOperation, ValueError):
        return False


class InMemoryLookup:
    """A :class:`SystemLookup` over lists of records held in memory."""

    def __init__(
        self,
        *,
        customers: Iterable[dict[str, Any]] = (),
        insured: Iterable[dict[str, Any]] = (),
        policies: Iterable[dict[str, Any]] = (),
        claims: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.customers = [dict(r) for r in customers]
        self.insured = [dict(r) for r in insured]
        self.policies = [dict(r) for r in policies]
        self.claims = [dict(r) for r in claims]

    def __repr__(self) -> str:  # examples show in test ids; keep records out of them
        return (
            f"InMemoryLookup(customers={len(self.customers)}, insured={len(self.insured)}, "
            f"policies={len(self.policies)}, claims={len(self.claims)})"
        )

    def find_customer(self, id18: str) -> dict[str, Any] | None:
        return next((dict(r) for r in self.customers if r.get("id_number") == id18), None)

    def find_insured(self, id18: str, id15: str | None) -> list[dict[str, Any]]:
        wanted = {id18} | ({id15} if id15 else set())
        return [dict(r) for r in self.insured if r.get("id_number") in wanted]

    def find_policy(self, policy_number: str) -> dict[str, Any] | None:
        return next(
            (dict(r) for r in self.policies if r.get("policy_number") == policy_number), None
        )

    def find_claims(
        self,
        policy_number: str,
        accident_date: datetime.date | None,
        amount: Decimal | None,
    ) -> list[dict[str, Any]]:
        found = []
        for record in self.claims:
            if record.get("policy_number") != policy_number:
                continue
            if (
                accident_date is not None
                and record.get("accident_date") != accident_date.isoformat()
            ):
                continue
            if amount is not None and not _same_amount(record.get("amount"), amount):
                continue
            found.append(dict(record))
        return found
