"""`process-inbox`: take an inbox folder's files through intake, OCR, rules and routing."""

from __future__ import annotations

from pathlib import Path

from backoffice.settings import apply_environment

apply_environment()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402

from backoffice import reports  # noqa: E402
from backoffice.intake import scan_inbox  # noqa: E402
from backoffice.leases import recover_expired  # noqa: E402
from backoffice.processing import process_document  # noqa: E402
from backoffice.runtime import get_db, get_recognizer  # noqa: E402
from backoffice.settings import get_settings  # noqa: E402


@task(name="intake", retries=2, retry_delay_seconds=2)
def intake(inbox: str, batch: str | None) -> dict:
    settings = get_settings()
    from sqlmodel import Session

    with Session(get_db(settings)) as session:
        result = scan_inbox(session, Path(inbox), documents_dir=settings.documents_dir,
                            quarantine_dir=settings.quarantine_dir,
                            max_bytes=settings.max_file_bytes, batch=batch)
    # Documents of a run that died mid-way come back once their lease has expired.
    recovered = recover_expired(get_db(settings), max_attempts=settings.processing_max_attempts)
    return {"received": recovered.requeued + result.received,
            "duplicates": len(result.duplicates),
            "quarantined": recovered.quarantined + result.quarantined}


@task(name="process-document", task_run_name="process-document-{doc_id}")
def process(doc_id: int) -> list[int]:
    settings = get_settings()
    return process_document(get_db(settings), doc_id, get_recognizer(settings), settings)


@flow(name="process-inbox")
def process_inbox(inbox: str = "var/inbox", batch: str | None = None) -> dict:
    """Take every file of `inbox` through intake, OCR, validation and routing."""
    logger = get_run_logger()
    taken = intake(inbox, batch)
    logger.info("intake: %d received, %d duplicates, %d quarantined",
                len(taken["received"]), taken["duplicates"], len(taken["quarantined"]))
    processed: list[int] = []
    for doc_id in taken["received"]:
        processed.extend(process(doc_id))
    ids = processed + taken["quarantined"]
    settings = get_settings()
    rows = reports.document_rows(get_db(settings), ids)
    create_table_artifact(key="process-inbox-documents", table=rows,
                          description="Documents of this run (personal data masked)")
    summary = reports.status_counts(rows)
    create_markdown_artifact(key="process-inbox-summary",
                             markdown=reports.summary_markdown(summary, taken["duplicates"]),
                             description="Run summary")
    logger.info("statuses: %s", summary)
    return {"documents": len(ids), "duplicates": taken["duplicates"], "statuses": summary}
