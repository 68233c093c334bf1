"""`review-document`: pause for a person's decision on one document, then apply it.

Started by ``process-inbox`` (``run_deployment("review-document/review-document",
parameters={"document_id": ...}, timeout=0)``) for each document routed to review,
when that deployment is served (``backoffice serve``). The run publishes two artifacts
and pauses with a typed form (``pause_flow_run(wait_for_input=...)``):

- ``review-image`` (markdown): the page with every field boxed (OpenCV): fields to check
  in red and labelled, other personal data blacked out. The picture is embedded as a
  ``data:image/jpeg;base64`` URI in a markdown image, which the Prefect UI renders inline
  on the run's Artifacts tab (an *image* artifact would also print the whole URI as its
  "Image URL" text, and a link to a file would need a second web server reachable from the
  reviewer's browser).
- ``review-document`` (markdown): the same explanation as the form's description.

The form (a ``RunInput`` built per document, prefilled with the OCR values) has these
fields: ``decision`` (``approve`` | ``correct`` | ``reject``), ``reviewer`` (required, goes
into the audit trail), ``reject_reason`` (required when rejecting), ``override`` (approve
although a rule still fails with an error), and one text field per editable document field,
named as the field (``name``, ``id_number``, ``claim_amount`` …). Personal fields that need
no correction are not in the form (they would be shown in clear); they stay masked in the
description.

An invalid answer (reject without a reason, ``correct`` without a change) or corrected
values that still fail a rule pause the run again with the problem stated at the top of
the description. A run left longer than ``BACKOFFICE_REVIEW_TIMEOUT_SECONDS`` fails with
"paused and never resumed"; the document stays ``in_review`` for ``backoffice review``.
"""

from __future__ import annotations

import base64
from typing import Annotated

from backoffice.settings import apply_environment

apply_environment()

import pydantic
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from backoffice.review import (
    Decision,
    ReviewDecision,
    ReviewError,
    ReviewItem,
    apply_review,
    description_markdown,
    form_fields,
    record_timeout,
    review_image,
    review_item,
)
from backoffice.runtime import get_db
from backoffice.settings import get_settings

#: The form's fixed fields; every other field of the form is a document field.
CONTROL_FIELDS = ("decision", "reviewer", "reject_reason", "override")


def review_form(item: ReviewItem, problem: str | None = None,
                picture_url: str | None = None) -> type[RunInput]:
    """The typed form for one document, prefilled, with the explanation as description."""
    fields: dict = {
        "decision": (Decision, pydantic.Field(
            title="Decision", description="approve (your edits below are kept), correct "
            "(at least one edit), or reject (give a reason)")),
        "reviewer": (str, pydantic.Field(
            title="Reviewer", min_length=1, max_length=100,
            description="Your name or staff id; recorded in the audit trail")),
        "reject_reason": (str | None, pydantic.Field(
            None, title="Reject reason", max_length=500,
            description="Required when the decision is reject")),
        "override": (bool, pydantic.Field(
            False, title="Override failing rules",
            description="Approve even if a rule still fails with an error (audited)")),
    }
    for name, (value, hint) in form_fields(item).items():
        fields[name] = (str | None, pydantic.Field(value, title=name, description=hint,
                                                   max_length=500))
    model = pydantic.create_model(f"ReviewDocument{item.document_id}", __base__=RunInput,
                                  **fields)
    text = description_markdown(item, picture_url)
    if problem:
        text = f"> **Please fix:** {problem}\n\n" + text
    model._description = text
    return model


def to_decision(answer: RunInput, item: ReviewItem) -> ReviewDecision:
    """The form's answer as a decision; raises ``pydantic.ValidationError`` if inconsistent."""
    data = answer.model_dump()
    editable = form_fields(item)
    return ReviewDecision(
        decision=data["decision"], reviewer=data["reviewer"] or "",
        reject_reason=data.get("reject_reason"), override=bool(data.get("override")),
        corrections={k: data.get(k) for k in editable if data.get(k) != editable[k][0]})


def publish_page(item: ReviewItem) -> str:
    """Publish the explanation and the boxed picture; return the picture's UI path."""
    jpeg = review_image(item, get_settings())
    if jpeg is None:
        markdown = "The original could not be decoded for the picture."
    else:
        uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        markdown = (f"### Document {item.document_id}: fields read\n\n"
                    "Red: fields to check (named). Green: fields read confidently. "
                    f"Black: personal data not under review.\n\n![document {item.document_id}]"
                    f"({uri})")
    picture = create_markdown_artifact(key="review-image", markdown=markdown,
                                       description=f"Document {item.document_id} with its "
                                       "fields boxed")
    # A path on the UI's own origin: the link works wherever the UI is served from.
    url = f"/artifacts/artifact/{picture}"
    create_markdown_artifact(key="review-document", markdown=description_markdown(item, url),
                             description=f"Document {item.document_id}: why it needs a person "
                             "(personal data masked except fields to check)")
    return url


@flow(name="review-document", flow_run_name="review-document-{document_id}",
      log_prints=False)
def review_document(
    document_id: Annotated[int, pydantic.Field(ge=1)],
    timeout_seconds: Annotated[int | None, pydantic.Field(ge=1, le=30 * 24 * 3600)] = None,
) -> dict:
    """Ask a person to approve, correct or reject one document, then apply the decision.

    Args:
        document_id: The document to review (it must be in_review).
        timeout_seconds: How long to wait for a decision; empty means
            BACKOFFICE_REVIEW_TIMEOUT_SECONDS. After that the document stays queued.
    """
    logger = get_run_logger()
    settings = get_settings()
    engine = get_db(settings)
    timeout = timeout_seconds or settings.review_timeout_seconds
    item = review_item(engine, document_id, settings)
    if item.status != "in_review":
        logger.info("document %s is %s: nothing to review", document_id, item.status)
        return {"document_id": document_id, "status": item.status, "reviewed": False}
    picture_url = publish_page(item)
    problem: str | None = None
    for round_no in range(1, 21):
        form = review_form(item, problem, picture_url)
        try:
            answer = pause_flow_run(wait_for_input=form, timeout=timeout, poll_interval=2,
                                    key=f"review-{round_no}")
        except FlowPauseTimeout:
            record_timeout(engine, document_id, timeout)
            logger.warning("no decision on document %s within %s s: it stays in review "
                           "(backoffice review list)", document_id, timeout)
            raise
        try:
            decision = to_decision(answer, item)
            outcome = apply_review(engine, document_id, decision)
        except pydantic.ValidationError as exc:
            problem = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            logger.info("answer refused: %s", problem)
            continue
        except ReviewError as exc:
            if review_item(engine, document_id, settings).status != "in_review":
                logger.info("document %s: %s", document_id, exc)
                return {"document_id": document_id, "reviewed": False, "message": str(exc)}
            problem = str(exc)
            continue
        logger.info("document %s: %s by %s (%d outbox messages)", document_id,
                    outcome.status, decision.reviewer, outcome.outbox_messages)
        if outcome.status != "in_review":
            return {**outcome.model_dump(), "reviewed": True, "reviewer": decision.reviewer}
        item = review_item(engine, document_id, settings)
        problem = outcome.message
    return {"document_id": document_id, "status": "in_review", "reviewed": False,
            "message": "too many rounds; left in review"}


def requeue_reviews(doc_ids: list[int], deployment: str = "review-document/review-document"
                    ) -> dict[int, str]:
    """Start a fresh review run for each document still in review; earlier runs of it that
    are not finished are cancelled first (a run paused before ``backoffice serve``
    restarted has no process behind it any more, and a timed-out one cannot resume)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterName,
    )
    from prefect.deployments import run_deployment
    from prefect.states import Cancelled

    engine = get_db(get_settings())
    waiting = [d for d in doc_ids if review_item(engine, d).status == "in_review"]
    started: dict[int, str] = {}
    with get_client(sync_client=True) as client:
        for doc_id in waiting:
            old = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(
                    any_=[f"review-document-{doc_id}"])),
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(
                    any_=[deployment.split("/", 1)[1]])))
            for run in old:
                if run.state is not None and not run.state.is_final():
                    client.set_flow_run_state(run.id, Cancelled(
                        message="superseded by a new review run"), force=True)
            run = run_deployment(deployment, parameters={"document_id": doc_id}, timeout=0,
                                 as_subflow=False, tags=["review"])
            started[doc_id] = str(run.id)
    return started
