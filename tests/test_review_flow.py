"""Human review through Prefect: a review-document run pauses for a typed form, is resumed
from another thread with `resume_flow_run(run_id, run_input=...)`, and the decision lands
in the store (approval + outbox, rejection, audited and re-validated corrections); a
review left too long stays queued and the CLI lists it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest
from conftest import FIXTURES, ROOT
from sqlmodel import Session, select

pytestmark = [pytest.mark.integration]

FRONT = {"name": "白煜洁", "sex": "女", "ethnicity": "汉", "birth_date": "1942-01-03",
         "address": "湖北省恩施土家族苗族自治州巴东县高桥镇文三南路103号",
         "id_number": "42282319420103946X"}
BAD_ID = "422823194201039461"  # wrong check digit


def _engine():
    from backoffice.runtime import get_db
    from backoffice.settings import get_settings

    return get_db(get_settings())


def make_review_doc(values: dict[str, str | None], *, reason: str,
                    confidences: dict[str, float] | None = None, engine=None) -> int:
    """An ID-card front in review, as processing would leave it (rules really run)."""
    from backoffice.assess import validate_fields
    from backoffice.store import CheckRow, Document, FieldValue, Status, set_status
    from domain.models import DocType

    image = FIXTURES / "idcards" / "clean" / "s2026_0000_front.jpg"
    with Session(engine or _engine()) as session:
        doc = Document(sha256=uuid.uuid4().hex * 2, original_name="front.jpg",
                       stored_path=str(image), batch="review-test", doc_type="id_card_front",
                       status=Status.PROCESSED)
        session.add(doc)
        session.flush()
        for i, (name, value) in enumerate(values.items()):
            y = 60 + 70 * i
            session.add(FieldValue(document_id=doc.id, name=name, value=value,
                                   confidence=(confidences or {}).get(name, 0.99),
                                   boxes=[[[300, y], [700, y], [700, y + 40], [300, y + 40]]]))
        for c in validate_fields(DocType.ID_CARD_FRONT, values):
            session.add(CheckRow(document_id=doc.id, rule=c.rule, severity=c.severity.value,
                                 passed=c.passed, message=c.message, fields=c.fields,
                                 details=c.model_dump(mode="json")["details"]))
        set_status(session, doc, Status.IN_REVIEW, reason=reason)
        session.commit()
        return doc.id


def _doc(doc_id: int):
    from backoffice.store import Document

    with Session(_engine()) as session:
        return session.get(Document, doc_id)


async def _paused_run(name: str, timeout: float = 90.0):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[name])))
            for run in runs:
                if run.state and run.state.is_paused():
                    return run
            await asyncio.sleep(0.5)
    raise AssertionError(f"no paused run {name}")


async def _run_input(run, suffix: str):
    from prefect.client.orchestration import get_client

    keyset = run.state.state_details.run_input_keyset
    async with get_client() as client:
        return await client.read_flow_run_input(run.id, keyset[suffix])


def wait_paused(name: str, previous_key: str | None = None):
    """The paused run of that name (a new pause when ``previous_key`` is given)."""
    deadline = time.monotonic() + 90
    while True:
        run = asyncio.run(_paused_run(name))
        if previous_key is None or run.state.state_details.pause_key != previous_key:
            return run
        if time.monotonic() > deadline:
            raise AssertionError("the run did not pause again")
        time.sleep(0.5)


def start_review(doc_id: int, **kwargs):
    from flows.review_document import review_document

    box: dict = {}

    def _run():
        box["state"] = review_document(document_id=doc_id, return_state=True, **kwargs)

    thread = threading.Thread(target=_run, daemon=True)
    thread.start()
    return thread, box


def resume(run, **answer) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(run.id, run_input=answer)


async def _artifacts(run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))


async def _inputs(run_id):
    """Every run input Prefect still holds for a flow run."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.filter_flow_run_input(run_id, key_prefix="", limit=100,
                                                  exclude_keys=set())


def review_artifacts(run_id) -> dict:
    """A review run's artifacts by kind: ``review-image-12-1a2b3c4d`` -> ``review-image``
    (each run's keys are its own)."""
    return {a.key.rsplit("-", 2)[0]: a for a in asyncio.run(_artifacts(run_id))
            if (a.key or "").startswith("review-")}


def assert_nothing_left(run_id) -> None:
    """The review run deleted what it put into Prefect: inputs and review artifacts."""
    assert asyncio.run(_inputs(run_id)) == []
    assert review_artifacts(run_id) == {}


def test_review_form_prefilled_masked_and_approval_reaches_outbox(prefect_harness):
    from backoffice.outbox import OutboxMessage
    from backoffice.store import Status

    doc_id = make_review_doc(FRONT, reason="name: confidence 0.62 below 0.85",
                             confidences={"name": 0.62})
    thread, box = start_review(doc_id)
    run = wait_paused(f"review-document-{doc_id}")
    schema = json.loads(asyncio.run(_run_input(run, "schema")))
    props = schema["properties"]
    assert props["decision"]["$ref"] or props["decision"].get("enum")
    assert {"decision", "reviewer", "reviewer_key", "reject_reason", "override"} <= set(props)
    assert props["reviewer_key"]["format"] == "password" and not props["reviewer_key"]["default"]
    assert props["name"]["default"] == FRONT["name"]  # needs correction: in clear
    assert "id_number" not in props and "address" not in props  # personal, fine: not in form
    assert props["birth_date"]["default"] == FRONT["birth_date"]
    assert "reviewer" in schema["required"]
    description = json.loads(asyncio.run(_run_input(run, "description")))
    assert "confidence 0.62" in description
    assert FRONT["id_number"] not in description and "422*" in description
    arts = review_artifacts(run.id)
    assert arts["review-image"].key == f"review-image-{doc_id}-{run.id.hex[:8]}"
    assert arts["review-image"].data.count("data:image/jpeg;base64,") == 1
    assert f"/artifacts/artifact/{arts['review-image'].id}" in description
    assert FRONT["id_number"] not in arts["review-document"].data

    resume(run, decision="approve", reviewer="alice", name=FRONT["name"])
    thread.join(60)
    assert box["state"].is_completed(), box["state"]
    assert box["state"].result()["status"] == "approved"
    assert _doc(doc_id).status is Status.APPROVED
    with Session(_engine()) as session:
        messages = session.exec(select(OutboxMessage).where(
            OutboxMessage.document_id == doc_id)).all()
    assert [m.target for m in messages] == ["core"]
    assert messages[0].payload["fields"]["id_number"] == FRONT["id_number"]
    assert_nothing_left(run.id)


def test_reject_needs_a_reason_then_rejects(prefect_harness):
    from backoffice.audit import AuditEvent
    from backoffice.store import Status

    doc_id = make_review_doc(FRONT, reason="image quality: blur (12.0)")
    thread, box = start_review(doc_id)
    run = wait_paused(f"review-document-{doc_id}")
    resume(run, decision="reject", reviewer="bob")  # no reason: refused, asked again
    run2 = wait_paused(f"review-document-{doc_id}", previous_key=run.state.state_details.pause_key)
    description = json.loads(asyncio.run(_run_input(run2, "description")))
    assert "a rejection needs a reason" in description
    assert _doc(doc_id).status is Status.IN_REVIEW
    resume(run2, decision="reject", reviewer="bob", reject_reason="not the customer's card")
    thread.join(60)
    assert box["state"].is_completed(), box["state"]
    doc = _doc(doc_id)
    assert doc.status is Status.REJECTED and "not the customer's card" in doc.reason
    with Session(_engine()) as session:
        ev = session.exec(select(AuditEvent).where(AuditEvent.document_id == doc_id,
                                                   AuditEvent.action == "review.rejected")).one()
    assert ev.actor == "bob"


def test_correction_is_revalidated_and_audited(prefect_harness):
    """An ID number is a four-eyes field: a correction that still fails is returned to the
    reviewer at once (nothing saved); one that passes waits for a checker, who confirms it
    in the same run; it is applied and audited with both."""
    from backoffice.audit import AuditEvent
    from backoffice.store import FieldValue, Status

    doc_id = make_review_doc({**FRONT, "id_number": BAD_ID},
                             reason="id_number.checksum (error): check digit is wrong")
    thread, box = start_review(doc_id)
    run = wait_paused(f"review-document-{doc_id}")
    schema = json.loads(asyncio.run(_run_input(run, "schema")))
    assert schema["properties"]["id_number"]["default"] == BAD_ID  # to correct: in clear
    # A correction that still fails keeps the document in review; nothing is saved.
    resume(run, decision="correct", reviewer="carol", id_number="422823194201039462")
    run2 = wait_paused(f"review-document-{doc_id}", previous_key=run.state.state_details.pause_key)
    assert "id_number.checksum" in _doc(doc_id).reason
    description = json.loads(asyncio.run(_run_input(run2, "description")))
    assert "still failing" in description and "nothing was saved" in description
    resume(run2, decision="correct", reviewer="carol", id_number=FRONT["id_number"])
    # The checker form: what carol proposes, the new value in clear.
    run3 = wait_paused(f"review-document-{doc_id}",
                       previous_key=run2.state.state_details.pause_key)
    schema = json.loads(asyncio.run(_run_input(run3, "schema")))
    assert {"decision", "checker", "checker_key", "refuse_reason"} <= set(schema["properties"])
    description = json.loads(asyncio.run(_run_input(run3, "description")))
    assert "carol" in description and FRONT["id_number"] in description
    assert _doc(doc_id).status is Status.IN_REVIEW  # not applied by one person
    resume(run3, decision="confirm", checker="carol")  # the maker cannot check herself
    run4 = wait_paused(f"review-document-{doc_id}",
                       previous_key=run3.state.state_details.pause_key)
    description = json.loads(asyncio.run(_run_input(run4, "description")))
    assert "must be a different reviewer" in description
    resume(run4, decision="confirm", checker="dan")
    thread.join(60)
    assert box["state"].is_completed(), box["state"]
    assert _doc(doc_id).status is Status.APPROVED
    with Session(_engine()) as session:
        f = session.exec(select(FieldValue).where(FieldValue.document_id == doc_id,
                                                  FieldValue.name == "id_number")).one()
        assert (f.value, f.reviewed_value) == (BAD_ID, FRONT["id_number"])
        events = session.exec(select(AuditEvent).where(
            AuditEvent.document_id == doc_id, AuditEvent.action == "review.corrected")
            .order_by(AuditEvent.id)).all()
        confirmed = session.exec(select(AuditEvent).where(
            AuditEvent.document_id == doc_id, AuditEvent.action == "review.confirmed")).one()
    assert [(e.actor, e.data["before"], e.data["after"], e.data["checker"]) for e in events] \
        == [("carol", BAD_ID, FRONT["id_number"], "dan")]
    assert (confirmed.actor, confirmed.data["maker"]) == ("dan", "carol")
    assert_nothing_left(run.id)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI as a terminal operator runs it: another process, the same data folder."""
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=dict(os.environ), cwd=ROOT,
                          timeout=120, check=False)


def test_review_timeout_leaves_document_queued_and_cli_lists_it(prefect_harness):
    from backoffice.audit import AuditEvent
    from backoffice.store import Status

    doc_id = make_review_doc(FRONT, reason="name: confidence 0.50 below 0.85",
                             confidences={"name": 0.5})
    thread, box = start_review(doc_id, timeout_seconds=3)
    thread.join(90)
    state = box["state"]
    assert state.is_failed() and "never resumed" in (state.message or "")
    assert _doc(doc_id).status is Status.IN_REVIEW
    assert_nothing_left(state.state_details.flow_run_id)  # a timed-out run leaves nothing
    with Session(_engine()) as session:
        assert session.exec(select(AuditEvent).where(
            AuditEvent.document_id == doc_id, AuditEvent.action == "review.timed_out")).one()
    out = _cli("review", "list", "--json", "--batch", "review-test")
    assert out.returncode == 0, out.stderr
    listed = {json.loads(line)["document_id"]: json.loads(line) for line in
              out.stdout.splitlines()}
    assert doc_id in listed and listed[doc_id]["to_correct"] == ["name"]
    assert FRONT["id_number"] not in out.stdout and FRONT["name"] not in out.stdout
    # The operator can give it a fresh review run in the UI...
    from prefect.client.orchestration import get_client

    from flows.review_document import requeue_reviews, review_document

    deployment_id = review_document.to_deployment(name="review-document").apply()

    async def _read(run_id):
        async with get_client() as client:
            return await client.read_flow_run(run_id)

    async def _delete():
        async with get_client() as client:
            await client.delete_deployment(deployment_id)

    try:
        started = requeue_reviews([doc_id])
        fresh = asyncio.run(_read(started[doc_id]))
        assert fresh.parameters == {"document_id": doc_id} and fresh.state.is_scheduled()
    finally:
        asyncio.run(_delete())
    # ...or decide it at a terminal; the decision is audited with the actor.
    shown = _cli("review", "show", str(doc_id))
    assert shown.returncode == 0 and FRONT["id_number"] not in shown.stdout
    decided = _cli("review", "decide", str(doc_id), "-d", "approve", "-r", "dave")
    assert decided.returncode == 0, decided.stderr + decided.stdout
    assert _doc(doc_id).status is Status.APPROVED


@pytest.mark.ocr
@pytest.mark.slow
def test_process_inbox_routes_to_review_and_starts_review_runs(prefect_harness, tmp_path):
    """Real OCR on one card: dry run stores nothing; a strict threshold routes it to review;
    with the review-document deployment registered, process-inbox starts its review run."""
    from prefect.client.orchestration import get_client

    from backoffice.store import Document, Status
    from flows.process_inbox import process_inbox
    from flows.review_document import review_document

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(FIXTURES / "idcards" / "clean" / "s2026_0005_front.jpg", inbox / "card.jpg")

    dry = process_inbox(inbox=str(inbox), batch="dry", dry_run=True)
    assert dry["dry_run"] and dry["documents"] == 1
    assert (inbox / "card.jpg").exists()
    with Session(_engine()) as session:
        assert not session.exec(select(Document).where(Document.batch == "dry")).all()

    deployment_id = review_document.to_deployment(name="review-document").apply()

    async def _run(run_id):
        async with get_client() as client:
            return await client.read_flow_run(run_id)

    async def _delete():  # deleting the deployment deletes its (never started) runs too
        async with get_client() as client:
            await client.delete_deployment(deployment_id)

    try:
        result = process_inbox(inbox=str(inbox), batch="strict", confidence_threshold=1.0)
        assert result["statuses"] == {"in_review": 1}
        with Session(_engine()) as session:
            doc = session.exec(select(Document).where(Document.batch == "strict")).one()
        assert doc.status is Status.IN_REVIEW
        assert list(result["review_runs"]) == [str(doc.id)]
        review_run = asyncio.run(_run(result["review_runs"][str(doc.id)]))
        assert review_run.parameters == {"document_id": doc.id}
        assert review_run.deployment_id == deployment_id
    finally:
        asyncio.run(_delete())


def test_kpi_report_flow_publishes_artifacts(prefect_harness):
    from flows.kpi_report import kpi_report

    make_review_doc(FRONT, reason="name: confidence 0.50 below 0.85")
    result = kpi_report(days=1)
    assert result["by_status"]["in_review"] >= 1
    assert 0.0 <= result["straight_through_rate"] <= 1.0
    arts = asyncio.run(_artifacts_by_key(["kpi-report", "kpi-rule-errors"]))
    assert {a.key for a in arts} == {"kpi-report", "kpi-rule-errors"}
    text = " ".join(str(a.data) for a in arts)
    assert "straight-through rate" in text and FRONT["id_number"] not in text


async def _artifacts_by_key(keys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=keys)))


def test_cli_batch_run_follows_its_progress(prefect_harness, tmp_path):
    """`backoffice process` runs the flow in a thread and follows the batch in the store."""
    from backoffice.batch import batch_progress
    from cli.ops import run_with_progress

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "not-an-image.jpg").write_bytes(b"plain text, not a picture " * 4)
    result = run_with_progress(inbox, "progress-test")
    assert result["batch"] == "progress-test" and result["statuses"] == {"quarantined": 1}
    state = batch_progress(_engine(), "progress-test")
    assert (state.total, state.settled, state.by_status) == (1, 1, {"quarantined": 1})
