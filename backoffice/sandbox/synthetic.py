"""Synthetic approved documents for load tests and benchmarks of the outbox.

All people are invented; the claims reference the sandbox's seeded policies (from the
fixtures), so the claims system accepts them. A share ``bad_rate`` carries a payload the
target refuses (a wrong check digit for the core, a malformed amount for claims).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session, select

from backoffice.outbox import approve_document
from backoffice.sandbox.seed import IDCARD_TRUTH, Person, account_number, load_people
from backoffice.store import Document, FieldValue, Status
from domain import gb11643

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂"


@dataclass
class Batch:
    """What a test created: documents, and which ones the targets will refuse."""

    doc_ids: list[int] = field(default_factory=list)
    bad_core: set[int] = field(default_factory=set)
    bad_claims: set[int] = field(default_factory=set)
    kinds: dict[int, str] = field(default_factory=dict)


def _id_number(rng: random.Random, region: str) -> str:
    birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 49 * 365))
    body = f"{region}{birth:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return body + gb11643.calc_check_digit(body)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def front_fields(rng: random.Random, regions: list[str], bad: bool) -> dict[str, str]:
    number = _id_number(rng, rng.choice(regions))
    if bad:  # a wrong check digit: the core refuses it (422)
        last = "0" if number[-1] != "0" else "1"
        number = number[:-1] + last
    return {"name": _name(rng), "sex": "男" if int(number[16]) % 2 else "女",
            "ethnicity": "汉", "birth_date": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
            "address": "北京市朝阳区建国路88号", "id_number": number}


def claim_fields(rng: random.Random, person: Person, bad: bool) -> dict[str, str]:
    accident = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 600))
    amount = f"{rng.randrange(100, 99999)}.{rng.randrange(0, 100):02d}"
    return {
        "policy_number": person.policy_number, "insured_name": person.name,
        "insured_id_number": person.id_number, "claimant_name": person.name,
        "relationship": "本人", "phone": f"138{rng.randrange(0, 10**8):08d}",
        "accident_date": accident.isoformat(), "hospital": "北京协和医院", "diagnosis": "骨折",
        "claim_amount": "12,3x4" if bad else amount, "claim_amount_in_words": "",
        "bank_name": "中国工商银行", "account_name": person.name,
        "account_number": account_number(person.index, 7),
        "application_date": (accident + timedelta(days=5)).isoformat(),
    }


def make_documents(engine, n: int, *, seed: int = 1, bad_rate: float = 0.01,
                   claim_share: float = 0.5, config=None, chunk: int = 250,
                   tag: str = "t", fixtures: Path = Path("fixtures")) -> Batch:
    """``n`` approved documents (ID card fronts and claim forms) with their outbox messages.

    Documents and fields are inserted in bulk (set-up); each document is then approved on
    its own through :func:`approve_document`, the path under test.
    """
    rng = random.Random(seed)
    people = load_people(fixtures / IDCARD_TRUTH)
    regions = sorted({p.id_number[:6] for p in people})
    batch = Batch()
    specs = []
    for i in range(n):
        is_claim = rng.random() < claim_share
        bad = rng.random() < bad_rate
        if is_claim:
            specs.append(("claim_form", claim_fields(rng, rng.choice(people), bad), bad))
        else:
            specs.append(("id_card_front", front_fields(rng, regions, bad), bad))
    for start in range(0, n, chunk):
        part = specs[start:start + chunk]
        with Session(engine) as session:
            rows = [{"sha256": hashlib.sha256(f"{tag}-{seed}-{start + j}".encode()).hexdigest(),
                     "page": 0, "original_name": f"{doc_type}-{start + j}.jpg",
                     "stored_path": "/nowhere", "size_bytes": 0, "source": "test",
                     "doc_type": doc_type, "batch": tag, "status": Status.PROCESSED,
                     "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)}
                    for j, (doc_type, _, _) in enumerate(part)]
            ids = list(session.execute(insert(Document).returning(Document.id,
                                                                  sort_by_parameter_order=True),
                                       rows).scalars())
            session.execute(insert(FieldValue), [
                {"document_id": doc_id, "name": name, "value": value, "confidence": 0.99}
                for doc_id, (_, values, _) in zip(ids, part, strict=True)
                for name, value in values.items()])
            docs = {d.id: d for d in session.exec(select(Document).where(Document.id.in_(ids)))}
            for doc_id, (doc_type, _, bad) in zip(ids, part, strict=True):
                approve_document(session, docs[doc_id], actor="test", config=config)
                batch.doc_ids.append(doc_id)
                batch.kinds[doc_id] = doc_type
                if bad:
                    (batch.bad_claims if doc_type == "claim_form" else batch.bad_core).add(doc_id)
            session.commit()
    return batch
