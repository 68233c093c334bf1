"""The core system sandbox: customers keyed by the 18-digit ID number, and their accounts.

It takes a KYC record per approved ID card (``POST /kyc-records``, idempotent): the record
is stored, and the customer is created if the core does not know the number yet.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from stdnum.exceptions import ValidationError

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
from domain import gb11643

SCHEMA = """
CREATE TABLE IF NOT EXISTS customer (
    customer_id TEXT PRIMARY KEY,
    id_number TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    birth_date TEXT,
    sex TEXT,
    ethnicity TEXT,
    address TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS account (
    account_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customer(customer_id),
    account_number TEXT NOT NULL UNIQUE,
    product TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_on TEXT
);
CREATE TABLE IF NOT EXISTS kyc_record (
    kyc_id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT,
    id_number TEXT NOT NULL,
    name TEXT NOT NULL,
    birth_date TEXT,
    sex TEXT,
    ethnicity TEXT,
    address TEXT,
    valid_from TEXT,
    valid_until TEXT,
    source_ref TEXT,
    idempotency_key TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS ix_kyc_key ON kyc_record(idempotency_key);
CREATE INDEX IF NOT EXISTS ix_kyc_ref ON kyc_record(source_ref);
"""

COUNTS = {
    "customer": "SELECT count(*) AS n FROM customer",
    "account": "SELECT count(*) AS n FROM account",
    "kyc_record": "SELECT count(*) AS n FROM kyc_record",
    "idempotency": "SELECT count(*) AS n FROM idempotency",
}


class KycRecordIn(BaseModel):
    """A verified identity card, in the core's field names (which are ours)."""

    id_number: str
    name: str
    birth_date: str | None = None
    sex: str | None = None
    ethnicity: str | None = None
    address: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    source_ref: str | None = None


def _check(body: KycRecordIn) -> str:
    try:
        number = gb11643.validate(body.id_number)
    except ValidationError as exc:
        raise Rejected(f"id_number is not a valid identity number ({type(exc).__name__})",
                       ["body", "id_number"]) from None
    if gb11643.kind(number) == "15":
        raise Rejected("the core system keys customers by the 18-digit number",
                       ["body", "id_number"])
    if not body.name.strip():
        raise Rejected("name is empty", ["body", "name"])
    if body.birth_date:
        try:
            birth = datetime.date.fromisoformat(body.birth_date)
        except ValueError:
            raise Rejected("birth_date is not YYYY-MM-DD", ["body", "birth_date"]) from None
        if birth != gb11643.get_birth_date(number):
            raise Rejected("birth_date disagrees with id_number", ["body", "birth_date"])
    return number


def _customer_view(db: SystemDB, row: dict[str, Any]) -> dict[str, Any]:
    row["accounts"] = db.query("SELECT account_id, account_number, product, status, opened_on "
                               "FROM account WHERE customer_id = ? ORDER BY account_id",
                               (row["customer_id"],))
    return row


def create_app(db_path: Path, faults: Faults | None = None) -> Any:
    """The core system as an ASGI app over the SQLite file ``db_path``."""
    db = SystemDB(db_path, SCHEMA)
    router = APIRouter()

    @router.get("/customers")
    def find_customers(id_number: str = Query(...)) -> dict[str, Any]:
        rows = db.query("SELECT customer_id, id_number, name, birth_date, sex, ethnicity, "
                        "address FROM customer WHERE id_number = ?", (id_number,))
        return {"items": [_customer_view(db, r) for r in rows]}

    @router.get("/customers/{customer_id}")
    def get_customer(customer_id: str) -> dict[str, Any]:
        rows = db.query("SELECT customer_id, id_number, name, birth_date, sex, ethnicity, "
                        "address FROM customer WHERE customer_id = ?", (customer_id,))
        if not rows:
            raise HTTPException(404, "no such customer")
        return _customer_view(db, rows[0])

    @router.post("/kyc-records", status_code=201)
    def post_kyc_record(body: KycRecordIn, idempotency_key: str | None = IdempotencyKey):
        def write(conn) -> dict[str, Any]:
            number = _check(body)
            found = conn.execute("SELECT customer_id FROM customer WHERE id_number = ?",
                                 (number,)).fetchone()
            new_customer = found is None
            if new_customer:
                seq = conn.execute("SELECT count(*) FROM customer").fetchone()[0] + 1
                customer_id = f"C{seq:07d}"
                conn.execute("INSERT INTO customer (customer_id, id_number, name, birth_date, "
                             "sex, ethnicity, address, created_at) VALUES (?,?,?,?,?,?,?,?)",
                             (customer_id, number, body.name, body.birth_date, body.sex,
                              body.ethnicity, body.address, now_text()))
            else:
                customer_id = found["customer_id"]
            cur = conn.execute(
                "INSERT INTO kyc_record (customer_id, id_number, name, birth_date, sex, "
                "ethnicity, address, valid_from, valid_until, source_ref, idempotency_key, "
                "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (customer_id, number, body.name, body.birth_date, body.sex, body.ethnicity,
                 body.address, body.valid_from, body.valid_until, body.source_ref,
                 idempotency_key,
                 now_text()))
            return {"kyc_id": cur.lastrowid, "customer_id": customer_id,
                    "new_customer": new_customer}

        return idempotent_write(db, idempotency_key, body.model_dump(), write)

    routers = [router, inbound_router(db, "kyc_record", "kyc_id", "source_ref")]
    return build_app("core system (sandbox)", db, routers, COUNTS, faults)
