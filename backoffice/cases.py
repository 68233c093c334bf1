"""Claim cases: documents submitted together, checked against one another, decided and
posted as one.

A case is formed at intake (a folder under the inbox's ``cases/``, or a case id given to
``backoffice intake --case``) or when a multi-page PDF holds a claim form with other kinds
of document. Its pages are read and validated like any page, but a case page does not
route itself: it waits in ``processed`` with what its own route said
(:class:`~backoffice.store.CaseDocument`), and the case decides.

:func:`assess_case` runs when a page of the case has been read (and again for open
cases on every ``process-inbox`` run): it joins the pages' fields by role, runs the
``case.*`` rules (:mod:`validators.rules.case`) with the downstream systems' lookup and
the store's own record of invoices and claims, and decides:

- ``open``: pages still being read, or a document missing for less than
  ``BACKOFFICE_CASE_WAIT_SECONDS`` (its pages may arrive in separate runs);
- ``approved``: every page and every cross-document check passed, and the cross-system
  checks ran. Every page is approved in the same transaction and the case's outbox
  messages written: the claim with its invoices to the claims system, the payout to the
  payments system, the insured with the card's validity period to the core system, all
  keyed by the case (``bo-case-<id>-<hash>:<target>:v<n>``);
- ``in_review`` otherwise, with every reason; the checks fail closed (a check that could
  not run is a reason). A reviewer decides the case as a whole
  (:func:`apply_case_review`).

A case is ``posted`` when the outbox has delivered its messages (:func:`refresh_posted`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, delete, select

from backoffice.audit import append_audit, as_utc, utcnow
from backoffice.settings import Settings
from backoffice.store import (
    Case,
    CaseDocument,
    CaseKey,
    CaseStatus,
    CheckRow,
    Document,
    FieldValue,
    Status,
    set_status,
)
from domain.masking import mask_text, mask_value
from domain.models import CheckResult, DocType, Severity
from validators.rules.case import IDENTITY, IDENTITY_RULES

#: Where the inbox keeps case folders: ``<inbox>/cases/<case id>/<files>``.
CASES_FOLDER = "cases"
#: The kinds of case (``Case.kind``).
CLAIM = "claim"
#: The role under which a document type's fields reach the case rules.
ROLES: dict[str, str] = {
    DocType.CLAIM_FORM.value: "form",
    DocType.ID_CARD_FRONT.value: "id",
    DocType.ID_CARD_BACK.value: "id",
    DocType.ID_CARD_TEMPORARY.value: "id",
    DocType.BANK_CARD.value: "card",
}
_FINAL = {CaseStatus.APPROVED, CaseStatus.POSTED, CaseStatus.REJECTED}
_READ = {Status.PROCESSED, Status.IN_REVIEW, Status.APPROVED, Status.POSTED, Status.REJECTED,
         Status.QUARANTINED}


class CaseError(ValueError):
    """A case operation that cannot be done (no such case, not in review, bad field)."""


# --- membership ----------------------------------------------------------------------


def case_from_path(relative: str) -> str | None:
    """The case id of an inbox file at this relative path (``cases/<id>/...``), or None."""
    parts = relative.replace("\\", "/").split("/")
    if len(parts) >= 3 and parts[0] == CASES_FOLDER and parts[1]:
        return parts[1][:200]
    return None


def case_for(session: Session, ref: str, batch: str | None = None, kind: str = CLAIM
             ) -> Case:
    """The case with this id, created if new (another worker creating it at the same
    moment is no error)."""
    case = session.exec(select(Case).where(Case.ref == ref)).first()
    if case is not None:
        return case
    try:
        with session.begin_nested():
            case = Case(ref=ref, batch=batch, kind=kind)
            session.add(case)
            session.flush()
    except IntegrityError:
        return session.exec(select(Case).where(Case.ref == ref)).one()
    append_audit(session, "case.opened", data={"case": case.id, "kind": kind})
    return case


#: A file name's side of an ID card: ``<stem>_front`` / ``<stem>-back`` / ``<stem>正面`` ...
_ID_SIDE = re.compile(r"^(?P<stem>.*?)[\s._-]*(?P<side>front|back|正面|人像面|反面|背面|国徽面)$",
                      re.IGNORECASE)
_SIDES = {"front": "front", "正面": "front", "人像面": "front",
          "back": "back", "反面": "back", "背面": "back", "国徽面": "back"}


def id_side(name: str) -> tuple[str, str] | None:
    """``(stem, "front" | "back")`` when a file's name says which side of an ID card it is
    (``0001_front.jpg``, ``张三-背面.png``...); the stem keeps the file's folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    found = _ID_SIDE.match(path.stem)
    if found is None or not found["stem"]:
        return None
    return str(path.parent / found["stem"].lower()), _SIDES[found["side"].lower()]


def id_side_pairs(names: Iterable[str]) -> list[tuple[str, str]]:
    """The ``(front, back)`` file names of a batch that are one ID card's two sides: the
    same stem, one front and one back (a stem with several of a side pairs nothing)."""
    sides: dict[str, dict[str, list[str]]] = {}
    for name in names:
        found = id_side(name)
        if found is not None:
            sides.setdefault(found[0], {}).setdefault(found[1], []).append(name)
    return [(by["front"][0], by["back"][0]) for by in sides.values()
            if len(by.get("front", ())) == 1 and len(by.get("back", ())) == 1]


def pair_identity(session: Session, front: Document, back: Document) -> Case | None:
    """Join a loose front and back (in no case yet) into one identity case, so the validity
    rules see the front's birth date and the core system receives the validity period."""
    if case_of(session, front) is not None or case_of(session, back) is not None:
        return None
    case = case_for(session, f"id-{front.id}-{back.id}", front.batch, kind=IDENTITY)
    join_case(session, case, front)
    join_case(session, case, back)
    return case


def join_case(session: Session, case: Case, doc: Document) -> CaseDocument:
    """Make a page part of a case (idempotent; a page stays in the first case it joined)."""
    link = session.get(CaseDocument, doc.id)
    if link is not None:
        return link
    link = CaseDocument(document_id=doc.id, case_id=case.id)
    session.add(link)
    session.flush()
    append_audit(session, "case.joined", document_id=doc.id, data={"case": case.id})
    return link


def case_of(session: Session, doc: Document) -> Case | None:
    """The case a page belongs to (a page of a multi-page file: its file's case)."""
    for doc_id in (doc.id, doc.parent_id):
        if doc_id is None:
            continue
        link = session.get(CaseDocument, doc_id)
        if link is not None:
            return session.get(Case, link.case_id)
    return None


def bundle_kind(doc_types: Iterable[DocType]) -> str | None:
    """The kind of case the pages of one file make, if any: a claim (a claim form with other
    kinds of document; a PDF of claim forms only is a batch of claims, not a case), or an
    identity (exactly an ID card's front and back)."""
    types = [DocType(t) for t in doc_types]
    kinds = set(types)
    if DocType.CLAIM_FORM in kinds and bool(kinds - {DocType.CLAIM_FORM, DocType.UNKNOWN}):
        return CLAIM
    if sorted(types) == sorted([DocType.ID_CARD_FRONT, DocType.ID_CARD_BACK]):
        return IDENTITY
    return None


def hold_page(session: Session, doc: Document, case: Case, route: str, reason: str | None
              ) -> None:
    """Record a read page's own route in its case: the page waits for the case's decision.
    A page arriving after its case was decided is routed to a person on its own."""
    link = join_case(session, case, doc)
    link.page_route = route
    session.add(link)
    doc.reason = reason
    session.add(doc)
    if case.status in _FINAL:
        set_status(session, doc, Status.IN_REVIEW,
                   reason=f"arrived after its case was {case.status.value}"
                   + (f"; {reason}" if reason else ""))


# --- facts ---------------------------------------------------------------------------


def _values(session: Session, doc_id: int) -> dict[str, str | None]:
    return {f.name: (f.reviewed_value if f.reviewed_value is not None else f.value)
            for f in session.exec(select(FieldValue).where(FieldValue.document_id == doc_id))}


def _digest(kind: str, *parts: str | None) -> str | None:
    if any(not p for p in parts):
        return None
    return hashlib.sha256("|".join((kind, *parts)).encode()).hexdigest()  # type: ignore[arg-type]


def case_documents(session: Session, case: Case) -> list[tuple[Document, CaseDocument]]:
    links = session.exec(select(CaseDocument).where(CaseDocument.case_id == case.id)
                         .order_by(CaseDocument.document_id)).all()
    return [(session.get(Document, link.document_id), link) for link in links]


def case_facts(session: Session, case: Case,
               docs: list[tuple[Document, CaseDocument]] | None = None) -> dict[str, str | None]:
    """The flat mapping the case rules read (``validators.rules.case``), and the store's
    claim keys of the case brought up to date."""
    docs = case_documents(session, case) if docs is None else docs
    facts: dict[str, str | None] = {}
    kinds: list[str] = []
    invoices = 0
    session.exec(delete(CaseKey).where(CaseKey.case_id == case.id))
    for doc, _link in docs:
        if doc.status is Status.QUARANTINED or doc.doc_type is None:
            continue
        kinds.append(doc.doc_type)
        values = _values(session, doc.id)
        if doc.doc_type == DocType.MEDICAL_INVOICE.value:
            invoices += 1
            facts.update({f"invoice.{invoices}.{k}": v for k, v in values.items()})
            key = _digest("invoice", values.get("invoice_code"), values.get("invoice_number"))
            facts[f"invoice.{invoices}.used_in"] = str(_other_uses(session, case, "invoice", key))
            _keep_key(session, case, doc, "invoice", key)
            continue
        role = ROLES.get(doc.doc_type)
        if role is None:
            continue
        for k, v in values.items():
            facts.setdefault(f"{role}.{k}", v)
        if doc.doc_type == DocType.CLAIM_FORM.value:
            key = _digest("claim", values.get("policy_number"), values.get("accident_date"))
            facts["form.same_claim_in"] = str(_other_uses(session, case, "claim", key))
            _keep_key(session, case, doc, "claim", key)
    facts["invoice.count"] = str(invoices)
    facts["case.documents"] = ",".join(kinds)
    facts["case.kind"] = case.kind
    return facts


def _other_uses(session: Session, case: Case, kind: str, digest: str | None) -> int:
    """Earlier cases (not rejected) holding the same invoice or claim."""
    if digest is None:
        return 0
    others = session.exec(select(CaseKey.case_id).where(
        CaseKey.kind == kind, CaseKey.digest == digest, CaseKey.case_id < case.id)).all()
    live = [c for c in set(others)
            if (other := session.get(Case, c)) is not None and other.status is not CaseStatus.REJECTED]
    return len(live)


def _keep_key(session: Session, case: Case, doc: Document, kind: str, digest: str | None) -> None:
    if digest is None:
        return
    session.add(CaseKey(kind=kind, digest=digest, case_id=case.id, document_id=doc.id))
    session.flush()


# --- the decision --------------------------------------------------------------------


class CaseDecision(BaseModel):
    status: CaseStatus
    reasons: list[str] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)


def decide(docs: list[tuple[Document, CaseDocument]], checks: list[CheckResult],
           *, lookup_configured: bool, wait_seconds: int, now: datetime) -> CaseDecision:
    """Where the case goes, and why (pure: the caller stores it). Every reason is safe to
    show."""
    unread = [d.id for d, _ in docs if d.status not in _READ]
    if unread:
        return CaseDecision(status=CaseStatus.OPEN, checks=checks,
                            reasons=[f"waiting for {len(unread)} page(s) to be read"])
    reasons: list[str] = []
    for doc, link in docs:
        label = f"document {doc.id} ({doc.doc_type or 'unread'})"
        if doc.status is Status.QUARANTINED:
            reasons.append(f"{label}: quarantined: {doc.reason or 'no reason'}")
        elif link.page_route == "rejected":
            reasons.append(f"{label}: {doc.reason or 'rejected'}")
        elif link.page_route == "in_review":
            reasons.append(f"{label}: {doc.reason or 'needs a person'}")
    missing = next((c for c in checks if c.rule == "case.documents_complete" and not c.passed),
                   None)
    if missing is not None:
        last = max((as_utc(link.added_at) for _, link in docs), default=now)
        if now - last < timedelta(seconds=wait_seconds) and not reasons:
            return CaseDecision(status=CaseStatus.OPEN, checks=checks, reasons=[
                "waiting for " + missing.message.removeprefix("missing: ")])
    if not lookup_configured:
        reasons.append("cross-system checks could not run: no downstream systems configured "
                       "(BACKOFFICE_CORE_URL, BACKOFFICE_CLAIMS_URL)")
    for check in checks:
        if check.passed:
            continue
        if check.details.get("skipped"):
            if missing is None:
                reasons.append(f"{check.rule}: could not be checked ({check.message})")
        elif check.severity >= Severity.WARNING:
            reasons.append(f"{check.rule} ({check.severity.value}): {check.message}")
    return CaseDecision(status=CaseStatus.IN_REVIEW if reasons else CaseStatus.APPROVED,
                        reasons=reasons, checks=checks)


def _locked_case(session: Session, case_id: int) -> Case | None:
    query = select(Case).where(Case.id == case_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.exec(query).first()


def assess_case(engine: Engine, case_id: int, settings: Settings, *, lookup: Any = None,
                today: date | None = None, now: datetime | None = None) -> CaseDecision | None:
    """Check a case and act on the decision (one transaction): approve and enqueue it,
    send it to review, or leave it open. A decided case is left alone (None)."""
    from backoffice.assess import system_lookup
    from validators.registry import RuleContext, run_rules

    lookup = lookup if lookup is not None else system_lookup(settings)
    now = now or utcnow()
    with Session(engine) as session:
        case = _locked_case(session, case_id)
        if case is None or case.status in _FINAL:
            return None
        docs = case_documents(session, case)
        facts = case_facts(session, case, docs)
        checks = run_rules(DocType.CLAIM_CASE, facts,
                           ctx=RuleContext(today=today or date.today(), lookup=lookup))
        if case.kind == IDENTITY:
            # An identity is no claim: its pages' own rules checked them against the core
            # system; the case joins the two sides.
            checks = [c for c in checks if c.rule in IDENTITY_RULES]
        decision = decide(docs, checks,
                          lookup_configured=lookup is not None or case.kind == IDENTITY,
                          wait_seconds=settings.case_wait_seconds, now=now)
        masked = [mask_known_facts(r, facts) for r in decision.reasons]
        before = case.status
        case.checks = [c.model_dump(mode="json") for c in checks]
        case.reason = "; ".join(masked)[:2000] or None
        case.updated_at = now
        if decision.status is CaseStatus.APPROVED:
            approve_case(session, case, docs, actor="system")
        else:
            case.status = decision.status
            session.add(case)
        if case.status is not before or decision.status is not CaseStatus.OPEN:
            append_audit(session, "case.assessed", data={
                "case": case.id, "from": before.value, "to": case.status.value,
                "failed_checks": sorted({c.rule for c in checks if not c.passed})})
        session.commit()
        return decision.model_copy(update={"reasons": masked})


def mask_known_facts(text: str, facts: Mapping[str, str | None]) -> str:
    """A reason with any personal value of the case masked (page reasons quote none, but
    a quarantine reason may quote a file name)."""
    from domain.masking import mask_known

    text = mask_text(text)
    for key, value in facts.items():
        text = mask_known(text, {key.rsplit(".", 1)[-1]: value})
    return text


def open_cases(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return list(session.exec(select(Case.id).where(
            Case.status == CaseStatus.OPEN).order_by(Case.id)).all())


def assess_open_cases(engine: Engine, settings: Settings, *, lookup: Any = None,
                      today: date | None = None) -> dict[int, str]:
    """Assess every open case again (pages that arrived since, or a wait that ran out)."""
    out = {}
    for case_id in open_cases(engine):
        decision = assess_case(engine, case_id, settings, lookup=lookup, today=today)
        if decision is not None:
            out[case_id] = decision.status.value
    return out


# --- approval and posting ------------------------------------------------------------


def case_ref(case: Case) -> str:
    """The case's reference downstream, stable forever."""
    digest = hashlib.sha256(case.ref.encode("utf-8")).hexdigest()[:10]
    return f"bo-case-{case.id}-{digest}"


def case_payloads(session: Session, case: Case, docs: list[tuple[Document, CaseDocument]]
                  ) -> dict[int, dict[str, Any]]:
    """What the case posts, by the page whose routes carry it: the (first) claim form
    carries the claim with its invoices (claims and payments systems), the (first) ID front
    the identity with the card's validity period (core system). Keyed by the case's
    reference."""
    from backoffice.outbox.enqueue import PAYLOAD_SCHEMA, document_ref

    def first(*kinds: DocType) -> Document | None:
        return next((d for d, _ in docs if d.doc_type in {k.value for k in kinds}), None)

    invoices = []
    for doc, _ in docs:
        if doc.doc_type != DocType.MEDICAL_INVOICE.value:
            continue
        values = _values(session, doc.id)
        items = [{"name": name, "amount": amount}
                 for name, _, amount in (part.rpartition(":") for part in
                                         (values.get("items") or "").split(";")) if name]
        invoices.append({**{k: values.get(k) for k in (
            "invoice_kind", "invoice_code", "invoice_number", "invoice_date", "hospital",
            "total_amount", "insurance_paid", "self_paid")}, "items": items,
            "document_ref": document_ref(doc)})
    ref = case_ref(case)
    out: dict[int, dict[str, Any]] = {}
    form = first(DocType.CLAIM_FORM)
    if form is not None:
        fields: dict[str, Any] = dict(sorted(_values(session, form.id).items()))
        fields["invoices"] = invoices
        fields["invoices_total"] = _total(invoices)
        out[form.id] = {"schema": PAYLOAD_SCHEMA, "document_ref": ref, "case": ref,
                        "doc_type": form.doc_type, "fields": fields}
    front = first(DocType.ID_CARD_FRONT, DocType.ID_CARD_TEMPORARY)
    if front is not None:
        back = first(DocType.ID_CARD_BACK)
        validity = _values(session, back.id) if back is not None else {}
        fields = _values(session, front.id)
        for k in ("valid_from", "valid_until", "issuing_authority"):
            if fields.get(k) is None and validity.get(k) is not None:
                fields[k] = validity[k]
        out[front.id] = {"schema": PAYLOAD_SCHEMA, "document_ref": ref, "case": ref,
                         "doc_type": front.doc_type, "fields": dict(sorted(fields.items()))}
    return out


def _total(invoices: list[dict[str, Any]]) -> str | None:
    from decimal import Decimal, InvalidOperation

    total = Decimal(0)
    for inv in invoices:
        try:
            total += Decimal(str(inv.get("total_amount")))
        except (InvalidOperation, ValueError):
            return None
    return f"{total:.2f}"


def approve_case(session: Session, case: Case, docs: list[tuple[Document, CaseDocument]],
                 actor: str, reason: str | None = None) -> int:
    """Approve every page of the case and write the case's outbox messages, in the caller's
    transaction. Returns the number of messages written."""
    from backoffice.outbox.enqueue import enqueue_document

    payloads = case_payloads(session, case, docs)
    written = 0
    for doc, _link in docs:
        if doc.status is Status.QUARANTINED:
            continue
        if doc.status not in (Status.PROCESSED, Status.IN_REVIEW):
            continue
        set_status(session, doc, Status.APPROVED, actor=actor,
                   reason=reason or f"approved with its case {case.id}")
        if doc.id in payloads:
            # To the routes of the page's type (targets.json), the case's payload.
            written += len(enqueue_document(session, doc, actor=actor,
                                            payload=payloads[doc.id]))
    case.status = CaseStatus.APPROVED
    case.decided_at = utcnow()
    case.decided_by = actor
    session.add(case)
    append_audit(session, "case.approved", actor=actor,
                 data={"case": case.id, "messages": written})
    if written == 0:
        _mark_posted(session, case, docs, actor)
    return written


def _mark_posted(session: Session, case: Case, docs, actor: str) -> None:
    case.status = CaseStatus.POSTED
    case.posted_at = utcnow()
    session.add(case)
    for doc, _ in docs:
        if doc.status is Status.APPROVED:
            set_status(session, doc, Status.POSTED, actor=actor,
                       reason=f"posted with its case {case.id}")
    append_audit(session, "case.posted", actor=actor, data={"case": case.id})


def refresh_posted(session: Session, doc_ids: Iterable[int], actor: str = "system") -> list[int]:
    """After the outbox delivered messages of these pages: every approved case whose
    messages are all delivered becomes ``posted``, and its pages with it (their data went
    in the case's messages). In the caller's transaction; returns the case ids."""
    from backoffice.outbox.table import OutboxMessage, OutboxStatus

    case_ids = set(session.exec(select(CaseDocument.case_id).where(
        CaseDocument.document_id.in_(list(doc_ids)))).all())
    done = []
    for case_id in sorted(case_ids):
        case = session.get(Case, case_id)
        if case is None or case.status is not CaseStatus.APPROVED:
            continue
        docs = case_documents(session, case)
        ids = [d.id for d, _ in docs]
        pending = session.exec(select(OutboxMessage.id).where(
            OutboxMessage.document_id.in_(ids), OutboxMessage.status != OutboxStatus.POSTED)
        ).first()
        if pending is not None:
            continue
        _mark_posted(session, case, docs, actor)
        done.append(case_id)
    return done


# --- review --------------------------------------------------------------------------


class CaseAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class CaseReview(BaseModel):
    """A reviewer's decision on a case: approve (with corrections) or reject."""

    decision: CaseAction
    reviewer: str = Field(min_length=1, max_length=100)
    #: "<document id>.<field>" -> the corrected value ("" clears it)
    corrections: dict[str, str | None] = Field(default_factory=dict)
    reject_reason: str | None = None
    override: bool = False


def case_digest(session: Session, case: Case,
                docs: list[tuple[Document, CaseDocument]] | None = None) -> str:
    """A digest of every page's values (what a case proposal is bound to)."""
    from backoffice.reviewers import values_digest

    docs = case_documents(session, case) if docs is None else docs
    return values_digest({f"{doc.id}.{k}": v for doc, _ in docs
                          for k, v in _values(session, doc.id).items()})


def apply_case_review(engine: Engine, ref: str, review: CaseReview, settings: Settings,
                      *, lookup: Any = None, today: date | None = None,
                      identity: Any = None) -> dict[str, Any]:
    """Apply a reviewer's decision to a case in review (one transaction): corrections are
    audited and the pages' rules and the case's checks run again; an approval with a check
    still failing needs ``override``. Raises :class:`CaseError` when it cannot be done,
    :class:`~backoffice.reviewers.IdentityError` when the reviewer cannot act.

    ``identity``: who decides (:func:`backoffice.reviewers.identify`); without it the
    review's ``reviewer`` is identified without a key (open mode only). An override or a
    change of a four-eyes field (``BACKOFFICE_FOUR_EYES``) is kept as a proposal for a
    checker (``{"pending": <proposal>}``), not applied: :func:`decide_case_proposal`."""
    from backoffice import reviewers

    reviewers.ensure_tables(engine)
    maker = identity or reviewers.identify(engine, review.reviewer, None, settings=settings)
    maker.require(reviewers.REVIEWER, "decide a case")
    if review.decision is CaseAction.REJECT and not (review.reject_reason or "").strip():
        raise CaseError("a rejection needs a reason")
    return _apply_case(engine, ref, review, settings, maker.name, lookup=lookup, today=today)


def _apply_case(engine: Engine, ref: str, review: CaseReview, settings: Settings, actor: str,
                *, lookup: Any = None, today: date | None = None, checker: str | None = None,
                proposal_id: int | None = None) -> dict[str, Any]:
    from backoffice import reviewers
    from backoffice.assess import system_lookup
    from backoffice.review import correct_field, revalidate
    from validators.registry import RuleContext, run_rules

    by = {"checker": checker, "proposal": proposal_id} if checker else {}
    lookup = lookup if lookup is not None else system_lookup(settings)
    with Session(engine) as session:
        found = find_case(session, ref)
        case = _locked_case(session, found.id) if found is not None else None
        if case is None:
            raise CaseError("no such case")
        if case.status is not CaseStatus.IN_REVIEW:
            raise CaseError(f"case {case.id} is {case.status.value}, not in_review")
        docs = case_documents(session, case)
        by_id = {d.id: d for d, _ in docs}
        if review.decision is CaseAction.REJECT:
            reason = "rejected by reviewer: " + review.reject_reason.strip()  # type: ignore[union-attr]
            for doc, _ in docs:
                if doc.status in (Status.PROCESSED, Status.IN_REVIEW):
                    set_status(session, doc, Status.REJECTED, reason=reason, actor=actor)
            case.status, case.reason = CaseStatus.REJECTED, mask_text(reason)
            case.decided_at, case.decided_by = utcnow(), actor
            session.add(case)
            append_audit(session, "case.rejected", actor=actor,
                         data={"case": case.id, "reason": review.reject_reason})
            _void_case_pending(session, case.id)
            session.commit()
            return {"case": case.ref, "status": case.status.value, "corrected": []}
        basis = case_digest(session, case, docs)
        corrected = []
        for key, new in sorted(review.corrections.items()):
            doc_part, _, name = key.partition(".")
            doc = by_id.get(int(doc_part)) if doc_part.isdigit() else None
            if doc is None:
                raise CaseError(f"{key}: the case has no document {doc_part}")
            row = session.exec(select(FieldValue).where(FieldValue.document_id == doc.id,
                                                        FieldValue.name == name)).first()
            if row is None:
                raise CaseError(f"{key}: document {doc.id} has no field {name}")
            if correct_field(session, row, new, actor, case=case.id, **by):
                corrected.append(key)
        session.flush()
        page_errors = []
        for doc, _ in docs:
            if doc.doc_type and doc.status is not Status.QUARANTINED:
                rows: list[CheckRow] = revalidate(session, doc)
                page_errors += [f"document {doc.id}: {r.rule}" for r in rows
                                if not r.passed and Severity(r.severity) >= Severity.ERROR]
        facts = case_facts(session, case, docs)
        checks = run_rules(DocType.CLAIM_CASE, facts,
                           ctx=RuleContext(today=today or date.today(), lookup=lookup))
        failing = page_errors + [c.rule for c in checks if not c.passed
                                 and c.severity >= Severity.ERROR]
        needs = reviewers.four_eyes_needs(settings, corrected, bool(failing) and review.override)
        if needs and checker is None:
            # One person may not do this alone: nothing of it is stored on the case.
            session.rollback()
            if failing and not review.override:
                return {"case": ref, "status": CaseStatus.IN_REVIEW.value, "corrected": [],
                        "failing": failing, "message": "still failing: " + ", ".join(failing)
                        + "; nothing was saved (a change of " + ", ".join(needs) + " needs a "
                        "second reviewer once it passes); correct again, reject, or approve "
                        "with override"}
            case = _locked_case(session, case.id)
            if case is None or case.status is not CaseStatus.IN_REVIEW:
                raise CaseError(f"case {ref} is no longer in_review")
            row = reviewers.propose(session, maker=actor, needs=needs, fields=corrected,
                                    failing=failing, basis=basis, case_id=case.id,
                                    proposal=review.model_dump(mode="json"))
            session.commit()
            return {"case": case.ref, "status": case.status.value, "corrected": [],
                    "failing": failing, "pending": row.id,
                    "message": reviewers.four_eyes_message(
                        needs, actor, f"case {case.id}", f"backoffice case confirm {case.id}",
                        row.id)}
        case.checks = [c.model_dump(mode="json") for c in checks]
        if failing and not review.override:
            session.add(case)
            append_audit(session, "case.still_failing", actor=actor,
                         data={"case": case.id, "rules": failing, "corrected": corrected, **by})
            _close_case_confirmed(session, proposal_id, checker, actor)
            session.commit()
            return {"case": case.ref, "status": case.status.value, "corrected": corrected,
                    "failing": failing, "message": "still failing: " + ", ".join(failing)
                    + "; correct again, reject, or approve with override"}
        append_audit(session, "case.review_approved", actor=actor, data={
            "case": case.id, "corrected": corrected, "override": bool(failing),
            "failing_rules": failing, **by})
        _close_case_confirmed(session, proposal_id, checker, actor)
        _void_case_pending(session, case.id)
        messages = approve_case(session, case, docs, actor=actor, reason=(
            f"approved with its case {case.id} by reviewer {actor}"
            + (f", confirmed by {checker}" if checker else "")
            + (" (override: " + ", ".join(failing) + ")" if failing else "")))
        session.commit()
        return {"case": case.ref, "status": case.status.value, "corrected": corrected,
                "failing": failing, "outbox_messages": messages,
                **({"checker": checker} if checker else {})}


def _close_case_confirmed(session: Session, proposal_id: int | None, checker: str | None,
                          maker: str) -> None:
    from backoffice.reviewers import ReviewProposal, close

    if proposal_id is None or checker is None:
        return
    row = session.get(ReviewProposal, proposal_id)
    close(session, row, "confirmed", checker=checker)
    append_audit(session, "case.review_confirmed", actor=checker, data={
        "case": row.case_id, "proposal": row.id, "maker": maker, "needs": row.needs,
        "fields": row.fields})


def _void_case_pending(session: Session, case_id: int) -> None:
    from backoffice.reviewers import close, pending

    for row in pending(session, case_id=case_id, all_=True):
        close(session, row, "void", note="the case was decided")


def case_proposal_view(engine: Engine, ref: str) -> Any:
    """The proposal waiting for a checker on this case
    (:class:`backoffice.review.ProposalView`, keys ``<document>.<field>``), or None."""
    from backoffice import reviewers
    from backoffice.review import ProposalView

    reviewers.ensure_tables(engine)
    with Session(engine) as session:
        case = find_case(session, ref)
        if case is None:
            raise CaseError("no such case")
        row = reviewers.pending(session, case_id=case.id)
        if row is None:
            return None
        data = row.proposal or {}
        changes = []
        for key in row.fields:
            doc_part, _, name = key.partition(".")
            now = _values(session, int(doc_part)).get(name) if doc_part.isdigit() else None
            changes.append((key, now, (data.get("corrections") or {}).get(key)))
        return ProposalView(id=row.id, case_id=case.id, maker=row.maker,
                            decision=data.get("decision", "approve"),
                            override=bool(data.get("override")), needs=row.needs,
                            failing=row.failing, changes=changes, created_at=row.created_at)


def decide_case_proposal(engine: Engine, ref: str, checker: Any, *, confirm: bool,
                         settings: Settings, reason: str | None = None, lookup: Any = None,
                         today: date | None = None) -> dict[str, Any]:
    """A checker's answer to the proposal waiting on a case: confirmed, it is applied as
    the maker decided (audited with both); refused, the case stays in review with the
    reason. Raises :class:`CaseError` or :class:`~backoffice.reviewers.IdentityError`."""
    from backoffice import reviewers

    reviewers.ensure_tables(engine)
    with Session(engine) as session:
        case = find_case(session, ref)
        if case is None:
            raise CaseError("no such case")
        row = reviewers.pending(session, case_id=case.id)
        if row is None:
            raise CaseError(f"case {case.id} has no decision waiting for a second reviewer")
        reviewers.check_checker(row, checker)
        if case.status is not CaseStatus.IN_REVIEW:
            reviewers.close(session, row, "void", note="the case was decided")
            session.commit()
            raise CaseError(f"case {case.id} is no longer in_review: proposal {row.id} is void")
        if case_digest(session, case) != row.basis:
            reviewers.close(session, row, "void", note="values changed since")
            append_audit(session, "case.proposal_void", actor=checker.name,
                         data={"case": case.id, "proposal": row.id, "maker": row.maker})
            session.commit()
            raise CaseError(f"case {case.id} changed since {row.maker} proposed: proposal "
                            f"{row.id} is void; decide it again")
        if not confirm:
            why = (reason or "").strip()
            if not why:
                raise CaseError("a refusal needs a reason")
            reviewers.close(session, row, "refused", checker=checker.name,
                            note=mask_text(why))
            append_audit(session, "case.review_refused", actor=checker.name, data={
                "case": case.id, "proposal": row.id, "maker": row.maker, "reason": why,
                "needs": row.needs, "fields": row.fields})
            case.reason = (f"proposal of {row.maker} refused by {checker.name}: "
                           f"{mask_text(why)}; " + (case.reason or ""))[:2000]
            session.add(case)
            session.commit()
            return {"case": case.ref, "status": case.status.value, "corrected": [],
                    "checker": checker.name,
                    "message": f"refused by {checker.name}: {mask_text(why)}"}
        review = CaseReview.model_validate(row.proposal)
        maker, proposal_id = row.maker, row.id
    return _apply_case(engine, ref, review, settings, maker, lookup=lookup, today=today,
                       checker=checker.name, proposal_id=proposal_id)


class CaseReviewItem(BaseModel):
    """A case in review as the reviewer sees it: why, its failed cross-document checks, and
    each page (its fields masked unless they are to be checked)."""

    case: str
    id: int
    status: str
    reasons: list[str]
    failed_checks: list[dict[str, Any]]
    pages: list[Any]  # backoffice.review.ReviewItem

    def form_fields(self) -> dict[str, tuple[str | None, str]]:
        """The fields to correct, keyed ``d<document>__<field>``: (prefill, hint)."""
        out = {}
        for page in self.pages:
            for f in page.fields:
                if f.needs_correction:
                    out[f"d{page.document_id}__{f.name}"] = (
                        f.current, f"document {page.document_id} ({page.doc_type}), "
                        f"{f.name}: CHECK " + "; ".join(mask_text(w) for w in f.why))
        return out


def form_key_to_field(key: str) -> str:
    """``d12__card_number`` -> ``12.card_number`` (the :class:`CaseReview` correction key)."""
    doc, _, name = key.removeprefix("d").partition("__")
    return f"{doc}.{name}"


def _owner(docs: list[Document], key: str) -> tuple[int, str] | None:
    """The page and field a case rule's field name (``form.account_number``,
    ``invoice.2.patient_name``, ``id.valid_until``) comes from."""
    from domain.fields import FIELDS

    role, _, rest = key.partition(".")
    if role == "invoice":
        n, _, name = rest.partition(".")
        invoices = [d for d in docs if d.doc_type == DocType.MEDICAL_INVOICE.value]
        if n.isdigit() and 0 < int(n) <= len(invoices):
            return invoices[int(n) - 1].id, name
        return None
    for doc in docs:
        if ROLES.get(doc.doc_type or "") == role and rest in FIELDS[DocType(doc.doc_type)]:
            return doc.id, rest
    return None


def case_review_item(engine: Engine, ref: str, settings: Settings | None = None
                     ) -> CaseReviewItem:
    """A case as its reviewer sees it (raises :class:`CaseError` if unknown): the pages'
    own reasons, and the fields the failed case checks read marked to be checked."""
    from backoffice.review import _rule_descriptions, load_item

    describe = _rule_descriptions()
    with Session(engine) as session:
        case = find_case(session, ref)
        if case is None:
            raise CaseError("no such case")
        docs = [d for d, _ in case_documents(session, case)]
        pages = {d.id: load_item(session, d, settings, describe) for d in docs
                 if d.status is not Status.QUARANTINED}
        failed = [c for c in case.checks or [] if not c["passed"]
                  and not (c.get("details") or {}).get("skipped")]
        for check in failed:
            for key in check.get("fields") or []:
                owner = _owner(docs, key)
                if owner is None or owner[0] not in pages:
                    continue
                for f in pages[owner[0]].fields:
                    if f.name == owner[1]:
                        f.needs_correction = True
                        f.why.append(f"{check['rule']} failed")
        return CaseReviewItem(
            case=case.ref, id=case.id, status=case.status.value,
            reasons=[r for r in (case.reason or "").split("; ") if r],
            failed_checks=[{"rule": c["rule"], "severity": c["severity"],
                            "explanation": " — ".join(p for p in (
                                describe.get(c["rule"], ""), mask_text(c.get("message") or ""))
                                if p)} for c in failed],
            pages=list(pages.values()))


def case_description_markdown(item: CaseReviewItem,
                              picture_urls: Mapping[int, str] | None = None) -> str:
    """The case review form's text: why the case needs a person, the failed checks, and
    every page's fields (masked unless to be checked), with links to the boxed pictures."""
    from backoffice.review import fields_table

    lines = [f"## Review case {mask_text(item.case)} ({len(item.pages)} pages)", ""]
    if item.reasons:
        lines += ["**Why it needs you:**", ""] + [f"- {r}" for r in item.reasons] + [""]
    if item.failed_checks:
        lines += ["**Failed cross-document checks:**", ""]
        lines += [f"- `{c['rule']}` — {c['severity']}: {c['explanation']}"
                  for c in item.failed_checks] + [""]
    for page in item.pages:
        url = (picture_urls or {}).get(page.document_id)
        link = f" — [picture](/v2{url}) ([classic UI]({url}))" if url else ""
        lines += [f"### Document {page.document_id}: {page.doc_type or 'unknown'}{link}", ""]
        lines += [f"- {r}" for r in page.reasons] + ([""] if page.reasons else [])
        lines += fields_table(page) + [""]
    lines.append("Fields to check are editable in clear below, named `d<document>__<field>`; "
                 "other personal data stays masked. Choose **approve** (your edits are kept; "
                 "tick **override** to approve although a check still fails) or **reject** "
                 "with a reason: the decision is for the whole case.")
    return "\n".join(lines)


# --- views ---------------------------------------------------------------------------


def find_case(session: Session, ref_or_id: str) -> Case | None:
    case = session.exec(select(Case).where(Case.ref == ref_or_id)).first()
    if case is None and ref_or_id.isdigit():
        case = session.get(Case, int(ref_or_id))
    return case


def case_view(engine: Engine, ref_or_id: str, *, reveal: bool = False,
              reviewer: Any = None) -> dict[str, Any] | None:
    """A case as JSON: its documents and their fields (masked unless ``reveal``), its
    cross-document checks, its decision and its times.

    ``reveal`` needs ``reviewer`` (an :class:`~backoffice.reviewers.Identity`): each page's
    personal fields shown in clear are audited (``revealed``, names only)."""
    from domain.fields import PERSONAL_FIELDS

    if reveal and reviewer is None:
        raise CaseError("revealing personal values needs a reviewer's identity (audited)")
    if reveal:
        from backoffice.reviewers import ensure_tables

        ensure_tables(engine)
    with Session(engine) as session:
        case = find_case(session, ref_or_id)
        if case is None:
            return None
        docs = case_documents(session, case)
        documents = []
        if reveal:
            from backoffice.reviewers import audit_reveal

            for doc, _ in docs:
                shown = sorted({f.name for f in session.exec(select(FieldValue).where(
                    FieldValue.document_id == doc.id)) if f.name in PERSONAL_FIELDS})
                if shown:
                    audit_reveal(session, reviewer, document_id=doc.id, fields=shown,
                                 case_id=case.id)
            session.commit()
        for doc, link in docs:
            fields = {f.name: {"value": (f.reviewed_value if f.reviewed_value is not None
                                         else f.value) if reveal else mask_value(
                                f.name, f.reviewed_value if f.reviewed_value is not None
                                else f.value),
                               "confidence": round(f.confidence, 4),
                               **({"corrected": True} if f.reviewed_value is not None else {})}
                      for f in session.exec(select(FieldValue).where(
                          FieldValue.document_id == doc.id).order_by(FieldValue.id))}
            failed = [c.rule for c in session.exec(select(CheckRow).where(
                CheckRow.document_id == doc.id, CheckRow.passed == False))]
            documents.append({
                "document": doc.id, "page": doc.page + 1, "doc_type": doc.doc_type,
                "status": doc.status.value, "page_route": link.page_route,
                "file": mask_text(doc.original_name), "failed_checks": failed,
                "reason": mask_text(doc.reason or "") or None, "fields": fields})
        times = case_times(session, case, docs)
        return {
            "case": case.ref, "id": case.id, "kind": case.kind, "status": case.status.value,
            "reason": case.reason, "batch": case.batch,
            "documents": documents, "checks": case.checks or [],
            "decision": {"status": case.status.value,
                         "reasons": [r for r in (case.reason or "").split("; ") if r],
                         "decided_by": case.decided_by},
            "times": times,
        }


def case_times(session: Session, case: Case, docs) -> dict[str, Any]:
    first = min((as_utc(d.created_at) for d, _ in docs), default=None)
    posted = as_utc(case.posted_at) if case.posted_at else None
    return {"first_page_at": first.isoformat() if first else None,
            "decided_at": as_utc(case.decided_at).isoformat() if case.decided_at else None,
            "posted_at": posted.isoformat() if posted else None,
            "handling_seconds": round((posted - first).total_seconds(), 1)
            if posted and first else None}


def cases_of_documents(engine: Engine, doc_ids: Iterable[int]) -> set[int]:
    """The cases these documents (or the files they are pages of) belong to."""
    ids = list(doc_ids)
    if not ids:
        return set()
    with Session(engine) as session:
        parents = [p for p in session.exec(select(Document.parent_id).where(
            Document.id.in_(ids))).all() if p is not None]
        return set(session.exec(select(CaseDocument.case_id).where(
            CaseDocument.document_id.in_(ids + parents))).all())


def list_cases(engine: Engine, status: str | None = None, limit: int = 200,
               ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """One masked row per case: what an operator may see in an artifact."""
    with Session(engine) as session:
        query = select(Case).order_by(Case.id)
        if status:
            query = query.where(Case.status == CaseStatus(status))
        if ids is not None:
            query = query.where(Case.id.in_(list(ids)))
        rows = []
        for case in session.exec(query.limit(limit)).all():
            docs = case_documents(session, case)
            rows.append({"case": mask_text(case.ref), "id": case.id, "kind": case.kind,
                         "status": case.status.value, "documents": len(docs), "types": ",".join(
                             sorted(d.doc_type or "-" for d, _ in docs)),
                         "reason": (case.reason or "")[:300]})
        return rows


def case_kpis(engine: Engine, since: datetime | None = None) -> dict[str, Any]:
    """Per claim case: how many went straight through, handling time from first page to
    posting, and the reasons for review (by rule or kind); the identities (an ID card's two
    sides paired) are counted apart, by status."""
    from collections import Counter

    with Session(engine) as session:
        query = select(Case)
        if since is not None:
            query = query.where(Case.created_at >= since)
        every = session.exec(query).all()
        cases = [c for c in every if c.kind != IDENTITY]
        identities = Counter(c.status.value for c in every if c.kind == IDENTITY)
        decided = [c for c in cases if c.status in _FINAL or c.status is CaseStatus.IN_REVIEW]
        straight = [c for c in decided if c.status in (CaseStatus.APPROVED, CaseStatus.POSTED)
                    and c.decided_by == "system"]
        handling = []
        reasons: Counter[str] = Counter()
        for c in cases:
            docs = case_documents(session, c)
            t = case_times(session, c, docs)["handling_seconds"]
            if t is not None:
                handling.append(t)
            for check in c.checks or []:
                if not check.get("passed") and (check.get("details") or {}).get("skipped") is None \
                        and check.get("severity") in ("warning", "error"):
                    reasons[check["rule"]] += 1
            if c.status is CaseStatus.IN_REVIEW or (c.decided_by not in (None, "system")):
                for part in (c.reason or "").split("; "):
                    if part.startswith("document "):
                        reasons["a page needs a person"] += 1
                    elif part.startswith("cross-system"):
                        reasons["cross-system checks could not run"] += 1
    handling.sort()
    return {
        "cases": len(cases),
        "decided": len(decided),
        "straight_through": len(straight),
        "straight_through_rate": round(len(straight) / len(decided), 4) if decided else None,
        "by_status": dict(Counter(c.status.value for c in cases)),
        "handling_seconds_median": handling[len(handling) // 2] if handling else None,
        "handling_seconds_max": handling[-1] if handling else None,
        "review_reasons": dict(reasons.most_common()),
        "identities_by_status": dict(identities),
    }


def case_kpis_markdown(kpis: dict[str, Any]) -> str:
    """The case KPIs as a short report (counts, durations and rule names only)."""
    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} s"

    rate = kpis["straight_through_rate"]
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(kpis["by_status"].items())) or "none"
    through = f"{kpis['straight_through']} of {kpis['decided']} decided"
    if rate is not None:
        through += f" ({rate:.1%})"
    handling = (f"median {secs(kpis['handling_seconds_median'])}, "
                f"longest {secs(kpis['handling_seconds_max'])}")
    lines = ["## Claim cases", "", f"- cases: {kpis['cases']} ({statuses})",
             f"- straight through: {through}",
             f"- handling time, first page to posting: {handling}"]
    if kpis.get("identities_by_status"):
        lines.append("- ID cards paired front and back (identities): " + ", ".join(
            f"{k} {v}" for k, v in sorted(kpis["identities_by_status"].items())))
    lines.append("")
    if kpis["review_reasons"]:
        lines += ["| reason for review | cases |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in kpis["review_reasons"].items()]
    return "\n".join(lines)
