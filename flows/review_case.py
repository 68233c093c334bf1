"""`review-case`: pause for a person's decision on a whole claim case, then apply it.

Started by ``process-inbox`` for each case that went to review (``run_deployment(
"review-case/review-case", parameters={"case": ...}, timeout=0)``), when that deployment
is served. The run publishes a ``review-image-<document>-<run>`` markdown artifact per page
that has something to check (the page with its fields boxed, as ``review-document`` does)
and a ``review-case-<case>-<run>`` artifact (every page's fields, masked, and the failed
cross-document checks), then pauses with one typed form for the case: ``decision`` (approve | reject),
``reviewer`` and ``reviewer_key`` (the reviewer's id and personal key), ``reject_reason``,
``override``, and one field per value to check, named ``d<document>__<field>`` and
prefilled in clear. Corrections are audited and every check runs again
(:func:`backoffice.cases.apply_case_review`); a check still failing pauses the run again
with the problem at the top, unless ``override`` is ticked.

An override, or a change of a four-eyes field (``BACKOFFICE_FOUR_EYES``: ID, account and
card numbers by default), waits for a second reviewer: the run pauses with the checker form
of ``review-document`` (confirm | refuse, checker id and key), describing what the maker
proposed; ``backoffice case confirm <case>`` answers it at a terminal. As in
``review-document``, each round's inputs are deleted from Prefect as soon as they are read,
and the run's artifacts when it ends.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from backoffice.settings import apply_environment

apply_environment()

import pydantic
from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput

from backoffice.cases import (
    CaseAction,
    CaseError,
    CaseReview,
    CaseReviewItem,
    apply_case_review,
    case_description_markdown,
    case_proposal_view,
    case_review_item,
    decide_case_proposal,
    form_key_to_field,
)
from backoffice.review import proposal_markdown
from backoffice.reviewers import IdentityError, identify
from backoffice.runtime import get_db
from backoffice.settings import get_settings
from flows.review_document import (
    Rounds,
    answer_problem,
    ask_checker,
    decision_fields,
    forget_run,
    make_form,
    publish_page,
    put_artifact,
)


class CaseDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


def case_form(item: CaseReviewItem, problem: str | None = None,
              picture_urls: dict[int, str] | None = None) -> type[RunInput]:
    """The typed form for one case, prefilled, with the explanation as description."""
    fields = decision_fields(
        CaseDecision, "approve the whole case (your edits below are kept) or reject it (give "
        "a reason)", "Override failing checks", "Approve even if a check still fails "
        "(audited; needs a second reviewer)")
    for key, (value, hint) in item.form_fields().items():
        fields[key] = (str | None, pydantic.Field(value, title=key, description=hint,
                                                  max_length=500))
    return make_form(f"ReviewCase{item.id}", fields,
                     case_description_markdown(item, picture_urls), problem)


def to_review(answer: RunInput | dict, item: CaseReviewItem) -> CaseReview:
    """The form's answer as a case decision (changed values only)."""
    data = answer if isinstance(answer, dict) else answer.model_dump()
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
    put_artifact("review-case", item.id, case_description_markdown(item, urls),
                 f"Case {item.id}: why it needs a person (personal data masked except "
                 "fields to check)")
    return urls


def _check(rounds: Rounds, engine, case: str, item: CaseReviewItem, settings,
           logger) -> dict | str:
    """The checker's rounds for a case's proposal (see ``ask_checker``)."""
    return ask_checker(
        rounds, engine, settings, logger, subject=f"case {item.id}",
        form_name=f"CheckCase{item.id}", pending=lambda: case_proposal_view(engine, case),
        describe=lambda view: proposal_markdown(view, f"case {item.id}") + "\n\n"
        + case_description_markdown(item),
        decide=lambda checker, confirm, reason: decide_case_proposal(
            engine, case, checker, confirm=confirm, reason=reason, settings=settings),
        errors=(CaseError,), message=lambda outcome: outcome["message"])


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
    rounds = Rounds(timeout)
    try:
        urls = _publish(item)
        return _rounds(rounds, engine, case, item, settings, urls, logger)
    except FlowPauseTimeout:
        logger.warning("no decision on case %s within %s s: it stays in review "
                       "(backoffice case decide)", item.id, timeout)
        raise
    finally:
        forget_run(rounds.run_id)


def _rounds(rounds: Rounds, engine, case: str, item: CaseReviewItem, settings,
            urls: dict[int, str], logger) -> dict:
    problem: str | None = None
    while rounds.count < 40:
        data = rounds.ask(case_form(item, problem, urls), "review")
        try:
            maker = identify(engine, data.get("reviewer"), data.get("reviewer_key") or None,
                             settings=settings)
            review = to_review(data, item)
            outcome = apply_case_review(engine, case, review, settings, identity=maker)
        except (pydantic.ValidationError, IdentityError) as exc:
            problem = answer_problem(exc)
            continue
        except CaseError as exc:
            if case_review_item(engine, case, settings).status != "in_review":
                return {"case": item.id, "reviewed": False, "message": str(exc)}
            problem = str(exc)
            continue
        if outcome.get("pending") is not None:
            logger.info("case %s: proposal %s by %s waits for a checker", item.id,
                        outcome["pending"], maker.name)
            checked = _check(rounds, engine, case, item, settings, logger)
            if isinstance(checked, str):
                if case_review_item(engine, case, settings).status != "in_review":
                    return {"case": item.id, "reviewed": False, "message": checked}
                item = case_review_item(engine, case, settings)
                problem = checked
                continue
            outcome = checked
        logger.info("case %s: %s by %s", item.id, outcome["status"], maker.name
                    if not outcome.get("checker") else f"{maker.name} and {outcome['checker']}")
        if outcome["status"] != "in_review":
            return {**outcome, "case": item.id, "reviewed": True, "reviewer": maker.name}
        item = case_review_item(engine, case, settings)
        problem = outcome.get("message")
    return {"case": item.id, "status": "in_review", "reviewed": False,
            "message": "too many rounds; left in review"}
