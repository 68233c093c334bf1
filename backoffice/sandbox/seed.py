"""Seed data for the sandbox systems, taken from the fixtures so that both agree.

- Core: every person of ``fixtures/idcards/truth.jsonl`` (the ID card fronts) is a
  customer under their 18-digit number, name and birth date, with one or two accounts.
- Claims: every one of them has a policy in force (``P2025100000 + index``) and is its
  insured person. People born before 2000 at an even index are stored under the 15-digit
  number of a first-generation card (:func:`domain.gb11643.to_15`), as a legacy system
  keeps them. Person 4 also has a lapsed 2023 policy; person 0 an earlier paid claim.
- If ``fixtures/claims/truth.jsonl`` exists, each claim form's policy and insured person are
  seeded too (same identities as the ID cards): a policy in force over the accident date,
  unless the record carries hints under ``"claims_system"``: ``policy_status``,
  ``start_date``, ``end_date``, ``insured_id_form`` (``"15"`` or ``"18"``),
  ``policy_missing: true`` (seed nothing), ``prior_claims`` (a list of claim records).

Seeding is idempotent (``INSERT OR IGNORE``): restarting a system on its database is safe.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stdnum import luhn

from domain import gb11643

#: Where the ground truth lies inside a fixtures folder.
IDCARD_TRUTH = Path("idcards") / "truth.jsonl"
CLAIMS_TRUTH = Path("claims") / "truth.jsonl"
#: Claim cases (a folder per case): their insured and claims are known to the systems too.
CASES_TRUTH = Path("cases") / "truth.jsonl"
COVER_START = "2025-01-01"
COVER_END = "2027-12-31"


@dataclass(frozen=True)
class Person:
    """Who a fixture shows, as far as the systems care."""

    index: int
    name: str
    id_number: str
    birth_date: str
    sex: str | None = None
    ethnicity: str | None = None
    address: str | None = None

    @property
    def legacy(self) -> bool:
        """Whether the claims system holds this person under the 15-digit number."""
        return self.index % 2 == 0 and int(self.birth_date[:4]) < 2000

    @property
    def policy_number(self) -> str:
        return f"P2025{100000 + self.index:06d}"

    @property
    def customer_id(self) -> str:
        return f"C{self.index + 1:07d}"

    @property
    def claims_id_number(self) -> str:
        return gb11643.to_15(self.id_number) if self.legacy else self.id_number


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def load_people(truth: Path) -> list[Person]:
    """The distinct people of the ID card fixtures, by index."""
    people: dict[str, Person] = {}
    for record in _lines(truth):
        if record.get("doc_type") != "id_card_front":
            continue
        f = record["fields"]
        number = f["id_number"]
        if number not in people:
            people[number] = Person(index=int(record.get("index", len(people))), name=f["name"],
                                    id_number=number, birth_date=f["birth_date"],
                                    sex=f.get("sex"), ethnicity=f.get("ethnicity"),
                                    address=f.get("address"))
    return sorted(people.values(), key=lambda p: p.index)


def load_claim_truth(truth: Path) -> list[dict[str, Any]]:
    """Claim-form ground-truth records (one per distinct policy/insured/accident)."""
    seen: set[tuple] = set()
    out = []
    for record in _lines(truth):
        if record.get("doc_type", "claim_form") != "claim_form":
            continue
        f = record.get("fields", {})
        key = (f.get("policy_number"), f.get("insured_id_number"), f.get("accident_date"))
        if key in seen or not f.get("policy_number"):
            continue
        seen.add(key)
        out.append(record)
    return out


def account_number(index: int, n: int) -> str:
    """A deterministic 19-digit card/account number passing Luhn."""
    body = f"622202{index:06d}{n:06d}"
    return body + luhn.calc_check_digit(body)


def seed_core(conn: sqlite3.Connection, people: list[Person]) -> None:
    """Customers and accounts of the fixture people."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    with conn:
        conn.execute("BEGIN")
        for p in people:
            conn.execute("INSERT OR IGNORE INTO customer (customer_id, id_number, name, "
                         "birth_date, sex, ethnicity, address, created_at) "
                         "VALUES (?,?,?,?,?,?,?,?)",
                         (p.customer_id, p.id_number, p.name, p.birth_date, p.sex,
                          p.ethnicity, p.address, now))
            products = ["savings"] + (["credit_card"] if p.index % 2 == 0 else [])
            for n, product in enumerate(products, start=1):
                conn.execute("INSERT OR IGNORE INTO account (account_id, customer_id, "
                             "account_number, product, status, opened_on) "
                             "VALUES (?,?,?,?,?,?)",
                             (f"A{p.index + 1:07d}{n}", p.customer_id,
                              account_number(p.index, n), product, "active", "2020-01-01"))


def _insert_policy(conn: sqlite3.Connection, number: str, status: str, start: str, end: str,
                   id18: str, product: str = "medical") -> None:
    conn.execute("INSERT OR IGNORE INTO policy (policy_number, status, start_date, end_date, "
                 "insured_id_number, product) VALUES (?,?,?,?,?,?)",
                 (number, status, start, end, id18, product))


def _insert_insured(conn: sqlite3.Connection, policy: str, id_number: str, name: str,
                    birth_date: str | None) -> None:
    insured_id = f"I{policy[1:]}"
    conn.execute("INSERT OR IGNORE INTO insured (insured_id, policy_number, id_number, name, "
                 "birth_date) VALUES (?,?,?,?,?)",
                 (insured_id, policy, id_number, name, birth_date))


def seed_claims(conn: sqlite3.Connection, people: list[Person],
                claims: list[dict[str, Any]] = ()) -> None:
    """Policies, insured persons and a few earlier claims."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    by_id = {p.id_number: p for p in people}
    with conn:
        conn.execute("BEGIN")
        for p in people:
            _insert_policy(conn, p.policy_number, "in_force", COVER_START, COVER_END, p.id_number)
            _insert_insured(conn, p.policy_number, p.claims_id_number, p.name, p.birth_date)
            if p.index % 8 == 4:
                lapsed = f"P2023{100000 + p.index:06d}"
                _insert_policy(conn, lapsed, "lapsed", "2023-01-01", "2023-12-31", p.id_number)
                _insert_insured(conn, lapsed, p.claims_id_number, p.name, p.birth_date)
            if p.index % 8 == 0:
                conn.execute("INSERT OR IGNORE INTO claim (claim_id, policy_number, insured_id, "
                             "insured_idno, accident_date, amount, status, created_at) "
                             "VALUES (?,?,?,?,?,?,?,?)",
                             (f"CL0{p.index + 1:07d}", p.policy_number, f"I{p.policy_number[1:]}",
                              p.claims_id_number, "2025-02-14", "800.00", "paid", now))
        for record in claims:
            f = record.get("fields", {})
            hints = record.get("claims_system") or {}
            if hints.get("policy_missing"):
                continue
            number, id18 = f["policy_number"], f.get("insured_id_number") or ""
            accident = f.get("accident_date") or COVER_START
            person = by_id.get(id18)
            start = hints.get("start_date") or f"{accident[:4]}-01-01"
            end = hints.get("end_date") or f"{int(accident[:4]) + 1}-12-31"
            _insert_policy(conn, number, hints.get("policy_status", "in_force"), start, end, id18)
            if person is not None:
                legacy = person.legacy
            else:  # someone only the claim forms show: the same rule by their index
                legacy = int(record.get("index", 1)) % 2 == 0 and id18[6:8] == "19"
            form = hints.get("insured_id_form") or ("15" if legacy else "18")
            stored = id18
            if form == "15" and gb11643.is_valid(id18) and gb11643.kind(id18) == "18" \
                    and id18[6:8] == "19":
                stored = gb11643.to_15(id18)
            name = f.get("insured_name") or (person.name if person else "")
            birth = person.birth_date if person else None
            _insert_insured(conn, number, stored, name, birth)
            for n, prior in enumerate(hints.get("prior_claims") or [], start=1):
                conn.execute("INSERT OR IGNORE INTO claim (claim_id, policy_number, "
                             "insured_idno, accident_date, amount, status, created_at) "
                             "VALUES (?,?,?,?,?,?,?)",
                             (prior.get("claim_id") or f"CLP{number}{n}", number, stored,
                              prior["accident_date"], str(prior["amount"]),
                              prior.get("status", "paid"), now))


def seed(system: str, db_path: Path, fixtures: Path) -> None:
    """Seed one system's database (``core`` or ``claims``) from a fixtures folder's ground
    truth (a set the folder lacks seeds nothing)."""
    from backoffice.sandbox import claims_app, core_app
    from backoffice.sandbox.common import SystemDB

    idcards, claims = Path(fixtures) / IDCARD_TRUTH, Path(fixtures) / CLAIMS_TRUTH
    cases = Path(fixtures) / CASES_TRUTH
    people = load_people(idcards) if idcards.exists() else []
    people += load_people(cases)
    if system == "core":
        db = SystemDB(db_path, core_app.SCHEMA)
        seed_core(db.conn, people)
    elif system == "claims":
        db = SystemDB(db_path, claims_app.SCHEMA)
        seed_claims(db.conn, people, (load_claim_truth(claims) if claims.exists() else [])
                    + load_claim_truth(cases))
    else:
        raise ValueError(f"unknown system {system!r}")
    db.conn.close()
