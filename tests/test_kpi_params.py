"""KPIs on a constructed store, the review logic without Prefect, the annotated picture,
and the typed flow parameters (bounds and enums refused as the server refuses them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlmodel import Session

from backoffice.store import CheckRow, Document, Status, make_engine, set_status

BASE = ["processing", "processed"]


def _doc(session: Session, age_seconds: float, path: list[str], actor: str = "system",
         checks: dict[str, bool | None] | None = None) -> Document:
    doc = Document(sha256=uuid.uuid4().hex * 2, original_name="x.jpg", stored_path="/nowhere",
                   doc_type="id_card_front",
                   created_at=datetime.now(UTC) - timedelta(seconds=age_seconds))
    session.add(doc)
    session.flush()
    for status in path:
        set_status(session, doc, Status(status),
                   actor=actor if status in ("approved", "rejected") else "system")
    for rule, ok in (checks or {}).items():
        session.add(CheckRow(document_id=doc.id, rule=rule, severity="error",
                             passed=bool(ok), details={"skipped": True} if ok is None else {}))
    return doc


def test_kpis_on_a_constructed_store(tmp_path):
    from backoffice.kpi import compute_kpis, kpi_markdown

    engine = make_engine(f"sqlite:///{tmp_path / 'kpi.db'}")
    with Session(engine) as s:
        _doc(s, 100, [*BASE, "approved", "posted"], checks={"a": True, "b": None})
        _doc(s, 1000, [*BASE, "in_review", "approved"], "alice", checks={"a": False})
        _doc(s, 500, [*BASE, "in_review", "rejected"], "bob", checks={"a": False, "b": True})
        _doc(s, 50, [*BASE, "in_review"])
        _doc(s, 10, ["quarantined"])
        s.commit()
    report = compute_kpis(engine)
    assert report.documents == 5
    assert report.by_status == {"approved": 1, "in_review": 1, "posted": 1, "quarantined": 1,
                                "rejected": 1}
    assert (report.decided, report.straight_through, report.manual_touch) == (3, 1, 2)
    assert report.straight_through_rate == pytest.approx(1 / 3)
    assert report.manual_touch_rate == pytest.approx(2 / 3)
    # handling times ≈ 100, 500, 1000 s: median 500, p95 by interpolation 950
    assert report.handling_seconds_median == pytest.approx(500, abs=2)
    assert report.handling_seconds_p95 == pytest.approx(950, abs=2)
    assert report.reviewed_handling_seconds_median == pytest.approx(750, abs=2)
    assert report.post_seconds_median == pytest.approx(100, abs=2)
    rates = {r.rule: (r.failed, r.checked) for r in report.rules}
    assert rates == {"a": (2, 3), "b": (0, 1)}  # a skipped check is not counted
    md = kpi_markdown(report)
    assert "33.3%" in md and "66.7%" in md and "`a` | 2 | 3 | 66.7%" in md
    since = compute_kpis(engine, since=datetime.now(UTC) - timedelta(seconds=200))
    assert since.documents == 3 and since.decided == 1


def test_apply_review_rules_without_prefect(tmp_path, monkeypatch):
    """Reject needs a reason; an override approves a failing document and audits it."""
    from pydantic import ValidationError

    from backoffice.audit import AuditEvent, verify_audit_chain
    from backoffice.review import ReviewDecision, ReviewError, apply_review
    from backoffice.store import FieldValue

    with pytest.raises(ValidationError, match="needs a reason"):
        ReviewDecision(decision="reject", reviewer="x")
    with pytest.raises(ValidationError):
        ReviewDecision(decision="approve", reviewer="  ")
    with pytest.raises(ValidationError):
        ReviewDecision(decision="maybe", reviewer="x")
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    import backoffice.outbox

    backoffice.outbox.ensure_schema(engine)
    with Session(engine) as s:
        doc = _doc(s, 10, [*BASE, "in_review"])
        s.add(FieldValue(document_id=doc.id, name="id_number", value="422823194201039461"))
        s.commit()
        doc_id = doc.id
    still = apply_review(engine, doc_id, ReviewDecision(decision="approve", reviewer="eve"))
    assert still.status == "in_review" and "id_number.checksum" in still.failed_checks
    with pytest.raises(ReviewError, match="no field"):
        apply_review(engine, doc_id, ReviewDecision(decision="correct", reviewer="eve",
                                                    corrections={"nope": "1"}))
    # An override needs a second reviewer (four eyes): kept, not applied...
    alone = apply_review(engine, doc_id, ReviewDecision(decision="approve", reviewer="eve",
                                                        override=True))
    assert alone.status == "in_review" and alone.pending
    assert "an override needs a second reviewer" in alone.message
    # ...until another reviewer confirms it.
    from backoffice.review import decide_proposal
    from backoffice.reviewers import open_identity

    done = decide_proposal(engine, doc_id, open_identity("frank"), confirm=True)
    assert done.status == "approved" and "override" in done.message
    with pytest.raises(ReviewError, match="not in_review"):
        apply_review(engine, doc_id, ReviewDecision(decision="approve", reviewer="eve"))
    with Session(engine) as s:
        from sqlmodel import select

        approved = s.exec(select(AuditEvent).where(AuditEvent.action == "review.approved")).one()
        assert approved.actor == "eve" and approved.data["override"] is True
        assert approved.data["checker"] == "frank"
        assert not verify_audit_chain(s)


def test_annotated_picture_boxes_and_redaction():
    from ocr.annotate import FieldBoxes, annotate

    page = np.full((400, 800, 3), 255, np.uint8)
    boxes = {"name": FieldBoxes([[(50, 50), (300, 50), (300, 90), (50, 90)]]),
             "id_number": FieldBoxes([[(50, 200), (500, 200), (500, 240), (50, 240)]]),
             "sex": FieldBoxes([[(50, 300), (120, 300), (120, 340), (50, 340)]])}
    out = annotate(page, boxes, highlight={"name"}, redact={"id_number", "name"})
    assert out[220, 300].tolist() == [0, 0, 0]  # personal, not under review: blacked out
    assert out[70, 150].tolist() == [255, 255, 255]  # highlighted field stays readable
    assert tuple(out[50, 150]) == (40, 40, 220)  # its box is red
    assert tuple(out[300, 80]) == (60, 160, 60)  # a fine field's box is green
    big = annotate(np.zeros((3000, 2000, 3), np.uint8), {}, max_side=1000)
    assert big.shape[:2] == (1000, 667)


def test_flow_parameters_are_typed_and_bounded():
    from prefect.exceptions import ParameterTypeError
    from prefect.utilities.schema_tools import validate

    from flows.deployments import build_deployments
    from flows.process_inbox import process_inbox

    with pytest.raises(ParameterTypeError):
        process_inbox.validate_parameters({"confidence_threshold": 1.5})
    with pytest.raises(ParameterTypeError):
        process_inbox.validate_parameters({"doc_types": ["passport"]})
    with pytest.raises(ParameterTypeError):
        process_inbox.validate_parameters({"max_documents": 0})
    ok = process_inbox.validate_parameters({"doc_types": ["claim_form"], "dry_run": True,
                                            "confidence_threshold": 0.9})
    assert ok["doc_types"] == ["claim_form"]
    deployments = {d.name: d for d in build_deployments()}
    assert set(deployments) == {"process-inbox", "drain-outbox", "reconcile-masters",
                                "kpi-report", "review-document", "review-case",
                                "audit-checkpoint", "apply-retention"}
    schema = deployments["process-inbox"]._parameter_openapi_schema.model_dump()
    props = schema["properties"]
    assert all(p.get("description") for p in props.values())
    assert props["confidence_threshold"]["anyOf"][0]["maximum"] == 1.0
    assert schema["definitions"]["DocType"]["enum"] == ["id_card_front", "id_card_back",
                                                        "id_card_temporary", "claim_form",
                                                        "medical_invoice", "bank_card",
                                                        "claim_case", "unknown"]
    # The same JSON-schema check the server runs when a run is created from the UI form.
    with pytest.raises(Exception, match="1.5"):
        validate({"confidence_threshold": 1.5}, schema, raise_on_error=True)
    for name in ("reconcile-masters", "kpi-report"):
        (sched,) = deployments[name].schedules
        assert sched.schedule.timezone == "Asia/Shanghai" and sched.schedule.cron
    assert not deployments["review-document"].schedules
    assert not deployments["review-case"].schedules
