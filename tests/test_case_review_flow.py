"""A claim case reviewed as a whole through Prefect: a review-case run pauses with one typed
form for the case (the values to check in clear, the rest masked), is resumed from another
thread, and the decision lands in the store (correction audited, case approved and posted
to the outbox once; a rejection needs a reason)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import pytest
from case_support import CARD, PAGES, make_case
from sqlmodel import Session, select
from test_review_flow import (
    _artifacts,
    _engine,
    _run_input,
    assert_nothing_left,
    resume,
    review_artifacts,
    wait_paused,
)

from validators.rules._samples import CLAIM, LOOKUP, STANDARD_ID

pytestmark = [pytest.mark.integration]
WRONG_CARD = "6222020200112233453"


def _case_in_review(**pages) -> tuple[int, dict[str, int]]:
    import datetime

    from backoffice.cases import assess_case
    from backoffice.settings import get_settings
    from backoffice.store import CaseDocument, Document

    engine = _engine()
    case_id = make_case(engine, f"R-{uuid.uuid4().hex[:8]}", {**PAGES, **pages})
    decision = assess_case(engine, case_id, get_settings(), lookup=LOOKUP,
                           today=datetime.date(2025, 4, 1))
    assert decision.status == "in_review", decision
    with Session(engine) as session:
        ids = session.exec(select(CaseDocument.document_id).where(
            CaseDocument.case_id == case_id)).all()
        docs = {d.doc_type: d.id for d in session.exec(select(Document).where(
            Document.id.in_(ids)))}
    return case_id, docs


def _start(case_id: int):
    from flows.review_case import review_case

    box: dict = {}

    def _run():
        box["state"] = review_case(case=str(case_id), return_state=True)

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    return thread, box


def test_the_case_form_shows_what_to_check_and_an_approval_posts_the_case(prefect_harness):
    from backoffice.audit import AuditEvent
    from backoffice.outbox import OutboxMessage
    from backoffice.store import Case, CaseStatus

    case_id, docs = _case_in_review(bank_card={**CARD, "card_number": WRONG_CARD})
    thread, box = _start(case_id)
    run = wait_paused(f"review-case-{case_id}")
    schema = json.loads(asyncio.run(_run_input(run, "schema")))
    props = schema["properties"]
    assert {"decision", "reviewer", "reviewer_key", "reject_reason", "override"} <= set(props)
    card_key = f"d{docs['bank_card']}__card_number"
    assert props[card_key]["default"] == WRONG_CARD  # read by the failing check: in clear
    assert not any(k.endswith("__insured_id_number") for k in props)  # fine: not in the form
    description = json.loads(asyncio.run(_run_input(run, "description")))
    assert "case.bank_card_matches_account" in description
    assert STANDARD_ID not in description and CLAIM["phone"] not in description
    arts = review_artifacts(run.id)
    assert "case.bank_card_matches_account" in arts["review-case"].data
    assert STANDARD_ID not in arts["review-case"].data

    resume(run, decision="approve", reviewer="dora", **{card_key: CLAIM["account_number"]})
    # A card number is a four-eyes field: a checker confirms it in the same run.
    run2 = wait_paused(f"review-case-{case_id}", previous_key=run.state.state_details.pause_key)
    description = json.loads(asyncio.run(_run_input(run2, "description")))
    assert "dora" in description and CLAIM["account_number"] in description
    assert STANDARD_ID not in description
    resume(run2, decision="confirm", checker="ezra")
    thread.join(60)
    assert box["state"].is_completed(), box["state"]
    assert box["state"].result()["status"] == "approved"
    with Session(_engine()) as session:
        case = session.get(Case, case_id)
        assert case.status is CaseStatus.APPROVED and case.decided_by == "dora"
        messages = session.exec(select(OutboxMessage).where(
            OutboxMessage.document_id.in_(list(docs.values())))).all()
        assert sorted(m.target for m in messages) == ["claims", "core", "payments"]
        corrected = session.exec(select(AuditEvent).where(
            AuditEvent.action == "review.corrected",
            AuditEvent.document_id == docs["bank_card"])).one()
        assert corrected.actor == "dora" and corrected.data["case"] == case_id
        assert corrected.data["checker"] == "ezra"
    assert_nothing_left(run.id)


def test_a_case_rejection_needs_a_reason(prefect_harness):
    from backoffice.store import Case, CaseStatus

    case_id, _ = _case_in_review(bank_card={**CARD, "card_holder": "王芳"})
    thread, box = _start(case_id)
    run = wait_paused(f"review-case-{case_id}")
    resume(run, decision="reject", reviewer="erin")
    run2 = wait_paused(f"review-case-{case_id}", previous_key=run.state.state_details.pause_key)
    description = json.loads(asyncio.run(_run_input(run2, "description")))
    assert "a rejection needs a reason" in description
    resume(run2, decision="reject", reviewer="erin", reject_reason="card of another person")
    thread.join(60)
    assert box["state"].is_completed(), box["state"]
    with Session(_engine()) as session:
        case = session.get(Case, case_id)
    assert case.status is CaseStatus.REJECTED and "another person" in case.reason


def test_the_kpi_report_has_the_cases(prefect_harness):
    from flows.kpi_report import kpi_report

    _case_in_review(bank_card={**CARD, "card_number": WRONG_CARD})
    state = kpi_report(days=1, return_state=True)
    cases = state.result()["cases"]
    assert cases["cases"] >= 1 and cases["by_status"].get("in_review", 0) >= 1
    assert cases["review_reasons"].get("case.bank_card_matches_account", 0) >= 1
    arts = {a.key: a for a in asyncio.run(_artifacts(state.state_details.flow_run_id))}
    art = arts["kpi-cases"]
    assert "## Claim cases" in art.data and "case.bank_card_matches_account" in art.data
    assert CLAIM["insured_name"] not in art.data and WRONG_CARD not in art.data
