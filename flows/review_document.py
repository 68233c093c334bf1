"""`review-document`: pause for a person's decision on one document, then apply it.

Started by ``process-inbox`` (``run_deployment("review-document/review-document",
parameters={"document_id": ...}, timeout=0)``) for each document routed to review,
when that deployment is served (``backoffice serve``). The run publishes two artifacts
and pauses with a typed form (``pause_flow_run(wait_for_input=...)``):

- ``review-image-<document>-<run>`` (markdown): the page with every field boxed (OpenCV): fields to check
  in red and labelled, other personal data blacked out. The picture is embedded as a
  ``data:image/jpeg;base64`` URI in a markdown image, which the Prefect UI renders inline
  on the run's Artifacts tab (an *image* artifact would also print the whole URI as its
  "Image URL" text, and a link to a file would need a second web server reachable from the
  reviewer's browser).
- ``review-document-<document>-<run>`` (markdown): the same explanation as the form's description.

The form (a ``RunInput`` built per document) has these fields: ``decision`` (``approve`` |
``correct`` | ``reject``), ``reviewer`` (the reviewer's id) and ``reviewer_key`` (their
personal key, a password field; see :mod:`backoffice.reviewers`), ``reject_reason``
(required when rejecting), ``override`` (approve although a rule still fails with an
error), and one text field per editable document field, named as the field (``name``,
``id_number``, ``claim_amount`` …), prefilled. Personal fields that need no correction are
not in the form; they stay masked in the description.

**Four eyes.** When the decision needs a second reviewer (an override, a change of an ID,
account or card number: ``BACKOFFICE_FOUR_EYES``), it is kept in the store as a proposal
and the run pauses again with a checker form: ``decision`` (``confirm`` | ``refuse``),
``checker`` and ``checker_key``, ``refuse_reason``; its description shows what the maker
proposed (the changed values in clear, nothing else personal). Confirmed, the decision is
applied; refused, the reviewer form comes back with the reason. The checker may also answer
at a terminal (``backoffice review confirm <document>``); the run then ends at its timeout.

**Nothing personal is left in Prefect.** Each round's form, description and answer (which
holds the values typed and the reviewer's key) are deleted from Prefect's
``flow_run_input`` table as soon as the answer is read; the artifacts the run created are
deleted when it ends, decided or timed out. Prefect copies a keyed artifact's content into
the payload of its ``artifact-collection`` events (kept for
``PREFECT_EVENTS_RETENTION_PERIOD``, with no API to delete them), and deleting the newest
artifact of a shared key copies the next one's content into another event. So each run's
artifacts have keys of their own (``review-image-<document>-<run>``,
``review-document-<document>-<run>``), are created with a neutral placeholder and filled by
a plain ``PATCH`` (which emits no event), and are blanked again before they are deleted:
every event Prefect records holds only the placeholder. Logs name documents, reviewers and
rules, never values or keys.

An invalid answer (reject without a reason, ``correct`` without a change, a wrong key) or
corrected values that still fail a rule pause the run again with the problem stated at the
top of the description. A run left longer than ``BACKOFFICE_REVIEW_TIMEOUT_SECONDS`` fails
with "paused and never resumed"; the document stays ``in_review`` for ``backoffice
review``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

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
    ReviewOutcome,
    apply_review,
    decide_proposal,
    description_markdown,
    fields_table,
    form_fields,
    proposal_markdown,
    proposal_view,
    record_timeout,
    review_image,
    review_item,
)
from backoffice.reviewers import IdentityError, identify
from backoffice.runtime import get_db
from backoffice.settings import get_settings

#: The form's fixed fields; every other field of the form is a document field.
CONTROL_FIELDS = ("decision", "reviewer", "reviewer_key", "reject_reason", "override")
#: The kinds of artifact a review run creates (deleted when it ends); each key is the kind,
#: the document or case and the run: ``review-image-12-1a2b3c4d``.
ARTIFACT_KINDS = ("review-image", "review-document", "review-case")
#: What an artifact holds in Prefect's events: before it is filled, and once emptied.
PLACEHOLDER = "Prepared for a review run; removed when the review ends."
REMOVED = "Removed: the review has ended."


def key_field(title: str, who: str) -> tuple[type, Any]:
    """A password field for a personal key (never prefilled; deleted with the answer)."""
    return (str, pydantic.Field(
        "", title=title, max_length=200,
        description=f"{who} personal key (from `backoffice reviewers add`); not needed while "
        "no reviewer is registered", json_schema_extra={"format": "password",
                                                         "writeOnly": True}))


def decision_fields(decision: type, decision_help: str, override_title: str,
                    override_help: str) -> dict:
    """The maker's part of a review form: decision, identity, reason and override."""
    return {
        "decision": (decision, pydantic.Field(title="Decision", description=decision_help)),
        "reviewer": (str, pydantic.Field(
            title="Reviewer", min_length=1, max_length=100,
            description="Your reviewer id (staff id); recorded in the audit trail")),
        "reviewer_key": key_field("Your personal key", "Your"),
        "reject_reason": (str | None, pydantic.Field(
            None, title="Reject reason", max_length=500,
            description="Required when the decision is reject")),
        "override": (bool, pydantic.Field(False, title=override_title,
                                          description=override_help)),
    }


def make_form(name: str, fields: dict, description: str,
              problem: str | None = None) -> type[RunInput]:
    """A run-input form with its explanation (and what to fix first) as description."""
    model = pydantic.create_model(name, __base__=RunInput, **fields)
    model._description = (f"> **Please fix:** {problem}\n\n" if problem else "") + description
    return model


def review_form(item: ReviewItem, problem: str | None = None,
                picture_url: str | None = None) -> type[RunInput]:
    """The typed form for one document, prefilled, with the explanation as description."""
    fields = decision_fields(
        Decision, "approve (your edits below are kept), correct (at least one edit), or "
        "reject (give a reason)", "Override failing rules", "Approve even if a rule still "
        "fails with an error (audited; needs a second reviewer)")
    for name, (value, hint) in form_fields(item).items():
        fields[name] = (str | None, pydantic.Field(value, title=name, description=hint,
                                                   max_length=500))
    return make_form(f"ReviewDocument{item.document_id}", fields,
                     description_markdown(item, picture_url), problem)


class CheckAnswer(StrEnum):
    CONFIRM = "confirm"
    REFUSE = "refuse"


def checker_form(name: str, description: str, problem: str | None = None) -> type[RunInput]:
    """The second reviewer's form: confirm or refuse what the maker proposed."""
    fields: dict = {
        "decision": (CheckAnswer, pydantic.Field(
            title="Confirm or refuse", description="confirm: the proposal is applied; "
            "refuse: back to review (give a reason)")),
        "checker": (str, pydantic.Field(
            title="Checker", min_length=1, max_length=100,
            description="Your reviewer id: not the maker's; you need the checker role")),
        "checker_key": key_field("Your personal key", "Your"),
        "refuse_reason": (str | None, pydantic.Field(
            None, title="Refuse reason", max_length=500,
            description="Required when refusing")),
    }
    return make_form(name, fields, description, problem)


def to_decision(answer: RunInput | dict, item: ReviewItem) -> ReviewDecision:
    """The form's answer as a decision; raises ``pydantic.ValidationError`` if inconsistent."""
    data = answer if isinstance(answer, dict) else answer.model_dump()
    editable = form_fields(item)
    return ReviewDecision(
        decision=data["decision"], reviewer=data["reviewer"] or "",
        reject_reason=data.get("reject_reason"), override=bool(data.get("override")),
        corrections={k: data.get(k) for k in editable if data.get(k) != editable[k][0]})


def _run_id() -> UUID:
    from prefect.context import FlowRunContext

    return FlowRunContext.get().flow_run.id


def forget_inputs(flow_run_id: UUID) -> int:
    """Delete every run input of a flow run from Prefect (forms, descriptions, answers
    with the values typed and the reviewer's key); returns how many."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deleted = 0
    with get_client(sync_client=True) as client:
        for _ in range(100):
            inputs = client.filter_flow_run_input(flow_run_id, key_prefix="", limit=100,
                                                  exclude_keys=set())
            if not inputs:
                break
            for run_input in inputs:
                try:
                    client.delete_flow_run_input(flow_run_id, run_input.key)
                except ObjectNotFound:
                    pass
                deleted += 1
    return deleted


def artifact_key(kind: str, subject: int | str) -> str:
    """A key of this run's own (see the module's notes)."""
    return f"{kind}-{subject}-{_run_id().hex[:8]}"


def _patch_artifact(client, artifact_id: UUID, data: str) -> None:
    """Replace an artifact's content with a plain PATCH: the client's ``update_artifact``
    would emit an event carrying the new content."""
    client.request("PATCH", "/artifacts/{id}", path_params={"id": artifact_id},
                   json={"data": data}).raise_for_status()


def put_artifact(kind: str, subject: int | str, markdown: str, description: str) -> UUID:
    """A markdown artifact whose content never enters Prefect's events."""
    from prefect.client.orchestration import get_client

    artifact_id = create_markdown_artifact(key=artifact_key(kind, subject),
                                           markdown=PLACEHOLDER, description=description)
    with get_client(sync_client=True) as client:
        _patch_artifact(client, artifact_id, markdown)
    return artifact_id


def forget_artifacts(flow_run_id: UUID) -> int:
    """Empty, then delete, the review artifacts a flow run created; returns how many."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.exceptions import ObjectNotFound

    deleted = 0
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        for art in arts:
            if not (art.key or "").startswith(ARTIFACT_KINDS):
                continue
            try:
                _patch_artifact(client, art.id, REMOVED)
                client.delete_artifact(art.id)
                deleted += 1
            except ObjectNotFound:
                pass
    return deleted


def forget_run(flow_run_id: UUID) -> None:
    """What a review run put into Prefect goes: its inputs and its artifacts."""
    forget_inputs(flow_run_id)
    forget_artifacts(flow_run_id)


class Rounds:
    """The pauses of one review run, each with a unique key; each answer is read and its
    inputs are deleted at once."""

    def __init__(self, timeout: int):
        self.timeout = timeout
        self.count = 0
        self.run_id = _run_id()

    def ask(self, form: type[RunInput], kind: str) -> dict:
        self.count += 1
        try:
            answer = pause_flow_run(wait_for_input=form, timeout=self.timeout,
                                    poll_interval=2, key=f"{kind}-{self.count}")
        finally:
            forget_inputs(self.run_id)
        return answer.model_dump()


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
    picture = put_artifact("review-image", item.document_id, markdown,
                           f"Document {item.document_id} with its fields boxed")
    # A path on the UI's own origin: the link works wherever the UI is served from.
    url = f"/artifacts/artifact/{picture}"
    put_artifact("review-document", item.document_id, description_markdown(item, url),
                 f"Document {item.document_id}: why it needs a person (personal data masked "
                 "except fields to check)")
    return url


def answer_problem(exc: Exception) -> str:
    """What to fix in a refused answer, for the next form."""
    if isinstance(exc, pydantic.ValidationError):
        return "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
    return str(exc)


def ask_checker(rounds: Rounds, engine, settings, logger, *, subject: str, form_name: str,
                pending: Callable[[], Any], describe: Callable[[Any], str],
                decide: Callable[[Any, bool, str | None], Any], errors: tuple,
                message: Callable[[Any], str]) -> Any:
    """Pause for a checker until the proposal on ``subject`` is confirmed (``decide``'s
    outcome) or refused (the reason, for the maker's next form). ``pending`` reads the
    proposal (None once it is no longer pending), ``describe`` explains it."""
    problem: str | None = None
    while rounds.count < 40:
        view = pending()
        if view is None:
            return "the proposal is no longer pending; decide again"
        data = rounds.ask(checker_form(form_name, describe(view), problem), "check")
        try:
            checker = identify(engine, data.get("checker"), data.get("checker_key") or None,
                               settings=settings)
            confirm = data["decision"] == CheckAnswer.CONFIRM.value
            outcome = decide(checker, confirm, data.get("refuse_reason"))
        except (IdentityError, *errors) as exc:
            logger.info("%s: checker answer refused", subject)
            if pending() is None:
                return str(exc)
            problem = str(exc)
            continue
        logger.info("%s: proposal %s %s by %s", subject, view.id,
                    "confirmed" if confirm else "refused", checker.name)
        return outcome if confirm else message(outcome)
    return "too many rounds"


def _check(rounds: Rounds, engine, document_id: int, item: ReviewItem, settings,
           logger) -> ReviewOutcome | str:
    """The checker's rounds for a document's proposal (see ``ask_checker``)."""
    return ask_checker(
        rounds, engine, settings, logger, subject=f"document {document_id}",
        form_name=f"CheckDocument{document_id}",
        pending=lambda: proposal_view(engine, document_id),
        describe=lambda view: proposal_markdown(view, f"document {document_id} "
                                                f"({item.doc_type})")
        + "\n\n" + "\n".join(fields_table(item)),
        decide=lambda checker, confirm, reason: decide_proposal(
            engine, document_id, checker, confirm=confirm, reason=reason, settings=settings),
        errors=(ReviewError,), message=lambda outcome: outcome.message)


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
    rounds = Rounds(timeout)
    try:
        picture_url = publish_page(item)
        return _review_rounds(rounds, engine, document_id, item, settings, picture_url,
                              logger)
    except FlowPauseTimeout:
        record_timeout(engine, document_id, timeout)
        logger.warning("no decision on document %s within %s s: it stays in review "
                       "(backoffice review list)", document_id, timeout)
        raise
    finally:
        forget_run(rounds.run_id)


def _review_rounds(rounds: Rounds, engine, document_id: int, item: ReviewItem, settings,
                   picture_url: str, logger) -> dict:
    problem: str | None = None
    while rounds.count < 40:
        data = rounds.ask(review_form(item, problem, picture_url), "review")
        try:
            maker = identify(engine, data.get("reviewer"), data.get("reviewer_key") or None,
                             settings=settings)
            decision = to_decision(data, item)
            outcome = apply_review(engine, document_id, decision, identity=maker,
                                   settings=settings)
        except (pydantic.ValidationError, IdentityError) as exc:
            problem = answer_problem(exc)
            logger.info("document %s: answer refused", document_id)
            continue
        except ReviewError as exc:
            if review_item(engine, document_id, settings).status != "in_review":
                logger.info("document %s: %s", document_id, exc)
                return {"document_id": document_id, "reviewed": False, "message": str(exc)}
            problem = str(exc)
            continue
        if outcome.pending is not None:
            logger.info("document %s: proposal %s by %s waits for a checker", document_id,
                        outcome.pending, maker.name)
            checked = _check(rounds, engine, document_id, item, settings, logger)
            if isinstance(checked, str):
                if review_item(engine, document_id, settings).status != "in_review":
                    return {"document_id": document_id, "reviewed": False, "message": checked}
                item = review_item(engine, document_id, settings)
                problem = checked
                continue
            outcome = checked
        logger.info("document %s: %s by %s (%d outbox messages)", document_id,
                    outcome.status, maker.name if outcome.checker is None
                    else f"{maker.name} and {outcome.checker}", outcome.outbox_messages)
        if outcome.status != "in_review":
            return {**outcome.model_dump(), "reviewed": True, "reviewer": maker.name}
        item = review_item(engine, document_id, settings)
        problem = outcome.message
    return {"document_id": document_id, "status": "in_review", "reviewed": False,
            "message": "too many rounds; left in review"}


def requeue_reviews(doc_ids: list[int], deployment: str = "review-document/review-document"
                    ) -> dict[int, str]:
    """Start a fresh review run for each document still in review; earlier runs of it that
    are not finished are cancelled first (a run paused before ``backoffice serve``
    restarted has no process behind it any more, and a timed-out one cannot resume), and
    what they left in Prefect (inputs, artifacts) is deleted."""
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
                forget_run(run.id)
            run = run_deployment(deployment, parameters={"document_id": doc_id}, timeout=0,
                                 as_subflow=False, tags=["review"])
            started[doc_id] = str(run.id)
    return started
