"""Human review: the queue, what a reviewer sees, and applying their decision. No Prefect.

A document routed to review (``in_review``) waits here until a person decides, in the
Prefect UI (the ``review-document`` flow pauses for a form built by
:func:`form_fields`) or in the terminal (``backoffice review``). Both end in
:func:`apply_review`:

- **reject** needs a reason; the document becomes ``rejected``.
- **approve** / **correct**: every changed value is stored as ``FieldValue.reviewed_value``
  and audited (who, when, before, after); the document is re-validated with the rules on
  its corrected values. When no check fails with severity *error* it is approved and its
  outbox messages are written in the same transaction. When one still fails, the document
  stays ``in_review`` with the new reasons, unless the reviewer sets ``override`` (then
  the approval is audited with the failing rules). Warnings do not block: a person has
  looked.

**Who decides** (:mod:`backoffice.reviewers`): every decision is taken by an
:class:`~backoffice.reviewers.Identity` (a registered reviewer who gave their personal key,
or a free-text name while the store has no reviewers and ``BACKOFFICE_REVIEWERS=auto``).
The maker needs the ``reviewer`` role.

**Four eyes**: an approval that overrides a failing rule, or that changes a field named by
``BACKOFFICE_FOUR_EYES`` (ID numbers, account and card numbers by default), is not applied
by one person. Nothing of it is stored on the document: it is kept as a proposal
(:func:`backoffice.reviewers.propose`), the outcome says so (``ReviewOutcome.pending``,
with the message naming ``backoffice review confirm <document>``), and a checker (another
person, ``checker`` role) confirms it (:func:`decide_proposal`: applied as the maker
decided, audited with both) or refuses it (the document stays in review with the reason).
Such a decision that would still fail a rule without override is returned to the maker at
once (nothing saved).

**Reveal**: showing a masked value in clear (``backoffice review show --reveal``, the
portrait) is audited, ``revealed`` with the reviewer and the field names
(:func:`record_reveal`).

The store holds full values; the audit events of corrections carry them too (the audit
log lives in the store). Nothing here logs a value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.engine import Engine
from sqlmodel import Session, delete, select

from backoffice import reviewers
from backoffice.audit import AuditEvent, append_audit
from backoffice.reviewers import Identity, ReviewProposal
from backoffice.settings import Settings, get_settings
from backoffice.store import CheckRow, Document, DocumentRisk, FieldValue, Status, set_status
from domain.masking import PERSONAL_FIELDS, mask_text, mask_value
from domain.models import (
    CheckResult,
    DocType,
    ExtractedField,
    QualityReport,
    RouteDecision,
    Severity,
)


class Decision(StrEnum):
    APPROVE = "approve"
    CORRECT = "correct"
    REJECT = "reject"


class ReviewError(ValueError):
    """A decision that cannot be applied (wrong state, missing reason, unknown field)."""


class ReviewDecision(BaseModel):
    """What a reviewer decided about one document."""

    decision: Decision
    reviewer: str = Field(min_length=1, max_length=100)
    corrections: dict[str, str | None] = Field(default_factory=dict)
    reject_reason: str | None = None
    override: bool = Field(False, description="Approve although a rule still fails.")

    @model_validator(mode="after")
    def _consistent(self) -> ReviewDecision:
        self.reviewer = self.reviewer.strip()
        if not self.reviewer:
            raise ValueError("the reviewer's name is required (it goes into the audit trail)")
        if self.decision is Decision.REJECT and not (self.reject_reason or "").strip():
            raise ValueError("a rejection needs a reason")
        return self


class ReviewField(BaseModel):
    """One field as the reviewer sees it."""

    name: str
    value: str | None
    reviewed_value: str | None = None
    confidence: float
    personal: bool
    needs_correction: bool
    why: list[str] = Field(default_factory=list)
    boxes: list[Any] = Field(default_factory=list)

    @property
    def current(self) -> str | None:
        return self.reviewed_value if self.reviewed_value is not None else self.value

    def shown(self, reveal: bool = False) -> str | None:
        """The value as displayed: masked personal data unless revealed or under correction."""
        if self.personal and not (reveal or self.needs_correction):
            return mask_value(self.name, self.current)
        return self.current


class FailedCheck(BaseModel):
    rule: str
    severity: str
    fields: list[str]
    explanation: str


class RiskFlag(BaseModel):
    """A risk signal a reviewer must weigh: what it is, how strong, why, and where."""

    signal: str
    score: float
    reason: str
    region: list[Any] | None = None


class ReviewItem(BaseModel):
    """A document in the review queue with everything a reviewer needs."""

    document_id: int
    file: str
    page: int
    doc_type: str | None
    status: str
    batch: str | None
    reasons: list[str]
    waiting_since: datetime
    fields: list[ReviewField]
    failed_checks: list[FailedCheck]
    stored_path: str
    #: Flagged fraud and risk signals (their regions are boxed in the review image).
    risks: list[RiskFlag] = Field(default_factory=list)
    #: The ID front's portrait, a store reference (``store:<sha256>``) when one was cropped.
    portrait_ref: str | None = None

    @property
    def to_correct(self) -> list[str]:
        return [f.name for f in self.fields if f.needs_correction]


class ReviewOutcome(BaseModel):
    document_id: int
    status: str
    corrected: list[str] = Field(default_factory=list)
    failed_checks: list[str] = Field(default_factory=list)
    outbox_messages: int = 0
    message: str = ""
    #: The proposal waiting for a checker (four eyes), when the decision was not applied.
    pending: int | None = None
    #: The checker who confirmed it, when it was.
    checker: str | None = None


def _explain(check: CheckRow, describe: dict[str, str]) -> str:
    """A failed check in words: what the rule requires and what was wrong (masked)."""
    what = describe.get(check.rule, "")
    said = mask_text(check.message or "").strip()
    parts = [p for p in (what, said) if p]
    return " — ".join(parts) or check.rule


def _rule_descriptions() -> dict[str, str]:
    from validators.registry import default_registry

    return {r.name: r.description for r in default_registry()}


def _field_reasons(session: Session, doc: Document, values: list[FieldValue],
                   settings: Settings) -> RouteDecision:
    """The route of the document as it stands (the same :func:`~backoffice.assess.route`
    as processing): its field reasons say which fields a person must look at. A value a
    reviewer already gave counts as certain."""
    from backoffice.assess import route_with

    fields = {f.name: ExtractedField(
        value=f.reviewed_value if f.reviewed_value is not None else f.value,
        confidence=1.0 if f.reviewed_value is not None else f.confidence) for f in values}
    rows = session.exec(select(CheckRow).where(CheckRow.document_id == doc.id)).all()
    checks = [CheckResult(rule=r.rule, fields=r.fields or [], severity=Severity(r.severity),
                          passed=r.passed, message=r.message or "") for r in rows]
    quality = QualityReport.model_validate(doc.quality) if doc.quality else None
    return route_with(settings, DocType(doc.doc_type or "unknown"), fields, checks, quality)


def load_item(session: Session, doc: Document, settings: Settings | None = None,
              describe: dict[str, str] | None = None) -> ReviewItem:
    from backoffice.assess import field_threshold

    settings = settings or get_settings()
    describe = describe if describe is not None else _rule_descriptions()
    values = session.exec(select(FieldValue).where(FieldValue.document_id == doc.id)
                          .order_by(FieldValue.id)).all()
    checks = session.exec(select(CheckRow).where(CheckRow.document_id == doc.id,
                                                 CheckRow.passed == False)
                          .order_by(CheckRow.id)).all()
    # A skipped check (no lookup configured, input missing) says nothing about the data.
    checks = [c for c in checks if not (c.details or {}).get("skipped")]
    blocking = [c for c in checks if Severity(c.severity) >= Severity.WARNING]
    route_now = _field_reasons(session, doc, values, settings)
    flagged: dict[str, list[str]] = {}
    for c in blocking:
        for name in c.fields or []:
            flagged.setdefault(name, []).append(f"{c.rule} failed")
    fields = []
    for f in values:
        # The route says "not found" and "confidence ... below ..." of each field; a field
        # a passed rule vouches for is still shown to the reviewer when it was unsure.
        why = route_now.for_field(f.name) + flagged.get(f.name, [])
        if f.reviewed_value is None and f.confidence < field_threshold(settings, f.name) \
                and not why:
            why.append(f"confidence {f.confidence:.2f}")
        fields.append(ReviewField(
            name=f.name, value=f.value, reviewed_value=f.reviewed_value,
            confidence=f.confidence, personal=f.name in PERSONAL_FIELDS,
            needs_correction=bool(why), why=why, boxes=f.boxes or []))
    risk_row = session.get(DocumentRisk, doc.id)
    risks = [RiskFlag(signal=name, score=float(sig.get("score", 0.0)),
                      reason=mask_text(sig.get("reason", "")), region=sig.get("region"))
             for name, sig in ((risk_row.signals or {}).items() if risk_row else ())
             if sig.get("flagged")]
    portrait_ref = (f"store:{risk_row.portrait_sha256}"
                    if risk_row and risk_row.portrait_sha256 else None)
    waiting = session.exec(select(AuditEvent.at).where(
        AuditEvent.document_id == doc.id, AuditEvent.action == "status")
        .order_by(AuditEvent.id.desc()).limit(1)).first() or doc.updated_at
    return ReviewItem(
        document_id=doc.id, file=mask_text(doc.original_name), page=doc.page + 1,
        doc_type=doc.doc_type, status=doc.status.value, batch=doc.batch,
        reasons=[mask_text(r) for r in (doc.reason or "").split("; ") if r],
        waiting_since=waiting if waiting.tzinfo else waiting.replace(tzinfo=UTC),
        fields=fields,
        failed_checks=[FailedCheck(rule=c.rule, severity=c.severity, fields=c.fields or [],
                                   explanation=_explain(c, describe)) for c in checks],
        stored_path=doc.stored_path, risks=risks, portrait_ref=portrait_ref)


def review_item(engine: Engine, doc_id: int, settings: Settings | None = None) -> ReviewItem:
    """One document as a reviewer sees it (raises ``ReviewError`` if unknown)."""
    with Session(engine) as session:
        doc = session.get(Document, doc_id)
        if doc is None:
            raise ReviewError(f"document {doc_id} does not exist")
        return load_item(session, doc, settings)


def review_queue(engine: Engine, settings: Settings | None = None,
                 batch: str | None = None) -> list[ReviewItem]:
    """Every document waiting for a person, oldest first."""
    describe = _rule_descriptions()
    with Session(engine) as session:
        query = select(Document).where(Document.status == Status.IN_REVIEW)
        if batch is not None:
            query = query.where(Document.batch == batch)
        docs = session.exec(query.order_by(Document.id)).all()
        items = [load_item(session, d, settings, describe) for d in docs]
    return sorted(items, key=lambda i: (i.waiting_since, i.document_id))


def description_markdown(item: ReviewItem, picture_url: str | None = None) -> str:
    """The review form's text: why the document is here, its fields (masked), the checks.

    ``picture_url``: the UI path of the boxed picture (``/artifacts/artifact/<id>``);
    linked for Prefect's V2 UI (``/v2`` prefix) and its classic UI.
    """
    lines = [f"## Review document {item.document_id} ({item.doc_type or 'unknown type'})", "",
             f"File `{item.file}`, page {item.page}, batch `{item.batch or '-'}`."
             + (f" **[Open the picture with the fields boxed](/v2{picture_url})** "
                f"([classic UI]({picture_url}))" if picture_url else ""), ""]
    if item.reasons:
        lines += ["**Why it needs you:**", ""] + [f"- {r}" for r in item.reasons] + [""]
    if item.risks:
        lines += ["**Risk signals** (their regions are boxed in orange in the picture):", ""]
        lines += [f"- `{r.signal}` — score {r.score:.2f}: {r.reason}" for r in item.risks]
        lines.append("")
    if item.failed_checks:
        lines += ["**Failed checks:**", ""]
        for c in item.failed_checks:
            on = f" (fields: {', '.join(c.fields)})" if c.fields else ""
            lines.append(f"- `{c.rule}` — {c.severity}{on}: {c.explanation}")
        lines.append("")
    lines += fields_table(item)
    lines += ["", ("Fields in **to check** are editable in clear below; other personal data "
              "stays masked (use `backoffice review show --reveal FIELD --reviewer ID` at a "
              "terminal if you must see it: audited). Choose **approve** (edits are kept), "
              "**correct** (at least one edit), or **reject** with a reason; give your "
              "reviewer id and personal key. An override, or a change of an ID, account or "
              "card number, waits for a second reviewer (four eyes). The picture of the "
              "document with the fields boxed is the run's `review-image` artifact.")]
    return "\n".join(lines)


def fields_table(item: ReviewItem) -> list[str]:
    """The markdown table of a document's fields: personal data masked unless it is to be
    checked."""
    lines = ["| field | value read | confidence | to check |", "|---|---|---:|---|"]
    for f in item.fields:
        shown = f.shown()
        lines.append(f"| {f.name} | {shown if shown is not None else '—'} | "
                     f"{f.confidence:.2f} | {'**' + '; '.join(f.why) + '**' if f.why else ''} |")
    return lines


def form_fields(item: ReviewItem) -> dict[str, tuple[str | None, str]]:
    """Editable fields of the review form: name -> (prefill, description).

    Non-personal fields are editable with their value; personal fields only when they
    need correction (otherwise they are not in the form: the form would show them in
    clear).
    """
    out = {}
    for f in item.fields:
        if f.personal and not f.needs_correction:
            continue
        hint = f"OCR confidence {f.confidence:.2f}"
        if f.why:
            hint = "CHECK: " + "; ".join(mask_text(w) for w in f.why) + f" ({hint})"
        out[f.name] = (f.current, hint)
    return out


def _effective(session: Session, doc_id: int) -> dict[str, FieldValue]:
    return {f.name: f for f in session.exec(
        select(FieldValue).where(FieldValue.document_id == doc_id))}


def correct_field(session: Session, f: FieldValue, new: str | None, actor: str,
                  **context: object) -> bool:
    """Set a field's reviewed value and audit the change (``context``: more to record, e.g.
    the case); False when the value is what it already was."""
    new = (new.strip() if isinstance(new, str) else new) or None
    before = f.reviewed_value if f.reviewed_value is not None else f.value
    if new == before:
        return False
    f.reviewed_value = new
    session.add(f)
    append_audit(session, "review.corrected", document_id=f.document_id, actor=actor,
                 data={"field": f.name, "before": before, "after": new, "ocr_value": f.value,
                       **context})
    return True


def revalidate(session: Session, doc: Document) -> list[CheckRow]:
    """Run the rules again on the document's current values and store the new checks."""
    from backoffice.assess import system_lookup, validate_fields

    values = {n: (f.reviewed_value if f.reviewed_value is not None else f.value)
              for n, f in _effective(session, doc.id).items()}
    checks = validate_fields(DocType(doc.doc_type or "unknown"), values,
                             lookup=system_lookup(get_settings()))
    session.exec(delete(CheckRow).where(CheckRow.document_id == doc.id))
    rows = [CheckRow(document_id=doc.id, rule=c.rule, severity=c.severity.value,
                     passed=c.passed, message=c.message, fields=c.fields,
                     details=c.model_dump(mode="json")["details"]) for c in checks]
    for row in rows:
        session.add(row)
    session.flush()
    return rows


def document_digest(session: Session, doc_id: int) -> str:
    """A digest of a document's current values (what a proposal is bound to)."""
    return reviewers.values_digest({n: (f.reviewed_value if f.reviewed_value is not None
                                        else f.value)
                                    for n, f in _effective(session, doc_id).items()})


def apply_review(engine: Engine, doc_id: int, decision: ReviewDecision,
                 actor: str | None = None, *, identity: Identity | None = None,
                 settings: Settings | None = None) -> ReviewOutcome:
    """Apply a reviewer's decision (one transaction). Raises ``ReviewError`` when the
    document is not waiting for review or a corrected field does not exist, and
    :class:`~backoffice.reviewers.IdentityError` when the reviewer cannot act.

    ``identity``: who decides, authenticated by the caller
    (:func:`backoffice.reviewers.identify`); without it the decision's ``reviewer`` is
    identified without a key (accepted in open mode only). A decision needing four eyes
    is kept as a proposal (``ReviewOutcome.pending``), not applied."""
    settings = settings or get_settings()
    reviewers.ensure_tables(engine)
    maker = identity or reviewers.identify(engine, actor or decision.reviewer, None,
                                           settings=settings)
    maker.require(reviewers.REVIEWER, "decide a document")
    return _apply(engine, doc_id, decision, maker.name, settings)


def _apply(engine: Engine, doc_id: int, decision: ReviewDecision, actor: str,
           settings: Settings, *, checker: str | None = None,
           proposal: ReviewProposal | None = None) -> ReviewOutcome:
    """The decision of ``actor`` (the maker), confirmed by ``checker`` for a proposal."""
    by = {"checker": checker, "proposal": proposal.id} if checker and proposal else {}
    with Session(engine) as session:
        query = select(Document).where(Document.id == doc_id)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()
        doc = session.exec(query).first()
        if doc is None:
            raise ReviewError(f"document {doc_id} does not exist")
        if doc.status is not Status.IN_REVIEW:
            raise ReviewError(f"document {doc_id} is {doc.status.value}, not in_review: "
                              "someone else decided already")
        if decision.decision is Decision.REJECT:
            reason = "rejected by reviewer: " + decision.reject_reason.strip()
            set_status(session, doc, Status.REJECTED, reason=reason, actor=actor)
            append_audit(session, "review.rejected", document_id=doc.id, actor=actor,
                         data={"reason": decision.reject_reason.strip()})
            _void_pending(session, doc.id)
            session.commit()
            return ReviewOutcome(document_id=doc_id, status=Status.REJECTED.value,
                                 message=reason)
        fields = _effective(session, doc.id)
        unknown = sorted(set(decision.corrections) - set(fields))
        if unknown:
            raise ReviewError(f"document {doc_id} has no field(s) {', '.join(unknown)}")
        basis = document_digest(session, doc.id)
        corrected = [name for name, new in sorted(decision.corrections.items())
                     if correct_field(session, fields[name], new, actor, **by)]
        if decision.decision is Decision.CORRECT and not corrected:
            raise ReviewError("decision 'correct' but no value was changed; choose approve")
        session.flush()
        rows = revalidate(session, doc)
        errors = [r for r in rows if not r.passed and Severity(r.severity) >= Severity.ERROR]
        failing = [r.rule for r in errors]
        needs = reviewers.four_eyes_needs(settings, corrected,
                                          bool(errors) and decision.override)
        if needs and checker is None:
            # One person may not do this alone: nothing of it is stored on the document.
            session.rollback()
            if errors and not decision.override:
                return ReviewOutcome(
                    document_id=doc_id, status=Status.IN_REVIEW.value,
                    failed_checks=failing,
                    message="still failing after correction: " + ", ".join(failing)
                    + "; nothing was saved (a change of " + ", ".join(needs) + " needs a "
                    "second reviewer once it passes); correct again, reject, or approve "
                    "with override")
            return _propose(session, doc_id, decision, actor, needs, corrected, failing,
                            basis)
        if errors and not decision.override:
            reasons = [f"{r.rule} ({r.severity}): {r.message}" for r in errors]
            set_status(session, doc, Status.IN_REVIEW, reason="; ".join(
                ["after review by " + actor] + reasons), actor=actor)
            append_audit(session, "review.still_failing", document_id=doc.id, actor=actor,
                         data={"rules": failing, "corrected": corrected, **by})
            _close_confirmed(session, proposal, checker, actor)
            session.commit()
            return ReviewOutcome(
                document_id=doc_id, status=Status.IN_REVIEW.value, corrected=corrected,
                failed_checks=failing, checker=checker,
                message="still failing after correction: " + ", ".join(failing)
                + "; correct again, reject, or approve with override")
        from backoffice.outbox import approve_document

        append_audit(session, "review.approved", document_id=doc.id, actor=actor, data={
            "decision": decision.decision.value, "corrected": corrected,
            "override": bool(errors), "failing_rules": failing, **by})
        _close_confirmed(session, proposal, checker, actor)
        _void_pending(session, doc.id)
        messages = approve_document(session, doc, actor=actor,
                                    reason=f"approved by reviewer {actor}"
                                    + (f", confirmed by {checker}" if checker else "")
                                    + (" (override: " + ", ".join(failing) + ")"
                                       if errors else ""))
        session.commit()
        return ReviewOutcome(document_id=doc_id, status=doc.status.value, corrected=corrected,
                             failed_checks=failing, outbox_messages=len(messages),
                             checker=checker,
                             message="approved" + (" with override" if errors else "")
                             + (f" (four eyes: {actor} and {checker})" if checker else ""))


def _propose(session: Session, doc_id: int, decision: ReviewDecision, maker: str,
             needs: list[str], corrected: list[str], failing: list[str], basis: str
             ) -> ReviewOutcome:
    doc = session.get(Document, doc_id)
    if doc is None or doc.status is not Status.IN_REVIEW:
        raise ReviewError(f"document {doc_id} is no longer in_review")
    row = reviewers.propose(
        session, maker=maker, needs=needs, fields=corrected, failing=failing, basis=basis,
        document_id=doc_id, proposal=decision.model_dump(mode="json"))
    session.commit()
    return ReviewOutcome(
        document_id=doc_id, status=Status.IN_REVIEW.value, failed_checks=failing,
        pending=row.id, message=reviewers.four_eyes_message(
            needs, maker, f"document {doc_id}", f"backoffice review confirm {doc_id}",
            row.id))


def _close_confirmed(session: Session, proposal: ReviewProposal | None, checker: str | None,
                     maker: str) -> None:
    if proposal is None or checker is None:
        return
    row = session.get(ReviewProposal, proposal.id)
    reviewers.close(session, row, "confirmed", checker=checker)
    append_audit(session, "review.confirmed", document_id=row.document_id, actor=checker,
                 data={"proposal": row.id, "maker": maker, "needs": row.needs,
                       "fields": row.fields,
                       **({"case": row.case_id} if row.case_id is not None else {})})


def _void_pending(session: Session, doc_id: int) -> None:
    for row in reviewers.pending(session, document_id=doc_id, all_=True):
        reviewers.close(session, row, "void", note="the document was decided")


class ProposalView(BaseModel):
    """What a checker sees of a proposal: who, what, and the changed values (in clear:
    they are what the checker confirms)."""

    id: int
    document_id: int | None = None
    case_id: int | None = None
    maker: str
    decision: str
    override: bool
    needs: list[str]
    failing: list[str]
    #: (key, value now, value proposed)
    changes: list[tuple[str, str | None, str | None]]
    created_at: datetime


def proposal_view(engine: Engine, doc_id: int) -> ProposalView | None:
    """The proposal waiting for a checker on this document, or None."""
    reviewers.ensure_tables(engine)
    with Session(engine) as session:
        row = reviewers.pending(session, document_id=doc_id)
        if row is None:
            return None
        fields = _effective(session, doc_id)
        data = row.proposal or {}
        changes = []
        for name in row.fields:
            f = fields.get(name)
            now = (f.reviewed_value if f.reviewed_value is not None else f.value) if f else None
            changes.append((name, now, (data.get("corrections") or {}).get(name)))
        return ProposalView(id=row.id, document_id=doc_id, maker=row.maker,
                            decision=data.get("decision", "approve"),
                            override=bool(data.get("override")), needs=row.needs,
                            failing=row.failing, changes=changes,
                            created_at=row.created_at)


def proposal_markdown(view: ProposalView, subject: str) -> str:
    """A proposal for the checker: changed values in clear, nothing else."""
    lines = [f"## Second pair of eyes: {subject}", "",
             f"**{view.maker}** proposes to **{view.decision}**"
             + (" with **override** of the failing rule(s) " + ", ".join(
                 f"`{r}`" for r in view.failing) if view.override and view.failing else "")
             + f" (proposal {view.id}). It needs a second reviewer for: "
             + ", ".join(f"`{n}`" for n in view.needs) + ".", ""]
    if view.changes:
        lines += ["| field | now | proposed |", "|---|---|---|"]
        lines += [f"| {k} | {now if now is not None else '—'} | "
                  f"{new if new is not None else '—'} |" for k, now, new in view.changes]
        lines.append("")
    lines.append("Compare with the picture (the run's `review-image` artifact), then "
                 "**confirm** (it is applied, audited with both of you) or **refuse** with "
                 "a reason (back to review). You must not be the maker, and need the "
                 "`checker` role; give your reviewer id and personal key.")
    return "\n".join(lines)


def decide_proposal(engine: Engine, doc_id: int, checker: Identity, *, confirm: bool,
                    reason: str | None = None, settings: Settings | None = None
                    ) -> ReviewOutcome:
    """A checker's answer to the proposal waiting on a document: confirmed, it is applied
    as the maker decided (audited with both); refused, the document stays in review with
    the reason. Raises :class:`ReviewError` (no proposal, values changed since: then it is
    void) or :class:`~backoffice.reviewers.IdentityError` (no checker role, or the maker)."""
    settings = settings or get_settings()
    reviewers.ensure_tables(engine)
    with Session(engine) as session:
        row = reviewers.pending(session, document_id=doc_id)
        if row is None:
            raise ReviewError(f"document {doc_id} has no decision waiting for a second "
                              "reviewer")
        reviewers.check_checker(row, checker)
        doc = session.get(Document, doc_id)
        if doc is None or doc.status is not Status.IN_REVIEW:
            reviewers.close(session, row, "void", note="the document was decided")
            session.commit()
            raise ReviewError(f"document {doc_id} is no longer in_review: proposal {row.id} "
                              "is void")
        if document_digest(session, doc_id) != row.basis:
            reviewers.close(session, row, "void", note="values changed since")
            append_audit(session, "review.proposal_void", document_id=doc_id,
                         actor=checker.name, data={"proposal": row.id, "maker": row.maker})
            session.commit()
            raise ReviewError(f"document {doc_id} changed since {row.maker} proposed: "
                              f"proposal {row.id} is void; decide it again")
        if not confirm:
            why = (reason or "").strip()
            if not why:
                raise ReviewError("a refusal needs a reason")
            reviewers.close(session, row, "refused", checker=checker.name,
                            note=mask_text(why))
            append_audit(session, "review.refused", document_id=doc_id, actor=checker.name,
                         data={"proposal": row.id, "maker": row.maker, "reason": why,
                               "needs": row.needs, "fields": row.fields})
            set_status(session, doc, Status.IN_REVIEW, actor=checker.name, reason=(
                f"proposal of {row.maker} refused by {checker.name}: {mask_text(why)}; "
                + (doc.reason or ""))[:2000])
            session.commit()
            return ReviewOutcome(document_id=doc_id, status=Status.IN_REVIEW.value,
                                 checker=checker.name,
                                 message=f"refused by {checker.name}: {mask_text(why)}")
        decision = ReviewDecision.model_validate(row.proposal)
        session.expunge(row)
    return _apply(engine, doc_id, decision, row.maker, settings, checker=checker.name,
                  proposal=row)


def record_reveal(engine: Engine, who: Identity, doc_id: int, fields: list[str],
                  what: str = "value") -> None:
    """Audit that ``who`` saw these fields of the document in clear (names only)."""
    reviewers.ensure_tables(engine)
    with Session(engine) as session:
        reviewers.audit_reveal(session, who, document_id=doc_id, fields=fields, what=what)
        session.commit()


def record_timeout(engine: Engine, doc_id: int, waited_seconds: int) -> None:
    """Audit that a review run gave up waiting; the document stays queued in_review."""
    with Session(engine) as session:
        append_audit(session, "review.timed_out", document_id=doc_id,
                     data={"waited_seconds": waited_seconds,
                           "at": datetime.now(UTC).isoformat()})
        session.commit()


def review_image(item: ReviewItem, settings: Settings | None = None,
                 engine: Engine | None = None) -> bytes | None:
    """JPEG of the document page with its fields boxed: fields to check in red, personal
    data not under review blacked out. None if the original cannot be read or decoded.
    ``engine``: the store, for an original kept there (default: the settings' store)."""
    from backoffice import blobs
    from backoffice.processing import limits_from
    from ocr.annotate import FieldBoxes, annotate, encode_jpeg
    from ocr.decode import DecodeError, decode

    settings = settings or get_settings()
    if engine is None and blobs.is_store_ref(item.stored_path):
        from backoffice.runtime import get_db

        engine = get_db(settings)
    try:
        pages = decode(blobs.read(item.stored_path, engine), limits_from(settings))
    except (OSError, DecodeError):
        return None
    page = next((p for p in pages if p.index == item.page - 1), None)
    if page is None:
        return None
    boxes = {f.name: FieldBoxes([[tuple(pt) for pt in poly] for poly in f.boxes])
             for f in item.fields}
    risks = {f"risk: {r.signal}": [tuple(pt) for pt in r.region] for r in item.risks
             if r.region}
    image = annotate(page.image, boxes, highlight=item.to_correct,
                     redact=[f.name for f in item.fields if f.personal], risks=risks)
    return encode_jpeg(image)


def portrait_image(item: ReviewItem, settings: Settings | None = None,
                   engine: Engine | None = None) -> bytes | None:
    """The JPEG of the portrait cropped from the document (an ID front), or None."""
    from backoffice import blobs

    if item.portrait_ref is None:
        return None
    if engine is None:
        from backoffice.runtime import get_db

        engine = get_db(settings or get_settings())
    try:
        return blobs.read(item.portrait_ref, engine)
    except OSError:
        return None
