"""Claim cases: cross-document checks, one decision, one posting per case (no OCR here:
the pages' fields are put in the store as a reader would leave them)."""

from __future__ import annotations

import datetime
import json
import sqlite3
from pathlib import Path

import pytest
from case_support import CARD, INVOICE_1, INVOICE_2, PAGES, make_case, settings
from sqlmodel import Session, select

import backoffice.outbox  # noqa: F401  (the outbox table)
from backoffice import cases
from backoffice.audit import AuditEvent, verify_audit_chain
from backoffice.cases import CaseAction, CaseError, CaseReview, apply_case_review, assess_case
from backoffice.connectors import build_connectors
from backoffice.intake import ingest_bytes, scan_inbox
from backoffice.outbox import DrainPolicy, OutboxMessage, OutboxStatus, run_drain
from backoffice.sandbox.runner import run_sandbox
from backoffice.sandbox.seed import load_people
from backoffice.store import Case, CaseDocument, CaseStatus, Document, Status
from validators.lookup import InMemoryLookup
from validators.rules._samples import BACK, CLAIM, FRONT, LOOKUP

TODAY = datetime.date(2025, 4, 1)
ROOT = Path(__file__).resolve().parents[1]
FAST = DrainPolicy(batch_size=32, max_workers=2, lease_seconds=5, max_attempts=6,
                   backoff_base=0.01, backoff_max=0.05)

def _case(engine, case_id: int) -> Case:
    with Session(engine) as session:
        return session.get(Case, case_id)


def _messages(engine, case_id: int) -> list[OutboxMessage]:
    with Session(engine) as session:
        ids = session.exec(select(CaseDocument.document_id).where(
            CaseDocument.case_id == case_id)).all()
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.document_id.in_(ids))).all())


def test_a_consistent_case_goes_straight_through_with_one_posting_per_target(engine, tmp_path):
    case_id = make_case(engine, "C-ok")
    decision = assess_case(engine, case_id, settings(tmp_path), lookup=LOOKUP, today=TODAY)
    assert decision.status is CaseStatus.APPROVED, decision.reasons
    assert all(c.passed for c in decision.checks if not c.details.get("skipped")), \
        [c for c in decision.checks if not c.passed]
    messages = _messages(engine, case_id)
    assert sorted(m.target for m in messages) == ["claims", "core", "payments"]
    ref = cases.case_ref(_case(engine, case_id))
    assert {m.idempotency_key for m in messages} == {
        f"{ref}:claims:v1", f"{ref}:payments:v1", f"{ref}:core:v1"}
    claim = next(m.payload for m in messages if m.target == "claims")
    assert [len(i["items"]) for i in claim["fields"]["invoices"]] == [2, 1]
    assert claim["fields"]["invoices_total"] == "12345.67"
    core = next(m.payload for m in messages if m.target == "core")
    assert core["fields"]["valid_until"] == "长期" and core["fields"]["valid_from"] == "2016-03-01"
    with Session(engine) as session:
        statuses = {d.status for d in session.exec(select(Document))}
        assert statuses == {Status.APPROVED}
        assert verify_audit_chain(session) == []
    # Assessed again (a second worker, a second run): nothing more is written.
    assert assess_case(engine, case_id, settings(tmp_path), lookup=LOOKUP, today=TODAY) is None
    assert len(_messages(engine, case_id)) == 3


MISMATCHES = [
    ("claim_form", {"insured_name": "王芳"}, "case.insured_matches_id_card"),
    ("claim_form", {"insured_id_number": "110105194912310021"}, "case.insured_matches_id_card"),
    ("claim_form", {"claimant_name": "王芳", "account_name": "王芳"}, "case.claimant_matches_id_card"),
    ("medical_invoice", {"patient_name": "王芳"}, "case.invoice_patient_is_insured"),
    ("medical_invoice", {"invoice_date": "2025-03-01"}, "case.invoice_dates"),
    ("medical_invoice", {"invoice_date": "2026-02-01"}, "case.invoice_dates"),
    ("claim_form", {"claim_amount": "20000.00",
                    "claim_amount_in_words": "贰万元整"}, "case.invoices_cover_claim"),
    ("bank_card", {"card_number": "6222020200112233453"}, "case.bank_card_matches_account"),
    ("bank_card", {"card_holder": "王芳"}, "case.bank_card_matches_account"),
    ("id_card_front", {"birth_date": "1990-01-01"}, "case.id_card_validity"),
]


@pytest.mark.parametrize("doc_type,change,rule", MISMATCHES,
                         ids=[f"{r}-{'-'.join(c)}" for _, c, r in MISMATCHES])
def test_each_mismatch_sends_the_case_to_review_naming_the_check(engine, tmp_path, doc_type,
                                                                  change, rule):
    pages = {**PAGES, doc_type: {**PAGES[doc_type], **change}}
    case_id = make_case(engine, f"C-{rule}", pages)
    decision = assess_case(engine, case_id, settings(tmp_path), lookup=LOOKUP, today=TODAY)
    assert decision.status is CaseStatus.IN_REVIEW
    assert any(r.startswith(rule) for r in decision.reasons), decision.reasons
    assert _messages(engine, case_id) == []
    stored = _case(engine, case_id)
    assert stored.status is CaseStatus.IN_REVIEW and rule in stored.reason
    for value in change.values():
        if len(value) <= 4 or value.isdigit():  # personal values never in the reason
            assert value not in stored.reason or value.startswith("20")


def test_a_missing_document_waits_then_goes_to_review_saying_what_is_missing(engine, tmp_path):
    pages = {k: v for k, v in PAGES.items() if k != "id_card_back"}
    case_id = make_case(engine, "C-missing", pages)
    s = settings(tmp_path, case_wait_seconds=600)
    decision = assess_case(engine, case_id, s, lookup=LOOKUP, today=TODAY)
    assert decision.status is CaseStatus.OPEN
    assert decision.reasons == ["waiting for ID card back"]
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=601)
    decision = assess_case(engine, case_id, s, lookup=LOOKUP, today=TODAY, now=later)
    assert decision.status is CaseStatus.IN_REVIEW
    assert "case.documents_complete (error): missing: ID card back" in decision.reasons


def test_without_the_downstream_systems_a_case_fails_closed(engine, tmp_path):
    case_id = make_case(engine, "C-nolookup")
    s = settings(tmp_path)
    assert s.core_url is None
    decision = assess_case(engine, case_id, s, today=TODAY)
    assert decision.status is CaseStatus.IN_REVIEW
    assert any(r.startswith("cross-system checks could not run") for r in decision.reasons)
    assert any(r.startswith("case.invoice_dates: could not be checked") for r in decision.reasons)


def test_a_system_that_does_not_answer_fails_closed(engine, tmp_path):
    class Down(InMemoryLookup):
        def find_policy(self, policy_number):
            raise ConnectionError("refused")

    case_id = make_case(engine, "C-down")
    decision = assess_case(engine, case_id, settings(tmp_path), lookup=Down(), today=TODAY)
    assert decision.status is CaseStatus.IN_REVIEW
    assert any("did not answer" in r for r in decision.reasons), decision.reasons


def test_an_invoice_used_in_an_earlier_case_is_a_possible_duplicate(engine, tmp_path):
    first = make_case(engine, "C-first")
    assert assess_case(engine, first, settings(tmp_path), lookup=LOOKUP,
                       today=TODAY).status is CaseStatus.APPROVED
    pages = {**PAGES, "claim_form": {**CLAIM, "accident_date": "2025-03-09"}}
    second = make_case(engine, "C-second", pages)
    decision = assess_case(engine, second, settings(tmp_path), lookup=LOOKUP, today=TODAY)
    assert decision.status is CaseStatus.IN_REVIEW
    assert any(r.startswith("case.not_claimed_before") and "invoice 1, 2" in r
               for r in decision.reasons), decision.reasons


def test_the_same_accident_claimed_twice_in_the_store_is_found(engine, tmp_path):
    first = make_case(engine, "C-a")
    assess_case(engine, first, settings(tmp_path), lookup=LOOKUP, today=TODAY)
    other = {**INVOICE_1, "invoice_number": "0099"}
    pages = {**PAGES, "medical_invoice": other, "medical_invoice#2": {
        **INVOICE_2, "invoice_number": "0098"}}
    second = make_case(engine, "C-b", pages)
    decision = assess_case(engine, second, settings(tmp_path), lookup=LOOKUP, today=TODAY)
    assert any("same policy and accident date are claimed in 1 other case" in r
               for r in decision.reasons), decision.reasons


def test_a_page_in_doubt_sends_the_case_to_review_and_the_reviewer_decides_it_whole(
        engine, tmp_path):
    case_id = make_case(engine, "C-review", {
        **PAGES, "bank_card": {**CARD, "card_number": "6222020200112233453"}},
        bank_card={"route": "in_review", "reason": "card_number: confidence 0.61 below 0.85"})
    s = settings(tmp_path)
    decision = assess_case(engine, case_id, s, lookup=LOOKUP, today=TODAY)
    assert decision.status is CaseStatus.IN_REVIEW
    assert any("card_number: confidence 0.61" in r for r in decision.reasons)
    with Session(engine) as session:
        card = session.exec(select(Document).where(Document.doc_type == "bank_card")).one()
    # Approving without fixing the card: the check still fails, the case stays in review.
    out = apply_case_review(engine, "C-review", CaseReview(
        decision=CaseAction.APPROVE, reviewer="clerk-7"), s, lookup=LOOKUP, today=TODAY)
    assert out["status"] == "in_review" and "case.bank_card_matches_account" in out["failing"]
    # A card number is a four-eyes field: the correction waits for a second reviewer...
    out = apply_case_review(engine, "C-review", CaseReview(
        decision=CaseAction.APPROVE, reviewer="clerk-7",
        corrections={f"{card.id}.card_number": CLAIM["account_number"]}), s,
        lookup=LOOKUP, today=TODAY)
    assert out["status"] == "in_review" and out["pending"], out
    assert f"backoffice case confirm {case_id}" in out["message"]
    # ...who confirms it: applied as the maker decided, audited with both.
    from backoffice.reviewers import open_identity

    out = cases.decide_case_proposal(engine, "C-review", open_identity("checker-2"),
                                     confirm=True, settings=s, lookup=LOOKUP, today=TODAY)
    assert out["status"] == "approved" and out["outbox_messages"] == 3, out
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).where(
            AuditEvent.action.in_(["review.corrected", "case.review_approved"]))).all()
        assert {e.actor for e in events} == {"clerk-7"}
        assert all(e.data["checker"] == "checker-2" for e in events)
        assert session.get(Case, case_id).decided_by == "clerk-7"
    with pytest.raises(CaseError, match="not in_review"):
        apply_case_review(engine, "C-review", CaseReview(
            decision=CaseAction.REJECT, reviewer="x", reject_reason="late"), s)


def test_a_rejected_case_rejects_its_pages_with_the_reason(engine, tmp_path):
    case_id = make_case(engine, "C-rej", {k: v for k, v in PAGES.items() if k != "bank_card"})
    s = settings(tmp_path, case_wait_seconds=0)
    assert assess_case(engine, case_id, s, lookup=LOOKUP,
                       today=TODAY).status is CaseStatus.IN_REVIEW
    with pytest.raises(CaseError, match="needs a reason"):
        apply_case_review(engine, "C-rej", CaseReview(decision=CaseAction.REJECT,
                                                      reviewer="clerk"), s)
    out = apply_case_review(engine, "C-rej", CaseReview(
        decision=CaseAction.REJECT, reviewer="clerk", reject_reason="no bank card sent"), s)
    assert out["status"] == "rejected"
    with Session(engine) as session:
        docs = session.exec(select(Document)).all()
        assert {d.status for d in docs} == {Status.REJECTED}
        assert all("no bank card sent" in d.reason for d in docs)


def test_pages_arriving_in_separate_runs_join_one_case(engine, tmp_path):
    s = settings(tmp_path, case_wait_seconds=3600)
    inbox = tmp_path / "inbox"
    (inbox / "cases" / "C-77").mkdir(parents=True)
    (inbox / "cases" / "C-77" / "form.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"1" * 50)
    (inbox / "loose.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"3" * 50)
    with Session(engine) as session:
        first = scan_inbox(session, inbox, documents_dir=tmp_path / "docs",
                           quarantine_dir=tmp_path / "q", max_bytes=10**6)
    # The second page comes a run later, by the CLI's case id (or the same folder).
    with Session(engine) as session:
        second = ingest_bytes(session, b"\x89PNG\r\n\x1a\n" + b"2" * 50, "card.png",
                              documents_dir=tmp_path / "docs", quarantine_dir=tmp_path / "q",
                              max_bytes=10**6, case="C-77")
        session.commit()
    with Session(engine) as session:
        [case] = session.exec(select(Case)).all()
        members = session.exec(select(CaseDocument.document_id).where(
            CaseDocument.case_id == case.id)).all()
        # original_name is encrypted at rest: compared in Python, not in SQL.
        [loose] = [d for d in session.exec(select(Document)) if d.original_name == "loose.png"]
    assert case.ref == "C-77" and len(first.received) == 2
    assert sorted(members) == sorted([d for d in first.received if d != loose.id]
                                     + second.received)
    # Its pages are not read yet: the case is open, waiting for them.
    decision = assess_case(engine, case.id, s, lookup=LOOKUP, today=TODAY)
    assert decision.status is CaseStatus.OPEN and "to be read" in decision.reasons[0]


def test_a_case_folder_only_under_cases(tmp_path):
    assert cases.case_from_path("cases/C-1/a.jpg") == "C-1"
    assert cases.case_from_path("cases/C-1/sub/a.jpg") == "C-1"
    assert cases.case_from_path("idcards/clean/a.jpg") is None
    assert cases.case_from_path("cases/a.jpg") is None


def test_case_kpis_count_straight_through_and_reasons(engine, tmp_path):
    ok = make_case(engine, "K-ok")
    assess_case(engine, ok, settings(tmp_path), lookup=LOOKUP, today=TODAY)
    bad = make_case(engine, "K-bad", {
        **PAGES, "claim_form": {**CLAIM, "accident_date": "2025-03-08"},
        "medical_invoice": {**INVOICE_1, "invoice_number": "77"},
        "medical_invoice#2": {**INVOICE_2, "invoice_number": "78"},
        "bank_card": {**CARD, "card_holder": "王芳"}})
    assess_case(engine, bad, settings(tmp_path), lookup=LOOKUP, today=TODAY)
    kpis = cases.case_kpis(engine)
    assert kpis["cases"] == 2 and kpis["straight_through"] == 1
    assert kpis["straight_through_rate"] == 0.5
    assert kpis["review_reasons"] == {"case.bank_card_matches_account": 1}


# --- posting through the real sandbox, under faults ----------------------------------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with run_sandbox(tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


def test_a_case_posts_exactly_once_through_faults(engine, sandbox, tmp_path):
    person = load_people(ROOT / "fixtures" / "idcards" / "truth.jsonl")[1]
    claim = {**CLAIM, "policy_number": person.policy_number, "insured_name": person.name,
             "insured_id_number": person.id_number, "claimant_name": person.name,
             "account_name": person.name}
    front = {**FRONT, "name": person.name, "id_number": person.id_number,
             "birth_date": person.birth_date}
    backs = [json.loads(line) for line in
             (ROOT / "fixtures" / "idcards" / "truth.jsonl").read_text("utf-8").splitlines()]
    back = next(b["fields"] for b in backs if b["doc_type"] == "id_card_back"
                and b["fields"] and b["id"].endswith(f"_{person.index:04d}"))
    pages = {**PAGES, "claim_form": claim, "id_card_front": front, "id_card_back": back,
             "medical_invoice": {**INVOICE_1, "patient_name": person.name},
             "medical_invoice#2": {**INVOICE_2, "patient_name": person.name},
             "bank_card": {**CARD, "card_holder": person.name}}
    case_id = make_case(engine, "C-post", pages)
    decision = assess_case(engine, case_id, settings(tmp_path), lookup=sandbox.lookup(),
                           today=TODAY)
    assert decision.status is CaseStatus.APPROVED, decision.reasons
    sandbox.set_faults({"error_rate": 0.3, "drop_rate": 0.3, "seed": 5})
    try:
        config = sandbox.targets_config(timeout_seconds=2)
        for _ in range(5):  # drains that stop half way and start again
            with build_connectors(config) as connectors:
                run_drain(engine, connectors, policy=FAST)
            if all(m.status is OutboxStatus.POSTED for m in _messages(engine, case_id)):
                break
    finally:
        sandbox.set_faults(None)
    messages = _messages(engine, case_id)
    assert {m.status for m in messages} == {OutboxStatus.POSTED}
    ref = cases.case_ref(_case(engine, case_id))
    with sqlite3.connect(sandbox.claims.db_path) as conn:
        claims = conn.execute("SELECT claim_id FROM claim WHERE ext_ref = ?", (ref,)).fetchall()
        assert len(claims) == 1
        invoices = conn.execute("SELECT count(*) FROM claim_invoice WHERE claim_id = ?",
                                claims[0]).fetchone()[0]
        assert invoices == 2
    with sqlite3.connect(sandbox.core.db_path) as conn:
        kyc = conn.execute("SELECT valid_from, valid_until FROM kyc_record WHERE source_ref = ?",
                           (ref,)).fetchall()
    assert kyc == [(back["valid_from"], back["valid_until"])]
    stored = _case(engine, case_id)
    assert stored.status is CaseStatus.POSTED and stored.posted_at is not None
    with Session(engine) as session:
        docs = session.exec(select(Document)).all()
        assert {d.status for d in docs} == {Status.POSTED}


# --- an ID card's two sides paired in a batch ------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("s2026_0001_front.jpg", ("s2026_0001", "front")),
    ("clean/S2026_0001-BACK.png", ("clean/s2026_0001", "back")),
    ("张三正面.jpg", ("张三", "front")),
    ("张三 国徽面.jpg", ("张三", "back")),
    ("front.jpg", None),            # no stem: nothing says which card
    ("frontier_0001.jpg", None),    # the side must end the name
    ("0001.jpg", None),
])
def test_a_file_name_says_which_side_of_an_id_card_it_is(name, expected):
    assert cases.id_side(name) == expected


def test_only_one_front_and_one_back_of_a_stem_pair():
    names = ["a/0001_front.jpg", "a/0001_back.jpg", "a/0002_front.jpg", "b/0001_back.jpg",
             "c/7_front.jpg", "c/7-front.png", "c/7_back.jpg", "claim_0003.jpg"]
    assert cases.id_side_pairs(names) == [("a/0001_front.jpg", "a/0001_back.jpg")]


def test_loose_id_sides_of_one_scan_become_an_identity_case(engine, tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "cases" / "C-9").mkdir(parents=True)
    for i, name in enumerate(["0001_front.png", "0001_back.png", "0002_front.png",
                              "cases/C-9/x_front.png", "cases/C-9/x_back.png"]):
        (inbox / name).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * 50)
    with Session(engine) as session:
        scan_inbox(session, inbox, documents_dir=tmp_path / "docs",
                   quarantine_dir=tmp_path / "q", max_bytes=10**6, batch="b1")
    with Session(engine) as session:
        by_kind = {c.kind: c for c in session.exec(select(Case)).all()}
        assert sorted(by_kind) == ["claim", "identity"]
        pair = session.exec(select(CaseDocument.document_id).where(
            CaseDocument.case_id == by_kind["identity"].id)).all()
        names = sorted(session.get(Document, d).original_name for d in pair)
    assert names == ["0001_back.png", "0001_front.png"]
    # Named by its documents (front, back): never by the file names, which may name the holder.
    assert sorted(by_kind["identity"].ref.split("-")[1:]) == sorted(str(d) for d in pair)


def test_an_identity_case_posts_the_front_with_the_backs_validity(engine, tmp_path):
    case_id = make_case(engine, "id-1-2", {"id_card_front": FRONT, "id_card_back": BACK},
                        kind="identity")
    # No downstream lookup: an identity is checked by its pages' own rules, not the case's.
    decision = assess_case(engine, case_id, settings(tmp_path), lookup=None, today=TODAY)
    assert decision.status is CaseStatus.APPROVED, decision.reasons
    assert {c.rule for c in decision.checks} == {"case.documents_complete",
                                                 "case.id_card_validity"}
    [core] = _messages(engine, case_id)
    assert core.target == "core"
    assert core.payload["fields"]["valid_from"] == BACK["valid_from"]
    assert core.payload["fields"]["valid_until"] == "长期"
    assert core.payload["fields"]["id_number"] == FRONT["id_number"]


def test_an_identity_whose_validity_does_not_fit_the_age_goes_to_review(engine, tmp_path):
    # Born 1949: a card issued at 66 is valid for life (长期), not ten years.
    ten_years = {**BACK, "valid_until": "2026-03-01"}
    case_id = make_case(engine, "id-3-4", {"id_card_front": FRONT, "id_card_back": ten_years},
                        kind="identity")
    decision = assess_case(engine, case_id, settings(tmp_path), lookup=None, today=TODAY)
    assert decision.status is CaseStatus.IN_REVIEW
    assert any(r.startswith("case.id_card_validity") for r in decision.reasons), decision.reasons
    assert _messages(engine, case_id) == []


def test_an_identity_without_its_back_waits_then_says_what_is_missing(engine, tmp_path):
    case_id = make_case(engine, "id-5-6", {"id_card_front": FRONT}, kind="identity")
    decision = assess_case(engine, case_id, settings(tmp_path, case_wait_seconds=0),
                           lookup=None, today=TODAY)
    assert decision.status is CaseStatus.IN_REVIEW
    assert "missing: ID card back" in decision.reasons[0] or any(
        "missing: ID card back" in r for r in decision.reasons), decision.reasons


def test_a_pdf_of_an_id_cards_two_sides_is_an_identity_case():
    from domain.models import DocType
    assert cases.bundle_kind([DocType.ID_CARD_FRONT, DocType.ID_CARD_BACK]) == "identity"
    assert cases.bundle_kind([DocType.ID_CARD_FRONT, DocType.ID_CARD_FRONT]) is None
    assert cases.bundle_kind([DocType.CLAIM_FORM, DocType.ID_CARD_FRONT]) == "claim"
    assert cases.bundle_kind([DocType.CLAIM_FORM, DocType.CLAIM_FORM]) is None
