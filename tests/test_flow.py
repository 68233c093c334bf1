"""The process-inbox flow driven through a real (temporary) Prefect server."""

from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES
from sqlmodel import Session, select

pytestmark = [pytest.mark.ocr, pytest.mark.integration, pytest.mark.slow]


def test_process_inbox_flow_end_to_end(prefect_harness, tmp_path, idcard_truth):
    from prefect.client.orchestration import get_client

    from backoffice.audit import AuditEvent
    from backoffice.runtime import get_db
    from backoffice.settings import get_settings
    from backoffice.store import Document, FieldValue, Status
    from flows.process_inbox import process_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for rel in ("clean/s2026_0001_front.jpg", "clean/s2026_0001_back.jpg",
                "photo/s2026_0002_front.jpg"):
        shutil.copy(FIXTURES / "idcards" / rel, inbox / rel.replace("/", "_"))
    (inbox / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    shutil.copy(FIXTURES / "idcards" / "clean" / "s2026_0001_front.jpg", inbox / "zz-again.jpg")

    state = process_inbox(inbox=str(inbox), batch="flowtest", return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result["documents"] == 4 and result["duplicates"] == 1

    with Session(get_db(get_settings())) as session:
        docs = session.exec(select(Document).where(Document.batch == "flowtest")).all()
        by_name = {d.original_name: d for d in docs}
        assert by_name["broken.png"].status is Status.QUARANTINED
        assert by_name["broken.png"].reason
        front = by_name["clean_s2026_0001_front.jpg"]
        assert front.doc_type == "id_card_front"
        assert front.status in (Status.APPROVED, Status.IN_REVIEW)
        fields = {f.name: f.value for f in session.exec(
            select(FieldValue).where(FieldValue.document_id == front.id))}
        truth = idcard_truth["clean/s2026_0001_front.jpg"]["fields"]
        assert fields["id_number"] == truth["id_number"]  # full value lives in the store
        assert session.exec(select(AuditEvent).where(AuditEvent.document_id == front.id)).all()
    assert not any(inbox.iterdir())  # every file was taken

    async def _artifacts():
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            ArtifactFilterKey,
        )

        # This run's artifact: other tests' runs on the same harness have one too.
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["process-inbox-documents"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))

    import asyncio

    artifacts = asyncio.run(_artifacts())
    assert artifacts
    text = str(artifacts[0].data)
    assert truth["id_number"] not in text and truth["name"] not in text
    assert truth["id_number"][:3] + "*" in text
