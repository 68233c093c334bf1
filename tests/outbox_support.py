"""Synthetic approved documents for the outbox tests (all people invented)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlmodel import Session

from backoffice.outbox import approve_document
from backoffice.sandbox.seed import Person, account_number, load_people
from backoffice.store import Document, FieldValue, Status
from validators import cn_ric

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
    return body + cn_ric.calc_check_digit(body)


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
                   claim_share: float = 0.5, config=None, commit_every: int = 250,
                   tag: str = "t") -> Batch:
    """``n`` approved documents (ID card fronts and claim forms) with their outbox messages."""
    rng = random.Random(seed)
    people = load_people()
    regions = sorted({p.id_number[:6] for p in people})
    batch = Batch()
    with Session(engine) as session:
        for i in range(n):
            is_claim = rng.random() < claim_share
            bad = rng.random() < bad_rate
            if is_claim:
                doc_type, values = "claim_form", claim_fields(rng, rng.choice(people), bad)
            else:
                doc_type, values = "id_card_front", front_fields(rng, regions, bad)
            sha = hashlib.sha256(f"{tag}-{seed}-{i}".encode()).hexdigest()
            doc = Document(sha256=sha, original_name=f"{doc_type}-{i}.jpg",
                           stored_path="/nowhere", doc_type=doc_type, batch=tag,
                           status=Status.PROCESSED)
            session.add(doc)
            session.flush()
            for name, value in values.items():
                session.add(FieldValue(document_id=doc.id, name=name, value=value,
                                       confidence=0.99))
            approve_document(session, doc, actor="test", config=config)
            batch.doc_ids.append(doc.id)
            batch.kinds[doc.id] = doc_type
            if bad:
                (batch.bad_claims if is_claim else batch.bad_core).add(doc.id)
            if (i + 1) % commit_every == 0:
                session.commit()
        session.commit()
    return batch
