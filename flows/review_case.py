"""`review-case`: pause for a person's decision on a whole claim case, then apply it.

Started by ``process-inbox`` for each case that went to review (``run_deployment(
"review-case/review-case", parameters={"case": ...}, timeout=0)``), when that deployment
is served. The run publishes a ``review-image`` markdown artifact per page that has
something to check (the page with its fields boxed, as ``review-document`` does) and a
``review-case`` artifact (every page's fields, masked, and the failed cross-document
checks), then pauses with one typed form for the case: ``decision`` (approve | reject),
``reviewer``, ``reject_reason``, ``override``, and one field per value to check, named
``d<document>__<field>`` and prefilled in clear. Corrections are audited and every check
runs again (:func:`backoffice.cases.apply_case_review`); a check still failing pauses the
run again with the problem at the top, unless ``override`` is ticked.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from backoffice.settings import apply_environment

apply_environment()

import pydantic
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from backoffice.cases import (
    CaseAction,
    CaseError,
    CaseReview,
    CaseReviewItem,
    apply_case_review,
    case_description_markdown,
    case_review_item,
    form_key_to_field,
)
from backoffice.runtime import get_db
from backoffice.settings import get_settings
from flows.review_document import publish_page


class CaseDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


def case_form(item: CaseReviewItem, problem: str | None = None,
              picture_urls: dict[int, str] | None = None) -> type[RunInput]:
    """The typed form for one case, prefilled, with the explanation as description."""
    fields: dict = {
        "decision": (CaseDecision, pydantic.Field(
            title="Decision", description="approve the whole case (your edits below are "
            "kept) or reject it (give a reason)")),
        "reviewer": (str, pydantic.Field(
            title="Reviewer", min_length=1, max_length=100,
            description="Your name or staff id; recorded in the audit trail")),
        "reject_reason": (str | None, pydantic.Field(
            None, title="Reject reason", max_length=500,
            description="Required when the decision is reject")),
        "override": (bool, pydantic.Field(
            False, title="Override failing checks",
            description="Approve even if a check still fails (audited)")),
    }
    for key, (value, hint) in item.form_fields().items():
        fields[key] = (str | None, pydantic.Field(value, title=key, description=hint,
                                                  max_length=500))
    model = pydantic.create_model(f"ReviewCase{item.id}", __base__=RunInput, **fields)
    text = case_description_markdown(item, picture_urls)
    if problem:
        text = f"> **Please fix:** {problem}\n\n" + text
    model._description = text
    return model


def to_review(answer: RunInput, item: CaseReviewItem) -> CaseReview:
    """The form's answer as a case decision (changed values only)."""
    data = answer.model_dump()
    editable = item.form_fields()
    return CaseReview(
        decision=CaseAction(data["decision"]), reviewer=data["reviewer"] or "",
        reject_reason=data.get("reject_reason"), override=bool(data.get("override")),
        corrections={form_key_to_field(k): data.get(k) for k in editable
                     if data.get(k) != editable[k][0]})


def _publish(item: CaseReviewItem) -> dict[int, str]:
    """A boxed picture per page with something to check, and the case's explanation."""
    urls = {page.document_id: publish_page(page) for page in item.pages
            if page.to_correct or page.reasons or page.risks}
    create_markdown_artifact(key="review-case", markdown=case_description_markdown(item, urls),
                             description=f"Case {item.id}: why it needs a person (personal "
                             "data masked except fields to check)")
    return urls


@flow(name="review-case", flow_run_name="review-case-{case}", log_prints=False)
def review_case(
    case: Annotated[str, pydantic.Field(min_length=1, max_length=200)],
    timeout_seconds: Annotated[int | None, pydantic.Field(ge=1, le=30 * 24 * 3600)] = None,
) -> dict:
    """Ask a person to approve (with corrections) or reject a whole claim case.

    Args:
        case: The case, by number (as process-inbox starts it) or id; it must be
            in_review.
        timeout_seconds: How long to wait for a decision; empty means
            BACKOFFICE_REVIEW_TIMEOUT_SECONDS. After that the case stays in review
            (backoffice case decide).
    """
    logger = get_run_logger()
    settings = get_settings()
    engine = get_db(settings)
    timeout = timeout_seconds or settings.review_timeout_seconds
    item = case_review_item(engine, case, settings)
    if item.status != "in_review":
        logger.info("case %s is %s: nothing to review", item.id, item.status)
        return {"case": item.id, "status": item.status, "reviewed": False}
    urls = _publish(item)
    problem: str | None = None
    for round_no in range(1, 21):
        form = case_form(item, problem, urls)
        try:
            answer = pause_flow_run(wait_for_input=form, timeout=timeout, poll_interval=2,
                                    key=f"review-{round_no}")
        except FlowPauseTimeout:
            logger.warning("no decision on case %s within %s s: it stays in review "
                           "(backoffice case decide)", item.id, timeout)
            raise
        try:
            review = to_review(answer, item)
            outcome = apply_case_review(engine, case, review, settings)
        except pydantic.ValidationError as exc:
            problem = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            continue
        except CaseError as exc:
            if case_review_item(engine, case, settings).status != "in_review":
                return {"case": item.id, "reviewed": False, "message": str(exc)}
            problem = str(exc)
            continue
        logger.info("case %s: %s by %s", item.id, outcome["status"], review.reviewer)
        if outcome["status"] != "in_review":
            return {**outcome, "case": item.id, "reviewed": True, "reviewer": review.reviewer}
        item = case_review_item(engine, case, settings)
        problem = outcome.get("message")
    return {"case": item.id, "status": "in_review", "reviewed": False,
            "message": "too many rounds; left in review"}
