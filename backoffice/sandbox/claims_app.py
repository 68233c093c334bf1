"""The claims system sandbox: a legacy system of policies, insured persons and claims.

Older insured records hold the 15-digit number of a first-generation card, and the system
matches a claim's insured by the number *as it stores it*: a claim for such a person must
carry the 15-digit form. Claims come in (``POST /claims``, idempotent) in the system's own
field names, dates as YYYYMMDD. Its read API (``/insured``, ``/policies``, ``/claims``)
answers in the shape the cross-system rules read (ISO dates).
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from backoffice.sandbox.common import (
    Faults,
    IdempotencyKey,
    Rejected,
    SystemDB,
    build_app,
    idempotent_write,
    inbound_router,
    now_text,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS policy (
    policy_number TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    insured_id_number TEXT,
    product TEXT
);
CREATE TABLE IF NOT EXISTS insured (
    insured_id TEXT PRIMARY KEY,
    policy_number TEXT NOT NULL REFERENCES policy(policy_number),
    id_number TEXT NOT NULL,
    name TEXT NOT NULL,
    birth_date TEXT
);
CREATE INDEX IF NOT EXISTS ix_insured_id ON insured(id_number);
CREATE TABLE IF NOT EXISTS claim (
    claim_id TEXT PRIMARY KEY,
    policy_number TEXT NOT NULL REFERENCES policy(policy_number),
    insured_id TEXT,
    insured_idno TEXT,
    claimant TEXT,
    accident_date TEXT NOT NULL,
    amount TEXT NOT NULL,
    hospital TEXT,
    diagnosis TEXT,
    payee_bank TEXT,
    payee_account_name TEXT,
    payee_account_no TEXT,
    status TEXT NOT NULL,
    ext_ref TEXT,
    idempotency_key TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claim_invoice (
    claim_id TEXT NOT NULL REFERENCES claim(claim_id),
    seq INTEGER NOT NULL,
    invoice_code TEXT,
    invoice_number TEXT,
    invoice_date TEXT,
    total TEXT,
    items TEXT,
    PRIMARY KEY (claim_id, seq)
);
CREATE INDEX IF NOT EXISTS ix_claim_policy ON claim(policy_number, accident_date);
CREATE INDEX IF NOT EXISTS ix_claim_key ON claim(idempotency_key);
CREATE INDEX IF NOT EXISTS ix_claim_ref ON claim(ext_ref);
"""

COUNTS = {
    "policy": "SELECT count(*) AS n FROM policy",
    "insured": "SELECT count(*) AS n FROM insured",
    "claim": "SELECT count(*) AS n FROM claim",
    "claim_invoice": "SELECT count(*) AS n FROM claim_invoice",
    "idempotency": "SELECT count(*) AS n FROM idempotency",
}


class InvoiceIn(BaseModel):
    """A medical invoice sent with a claim."""

    invoice_code: str | None = None
    invoice_number: str | None = None
    invoice_date: str | None = None
    total_amount: str | None = Field(None, pattern=r"^\d{1,12}(\.\d{1,2})?$")
    items: list[dict[str, Any]] = Field(default_factory=list)


class ClaimIn(BaseModel):
    """A claim in the claims system's own field names."""

    POLICY_NO: str = Field(min_length=1)
    INSURED_IDNO: str = Field(pattern=r"^(\d{15}|\d{17}[\dX])$")
    INSURED_NAME: str = Field(min_length=1)
    CLAIMANT: str | None = None
    RELATION: str | None = None
    PHONE: str | None = None
    ACCIDENT_DT: str = Field(pattern=r"^\d{8}$")
    CLAIM_AMT: str = Field(pattern=r"^\d{1,12}(\.\d{1,2})?$")
    HOSPITAL: str | None = None
    DIAGNOSIS: str | None = None
    PAYEE_BANK: str | None = None
    PAYEE_ACCT_NAME: str | None = None
    PAYEE_ACCT_NO: str | None = Field(None, pattern=r"^\d{8,30}$")
    APPLY_DT: str | None = Field(None, pattern=r"^\d{8}$")
    EXT_REF: str | None = None
    #: A claim case's medical invoices: code, number, date, total and itemised lines.
    INVOICES: list[InvoiceIn] | None = None


def _yyyymmdd(value: str, loc: str) -> str:
    try:
        return datetime.datetime.strptime(value, "%Y%m%d").date().isoformat()
    except ValueError:
        raise Rejected(f"{loc} is not a date", ["body", loc]) from None


def create_app(db_path: Path, faults: Faults | None = None) -> Any:
    """The claims system as an ASGI app over the SQLite file ``db_path``."""
    db = SystemDB(db_path, SCHEMA)
    router = APIRouter()

    @router.get("/insured")
    def find_insured(id_number: Annotated[list[str], Query()]) -> dict[str, Any]:
        marks = ",".join("?" * len(id_number))
        rows = db.query("SELECT insured_id, policy_number, id_number, name, birth_date "
                        f"FROM insured WHERE id_number IN ({marks}) ORDER BY insured_id",
                        id_number)
        return {"items": rows}

    @router.get("/policies")
    def find_policies(policy_number: str = Query(...)) -> dict[str, Any]:
        return {"items": db.query("SELECT policy_number, status, start_date, end_date, "
                                  "insured_id_number, product FROM policy "
                                  "WHERE policy_number = ?", (policy_number,))}

    @router.get("/claims")
    def find_claims(policy_number: str = Query(...), accident_date: str | None = None,
                    amount: str | None = None) -> dict[str, Any]:
        sql = ("SELECT claim_id, policy_number, accident_date, amount, status FROM claim "
               "WHERE policy_number = ?")
        params: list[Any] = [policy_number]
        if accident_date:
            sql += " AND accident_date = ?"
            params.append(accident_date)
        rows = db.query(sql + " ORDER BY claim_id", params)
        if amount is not None:
            try:
                wanted = Decimal(amount)
                rows = [r for r in rows if Decimal(r["amount"]) == wanted]
            except InvalidOperation:
                rows = []
        return {"items": rows}

    @router.post("/claims", status_code=201)
    def post_claim(body: ClaimIn, idempotency_key: str | None = IdempotencyKey):
        def write(conn) -> dict[str, Any]:
            policy = conn.execute("SELECT status FROM policy WHERE policy_number = ?",
                                  (body.POLICY_NO,)).fetchone()
            if policy is None:
                raise Rejected("unknown policy", ["body", "POLICY_NO"])
            insured = conn.execute(
                "SELECT insured_id FROM insured WHERE policy_number = ? AND id_number = ?",
                (body.POLICY_NO, body.INSURED_IDNO)).fetchone()
            if insured is None:
                raise Rejected("no insured person on this policy under this number "
                               "(as the system stores it)", ["body", "INSURED_IDNO"])
            accident = _yyyymmdd(body.ACCIDENT_DT, "ACCIDENT_DT")
            seq = conn.execute("SELECT count(*) FROM claim").fetchone()[0] + 1
            # Seeded earlier claims have ids of the same form: skip any taken.
            while conn.execute("SELECT 1 FROM claim WHERE claim_id = ?",
                               (f"CL{seq:08d}",)).fetchone() is not None:
                seq += 1
            claim_id = f"CL{seq:08d}"
            conn.execute(
                "INSERT INTO claim (claim_id, policy_number, insured_id, insured_idno, "
                "claimant, accident_date, amount, hospital, diagnosis, payee_bank, "
                "payee_account_name, payee_account_no, status, ext_ref, idempotency_key, "
                "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (claim_id, body.POLICY_NO, insured["insured_id"], body.INSURED_IDNO,
                 body.CLAIMANT, accident, body.CLAIM_AMT, body.HOSPITAL, body.DIAGNOSIS,
                 body.PAYEE_BANK, body.PAYEE_ACCT_NAME, body.PAYEE_ACCT_NO, "registered",
                 body.EXT_REF, idempotency_key, now_text()))
            for seq, inv in enumerate(body.INVOICES or [], 1):
                conn.execute(
                    "INSERT INTO claim_invoice (claim_id, seq, invoice_code, invoice_number, "
                    "invoice_date, total, items) VALUES (?,?,?,?,?,?,?)",
                    (claim_id, seq, inv.invoice_code, inv.invoice_number, inv.invoice_date,
                     inv.total_amount, json.dumps(inv.items, ensure_ascii=False)))
            return {"claim_id": claim_id, "status": "registered"}

        return idempotent_write(db, idempotency_key, body.model_dump(), write)

    routers = [router, inbound_router(db, "claim", "claim_id", "ext_ref")]
    return build_app("claims system (sandbox)", db, routers, COUNTS, faults)
