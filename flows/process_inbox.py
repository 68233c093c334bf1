"""`process-inbox`: take an inbox folder's files through intake, OCR, rules and routing.

Parameters are typed (pydantic ``Field`` bounds, descriptions and an enum), so the Prefect
UI renders a form and the server refuses a bad value when the run is created. Documents
routed to review each get a ``review-document`` run when that deployment is served;
otherwise they stay queued ``in_review`` (``backoffice review list``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from backoffice.settings import apply_environment

apply_environment()

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from backoffice import reports
from backoffice.batch import dry_run_rows, received_ids
from backoffice.blobs import storage_for
from backoffice.intake import scan_inbox
from backoffice.leases import recover_expired
from backoffice.log_masking import mask_exceptions
from backoffice.runtime import get_db, get_recognizer
from backoffice.settings import get_settings
from domain.models import DocType
from flows.dispatch import run_on_readers
from flows.read_document import process, run_settings

REVIEW_DEPLOYMENT = "review-document/review-document"
REVIEW_CASE_DEPLOYMENT = "review-case/review-case"


@task(name="intake", retries=2, retry_delay_seconds=2)
@mask_exceptions
def intake(inbox: str, batch: str | None) -> dict:
    settings = get_settings()
    from sqlmodel import Session

    with Session(get_db(settings)) as session:
        result = scan_inbox(session, Path(inbox), documents_dir=storage_for(settings),
                            quarantine_dir=settings.quarantine_dir,
                            max_bytes=settings.max_file_bytes, batch=batch)
    # Documents of a run that died mid-way come back once their lease has expired.
    recovered = recover_expired(get_db(settings), max_attempts=settings.processing_max_attempts)
    return {"received": recovered.requeued + result.received,
            "duplicates": len(result.duplicates),
            "quarantined": recovered.quarantined + result.quarantined}


@task(name="request-reviews")
@mask_exceptions
def request_reviews(doc_ids: list[int], cases: list[str] | None = None) -> dict[str, str]:
    """Start one review-document run per document and one review-case run per claim case,
    if those deployments are served."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    logger = get_run_logger()
    wanted = [(REVIEW_DEPLOYMENT, "document_id", d, str(d)) for d in doc_ids]
    wanted += [(REVIEW_CASE_DEPLOYMENT, "case", c, f"case {c}") for c in cases or []]
    served: dict[str, bool] = {}
    with get_client(sync_client=True) as client:
        for name in {w[0] for w in wanted}:
            try:
                client.read_deployment_by_name(name)
                served[name] = True
            except ObjectNotFound:
                served[name] = False
    runs = {}
    for deployment, param, value, label in wanted:
        if not served[deployment]:
            continue
        run = run_deployment(deployment, parameters={param: value}, timeout=0,
                             as_subflow=False, tags=["review"])
        runs[label] = str(run.id)
    waiting = [w[3] for w in wanted if not served[w[0]]]
    if waiting:
        logger.info("%d waiting in the review queue (no review deployment served; "
                    "backoffice review list, backoffice case list)", len(waiting))
    if runs:
        logger.info("review runs started: %d", len(runs))
    return runs


@task(name="settle-cases")
@mask_exceptions
def settle_cases(doc_ids: list[int]) -> list[dict]:
    """Assess the open claim cases again (pages read in this run or earlier ones, waits
    that ran out) and list the cases of this run's documents and those assessed."""
    from backoffice.cases import assess_open_cases, cases_of_documents, list_cases

    settings = get_settings()
    engine = get_db(settings)
    touched = assess_open_cases(engine, settings)
    return list_cases(engine, ids=set(touched) | cases_of_documents(engine, doc_ids))


@flow(name="process-inbox")
def process_inbox(
    inbox: str | None = None,
    batch: Annotated[str | None, Field(max_length=100)] = None,
    doc_types: list[DocType] | None = None,
    confidence_threshold: Annotated[float | None, Field(ge=0.0, le=1.0)] = None,
    dry_run: bool = False,
    max_documents: Annotated[int | None, Field(ge=1, le=10000)] = None,
    request_review: bool = True,
    max_wait_seconds: Annotated[float | None, Field(ge=1)] = None,
) -> dict:
    """Take every file of `inbox` through intake, OCR, validation and routing.

    Args:
        inbox: Folder to take documents from; empty means BACKOFFICE_INBOX_DIR (the data
            folder's inbox).
        batch: A label stored with each document of this run.
        doc_types: Route only these document types; documents of other types go back to
            'received' for a later run. Empty means all types.
        confidence_threshold: A field read below this confidence (0 to 1) goes to review;
            empty means BACKOFFICE_REVIEW_MIN_FIELD_CONFIDENCE.
        dry_run: Read and validate only; store, move and post nothing.
        max_documents: Process at most this many documents in this run (1 to 10000); the
            rest stay 'received' for the next run.
        request_review: Start a review-document run for each document routed to review.
        max_wait_seconds: With readers (BACKOFFICE_DISPATCH=readers): stop waiting for
            them after this long; documents not yet read stay 'received' for the next
            run. Empty: wait until every document is done.
    """
    logger = get_run_logger()
    settings = get_settings()
    inbox = inbox or str(settings.inbox)
    types = sorted({DocType(t).value for t in doc_types}) if doc_types else None
    if dry_run:
        rows = dry_run_rows(Path(inbox), get_recognizer(settings),
                            run_settings(confidence_threshold),
                            doc_types=set(types) if types else None, limit=max_documents)
        create_table_artifact(key="process-inbox-documents", table=rows,
                              description="DRY RUN: what a run would decide (nothing stored)")
        counts = reports.status_counts([{"status": r["would_be"]} for r in rows])
        create_markdown_artifact(
            key="process-inbox-summary",
            markdown="**Dry run**: nothing was stored, moved or posted.\n\n"
            + reports.summary_markdown(counts), description="Run summary (dry run)")
        logger.info("dry run: %s", counts)
        return {"documents": len(rows), "duplicates": 0, "statuses": counts, "dry_run": True}
    taken = intake(inbox, batch)
    logger.info("intake: %d received, %d duplicates, %d quarantined",
                len(taken["received"]), taken["duplicates"], len(taken["quarantined"]))
    todo = received_ids(get_db(settings), taken["received"], max_documents)
    processed: list[int] = []
    handed = None
    if settings.dispatch == "readers":
        handed = run_on_readers(todo, settings, confidence_threshold=confidence_threshold,
                                doc_types=types, max_wait_seconds=max_wait_seconds)
        processed = handed.done
    else:
        for doc_id in todo:
            processed.extend(process(doc_id, confidence_threshold, types))
    ids = processed + taken["quarantined"]
    rows = reports.document_rows(get_db(settings), ids)
    create_table_artifact(key="process-inbox-documents", table=rows,
                          description="Documents of this run (personal data masked)")
    summary = reports.status_counts(rows)
    create_markdown_artifact(key="process-inbox-summary",
                             markdown=reports.summary_markdown(summary, taken["duplicates"],
                                                               rows),
                             description="Run summary")
    logger.info("statuses: %s", summary)
    case_rows = settle_cases(ids)
    if case_rows:
        create_table_artifact(key="process-inbox-cases", table=case_rows,
                              description="Claim cases of this run: status and why "
                              "(personal data masked)")
    review_ids = [r["document"] for r in rows if r["status"] == "in_review"]
    # By number: a case id (a folder name) may name its customer.
    review_cases = [str(r["id"]) for r in case_rows if r["status"] == "in_review"]
    reviews = request_reviews(review_ids, review_cases) if request_review else {}
    result = {"documents": len(ids), "duplicates": taken["duplicates"], "statuses": summary,
              "cases": {r["case"]: r["status"] for r in case_rows},
              "review_runs": {str(k): v for k, v in reviews.items()}}
    if handed is not None:
        result["readers"] = {"handed_out": handed.handed_out,
                             "handed_out_again": handed.handed_out_again,
                             "crashed_runs": handed.crashed_runs, "waiting": handed.waiting}
    return result
