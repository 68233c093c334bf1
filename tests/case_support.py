"""Claim cases for tests, their pages' fields put in the store as a reader would leave
them (no OCR)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlmodel import Session

from backoffice import cases
from backoffice.settings import Settings
from backoffice.store import Case, Document, FieldValue, Status
from validators.rules._samples import BACK, CLAIM, FRONT

INVOICE_1 = {"invoice_kind": "门诊", "invoice_code": "11010125", "invoice_number": "0012345678",
             "invoice_date": "2025-03-10", "patient_name": CLAIM["insured_name"],
             "hospital": CLAIM["hospital"], "items": "西药费:9000.00;检查费:1000.00",
             "total_amount": "10000.00", "total_amount_in_words": "壹万元整",
             "insurance_paid": None, "self_paid": None}
INVOICE_2 = {**INVOICE_1, "invoice_number": "0012345679", "invoice_date": "2025-03-12",
             "items": "治疗费:2345.67", "total_amount": "2345.67",
             "total_amount_in_words": "贰仟叁佰肆拾伍元陆角柒分"}
CARD = {"card_number": CLAIM["account_number"], "bank_name": "中国工商银行",
        "card_holder": CLAIM["account_name"]}
PAGES = {"claim_form": CLAIM, "id_card_front": FRONT, "id_card_back": BACK,
         "medical_invoice": INVOICE_1, "medical_invoice#2": INVOICE_2, "bank_card": CARD}


def settings(tmp_path: Path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "var", **kw)


def _page(session: Session, case: Case, doc_type: str, fields: dict, *, route: str = "approved",
          reason: str | None = None) -> Document:
    sha = hashlib.sha256(f"{case.ref}/{doc_type}/{sorted(fields.items())}".encode()).hexdigest()
    doc = Document(sha256=sha, original_name=f"{doc_type}.jpg", stored_path="x",
                   status=Status.PROCESSED, doc_type=doc_type.split("#")[0], batch=case.batch,
                   reason=reason)
    session.add(doc)
    session.flush()
    for name, value in fields.items():
        session.add(FieldValue(document_id=doc.id, name=name, value=value, confidence=0.99))
    link = cases.join_case(session, case, doc)
    link.page_route = route
    session.add(link)
    return doc


def make_case(engine, ref: str, pages: dict | None = None, kind: str = "claim", **routes
              ) -> int:
    with Session(engine) as session:
        case = cases.case_for(session, ref, kind=kind)
        for doc_type, fields in (PAGES if pages is None else pages).items():
            _page(session, case, doc_type, fields, **routes.get(doc_type.replace("#", "_"), {}))
        session.commit()
        return case.id


