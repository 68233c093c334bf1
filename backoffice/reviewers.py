"""Named reviewers and the second pair of eyes (maker-checker). No Prefect.

**Reviewers.** Each person who decides, checks or reveals is a row of the ``reviewer``
table: an id (the staff id, lower case), a display name, roles, an active flag, and a
personal key kept only as a salted scrypt hash (``scrypt$n$r$p$salt$hash``; the key
itself is printed once, by ``backoffice reviewers add`` or ``reset-key``, and never
stored or logged). Roles:

- ``reviewer``: decides documents and cases (approve, correct, reject, override): the
  *maker*;
- ``checker``: confirms or refuses what a maker proposed under four eyes;
- ``admin``: manages reviewers (``add``, ``disable``, ``reset-key``) once an admin exists.

Any role may reveal a masked value; every reveal is audited (``revealed``: who, which
document or case, which fields, never the values). Roles do not imply one another: give
a person both ``reviewer`` and ``checker`` to let them do both (never on the same
decision).

**Mode** (``BACKOFFICE_REVIEWERS``): ``auto`` (default) is *open* while the table is
empty — any non-empty name is accepted as a reviewer with every role and no key, which
is what the demo and a fresh installation do — and *enforced* as soon as one reviewer
is registered (disabled reviewers stay in the table, so disabling everyone does not
reopen it). ``enforced`` always requires a registered, active reviewer with their key
(with an empty table nobody can decide). A bank sets ``enforced``.

**Four eyes** (``BACKOFFICE_FOUR_EYES``, default
``override,id_number,insured_id_number,account_number,card_number``): a decision that
overrides a failing rule, or changes one of those fields, is not applied. It is stored
as a :class:`ReviewProposal` (its values encrypted at rest like the other personal
columns) and audited with the maker (``review.proposed``); a different reviewer with
the ``checker`` role confirms it (then it is applied, audited with both) or refuses it
(``review.refused``; the document or case goes back to review). A proposal is bound to
the values it was made on: if they change before the checker answers, it is void.
Once decided, a proposal keeps only the names of the fields, never their values.

**Reverse-proxy / SSO.** The only reviewer-facing HTTP surface is Prefect's UI and API
(``backoffice.server`` serves nothing of its own), which cannot pass a proxy's identity
header into a paused run's form. A deployment behind the bank's SSO proxy registers each
reviewer under the staff id the proxy authenticates (``backoffice reviewers add
<staff id>``), and the reviewer types that id and their personal key into the form;
the proxy's basic auth / SSO protects the UI, the personal key names the person.

The tables are ``reviewer`` and ``review_proposal``.
Revision 0004 (``backoffice/migrations``) creates them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import weakref
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

import backoffice.store  # noqa: F401  (the document and claim_case tables the proposals refer to)
from backoffice.audit import append_audit, utcnow
from backoffice.crypto import EncryptedJSON
from backoffice.settings import Settings, get_settings

REVIEWER = "reviewer"
CHECKER = "checker"
ADMIN = "admin"
ROLES = (REVIEWER, CHECKER, ADMIN)
#: The environment variable the CLI reads a reviewer's personal key from.
KEY_ENV = "BACKOFFICE_REVIEWER_KEY"
#: What four eyes may name besides field names.
OVERRIDE = "override"

_ID = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")
#: scrypt cost: 2**14 x 8 blocks = 16 MiB and ~50 ms a check.
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


class IdentityError(ValueError):
    """Who is acting cannot be established or may not do this (unknown id, wrong key,
    disabled, missing role, the maker checking their own decision)."""


class Reviewer(SQLModel, table=True):
    """A person who reviews, checks or administers. The key is never stored, only its
    salted scrypt hash."""

    __tablename__ = "reviewer"

    name: str = Field(primary_key=True, max_length=100)  # the staff id, lower case
    display_name: str | None = Field(default=None, max_length=200)
    roles: str = Field(max_length=100)  # comma-separated, sorted: "checker,reviewer"
    active: bool = True
    key_hash: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    key_set_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = Field(default=None,
                                         sa_column=Column(DateTime(timezone=True)))

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)


class ReviewProposal(SQLModel, table=True):
    """A decision waiting for a second reviewer (four eyes), on a document or a case."""

    __tablename__ = "review_proposal"

    id: int | None = Field(default=None, primary_key=True)
    document_id: int | None = Field(default=None, foreign_key="document.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="claim_case.id", index=True)
    maker: str = Field(max_length=100)
    #: pending | confirmed | refused | void
    status: str = Field(default="pending", max_length=20, index=True)
    #: What needs the second reviewer: field names and/or "override".
    needs: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    #: The fields the proposal changes (names only).
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    #: The rules still failing that an override would approve.
    failing: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    #: The decision itself (values included) while pending; emptied once decided.
    proposal: dict[str, Any] | None = Field(
        default=None, sa_column=Column(EncryptedJSON("review_proposal.proposal")))
    #: A digest of the values the proposal was made on: a change voids it.
    basis: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = Field(default=None,
                                        sa_column=Column(DateTime(timezone=True)))
    checker: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=500)


_READY: weakref.WeakSet = weakref.WeakSet()


def ensure_tables(engine: Engine) -> None:
    """Make sure the store's schema holds the reviewer tables (revision 0004; once per
    engine: ``make_engine`` has usually done it already)."""
    if engine in _READY:
        return
    from backoffice.migrations import prepare_schema

    prepare_schema(engine)
    _READY.add(engine)


# --- keys ------------------------------------------------------------------------------


def new_key() -> str:
    """A fresh personal key (144 random bits, URL-safe)."""
    return secrets.token_urlsafe(18)


def hash_key(key: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def check_key(key: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(key.encode("utf-8"), salt=base64.b64decode(salt), dklen=32,
                             n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


# --- identity --------------------------------------------------------------------------


class Identity(BaseModel, frozen=True):
    """Who acts: a registered reviewer who gave their key, or (open mode) a name."""

    name: str
    roles: frozenset[str]
    authenticated: bool

    def require(self, role: str, doing: str) -> None:
        if role not in self.roles:
            raise IdentityError(f"reviewer {self.name} does not have the {role} role, "
                                f"needed to {doing}")

    def same_person(self, other: str) -> bool:
        return self.name.strip().casefold() == other.strip().casefold()


def normal_id(name: str) -> str:
    return (name or "").strip().lower()


def registered(engine: Engine) -> int:
    """How many reviewers are registered (active or not)."""
    ensure_tables(engine)
    with Session(engine) as session:
        return len(session.exec(select(Reviewer.name)).all())


def mode(engine: Engine, settings: Settings | None = None) -> str:
    """``open`` or ``enforced``: what ``BACKOFFICE_REVIEWERS`` means for this store now."""
    settings = settings or get_settings()
    if settings.reviewers == "enforced":
        return "enforced"
    return "enforced" if registered(engine) else "open"


def identify(engine: Engine, name: str | None, key: str | None, *,
             settings: Settings | None = None) -> Identity:
    """The reviewer acting, checked: in open mode any non-empty name; enforced, a
    registered, active reviewer whose key matches. Raises :class:`IdentityError` (a
    failed attempt is audited, ``reviewer.refused``, without the key)."""
    typed = (name or "").strip()
    if not typed:
        raise IdentityError("the reviewer's id is required (it goes into the audit trail)")
    if mode(engine, settings) == "open":
        return Identity(name=typed[:100], roles=frozenset(ROLES), authenticated=False)
    rid = normal_id(typed)
    if not key:
        raise IdentityError(f"reviewer {rid}: the personal key is required ({KEY_ENV} or "
                            "the prompt at a terminal; 'Your personal key' in the form)")
    with Session(engine) as session:
        row = session.get(Reviewer, rid) if _ID.match(rid) else None
        if row is None or not check_key(key, row.key_hash):
            _refused(session, rid, "unknown id or wrong key")
            raise IdentityError(f"reviewer {rid}: unknown id or wrong key")
        if not row.active:
            _refused(session, rid, "disabled")
            raise IdentityError(f"reviewer {rid} is disabled")
        return Identity(name=row.name, roles=row.role_set, authenticated=True)


def _refused(session: Session, rid: str, why: str) -> None:
    append_audit(session, "reviewer.refused", actor=rid[:100] if _ID.match(rid) else "?",
                 data={"why": why})
    session.commit()


def open_identity(name: str) -> Identity:
    """A name taken as given (tests and open mode only)."""
    return Identity(name=name.strip(), roles=frozenset(ROLES), authenticated=False)


# --- management ------------------------------------------------------------------------


class ReviewerInfo(BaseModel):
    name: str
    display_name: str | None
    roles: list[str]
    active: bool
    created_at: datetime
    key_set_at: datetime
    disabled_at: datetime | None


def _info(row: Reviewer) -> ReviewerInfo:
    return ReviewerInfo(name=row.name, display_name=row.display_name,
                        roles=sorted(row.role_set), active=row.active,
                        created_at=row.created_at, key_set_at=row.key_set_at,
                        disabled_at=row.disabled_at)


def admin_needed(engine: Engine) -> bool:
    """Managing reviewers needs an admin's identity once an active admin exists (the
    first reviewers, admin included, are added by the operator setting up the store)."""
    ensure_tables(engine)
    with Session(engine) as session:
        return any(ADMIN in r.role_set for r in session.exec(
            select(Reviewer).where(Reviewer.active == True)).all())


def _check_admin(engine: Engine, admin: Identity | None) -> str:
    if not admin_needed(engine):
        return admin.name if admin is not None else "setup"
    if admin is None or not admin.authenticated:
        raise IdentityError("managing reviewers needs an admin: --admin ID with their key")
    admin.require(ADMIN, "manage reviewers")
    return admin.name


def add_reviewer(engine: Engine, name: str, roles: list[str], *,
                 display_name: str | None = None, admin: Identity | None = None
                 ) -> tuple[ReviewerInfo, str]:
    """Register a reviewer; returns their info and their personal key (shown once)."""
    rid = normal_id(name)
    if not _ID.match(rid):
        raise IdentityError("a reviewer id is 1-100 letters, digits, '.', '_', '@' or '-'")
    wanted = sorted(set(roles))
    unknown = [r for r in wanted if r not in ROLES]
    if not wanted or unknown:
        raise IdentityError(f"roles are {', '.join(ROLES)} (at least one); got "
                            f"{', '.join(unknown) or 'none'}")
    actor = _check_admin(engine, admin)
    key = new_key()
    with Session(engine) as session:
        if session.get(Reviewer, rid) is not None:
            raise IdentityError(f"reviewer {rid} exists already (reset-key, or disable it)")
        row = Reviewer(name=rid, display_name=(display_name or "").strip() or None,
                       roles=",".join(wanted), key_hash=hash_key(key))
        session.add(row)
        append_audit(session, "reviewer.added", actor=actor,
                     data={"reviewer": rid, "roles": wanted})
        session.commit()
        session.refresh(row)
        return _info(row), key


def disable_reviewer(engine: Engine, name: str, *, admin: Identity | None = None
                     ) -> ReviewerInfo:
    actor = _check_admin(engine, admin)
    rid = normal_id(name)
    with Session(engine) as session:
        row = session.get(Reviewer, rid)
        if row is None:
            raise IdentityError(f"no reviewer {rid}")
        if row.active:
            row.active, row.disabled_at = False, utcnow()
            session.add(row)
            append_audit(session, "reviewer.disabled", actor=actor, data={"reviewer": rid})
            session.commit()
            session.refresh(row)
        return _info(row)


def reset_key(engine: Engine, name: str, *, admin: Identity | None = None
              ) -> tuple[ReviewerInfo, str]:
    """A new personal key for a reviewer (the old one stops working); shown once."""
    actor = _check_admin(engine, admin)
    rid = normal_id(name)
    key = new_key()
    with Session(engine) as session:
        row = session.get(Reviewer, rid)
        if row is None:
            raise IdentityError(f"no reviewer {rid}")
        row.key_hash, row.key_set_at = hash_key(key), utcnow()
        session.add(row)
        append_audit(session, "reviewer.key_reset", actor=actor, data={"reviewer": rid})
        session.commit()
        session.refresh(row)
        return _info(row), key


def list_reviewers(engine: Engine) -> list[ReviewerInfo]:
    ensure_tables(engine)
    with Session(engine) as session:
        return [_info(r) for r in session.exec(select(Reviewer).order_by(Reviewer.name))]


# --- reveal ----------------------------------------------------------------------------


def audit_reveal(session: Session, who: Identity, *, document_id: int | None,
                 fields: list[str], case_id: int | None = None, what: str = "value") -> None:
    """Record that ``who`` saw these fields of a document (or a case's page) in clear.
    Field names only, never values. In the caller's transaction."""
    append_audit(session, "revealed", document_id=document_id, actor=who.name, data={
        "fields": sorted(fields), "what": what, "authenticated": who.authenticated,
        **({"case": case_id} if case_id is not None else {})})


# --- four eyes -------------------------------------------------------------------------


def four_eyes_needs(settings: Settings, changed_fields: list[str], override_used: bool
                    ) -> list[str]:
    """What of a decision needs a second reviewer: the changed fields named by
    ``BACKOFFICE_FOUR_EYES`` (``doc.field`` keys count by their field), and ``override``
    when an override approves a failing rule and four eyes names it."""
    named = settings.four_eyes_set
    needs = sorted({f for f in changed_fields if f.rpartition(".")[2] in named})
    if override_used and OVERRIDE in named:
        needs.append(OVERRIDE)
    return needs


def four_eyes_message(needs: list[str], maker: str, subject: str, confirm: str,
                      proposal_id: int) -> str:
    """The refusal a maker acting alone gets, naming what to ask of whom."""
    parts = []
    if OVERRIDE in needs:
        parts.append("an override")
    fields = [n for n in needs if n != OVERRIDE]
    if fields:
        parts.append("a correction of " + ", ".join(fields))
    what = " and ".join(parts)
    return (f"{what} needs a second reviewer (four eyes): {maker}'s decision on {subject} "
            f"is kept as proposal {proposal_id}, not applied; ask a checker to run "
            f"`{confirm}` (or to answer the checker form of its review run in the Prefect UI)")


def values_digest(values: dict[str, str | None]) -> str:
    """A digest of the values a proposal is made on (in the store only)."""
    blob = json.dumps(sorted(values.items()), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def propose(session: Session, *, maker: str, needs: list[str], fields: list[str],
            failing: list[str], proposal: dict[str, Any], basis: str,
            document_id: int | None = None, case_id: int | None = None) -> ReviewProposal:
    """Keep a decision for a checker (earlier pending ones of the same document or case
    become void) and audit it with the maker. In the caller's transaction."""
    for old in pending(session, document_id=document_id, case_id=case_id, all_=True):
        close(session, old, "void", note="superseded by a newer proposal")
    row = ReviewProposal(document_id=document_id, case_id=case_id, maker=maker, needs=needs,
                         fields=fields, failing=failing, proposal=proposal, basis=basis)
    session.add(row)
    session.flush()
    append_audit(session, "review.proposed", document_id=document_id, actor=maker, data={
        "proposal": row.id, "needs": needs, "fields": fields, "failing_rules": failing,
        **({"case": case_id} if case_id is not None else {})})
    return row


def pending(session: Session, *, document_id: int | None = None, case_id: int | None = None,
            all_: bool = False):
    """The pending proposal of a document or case (the newest), or all of them."""
    query = select(ReviewProposal).where(ReviewProposal.status == "pending")
    if document_id is not None:
        query = query.where(ReviewProposal.document_id == document_id)
    if case_id is not None:
        query = query.where(ReviewProposal.case_id == case_id)
    rows = session.exec(query.order_by(ReviewProposal.id.desc())).all()
    return rows if all_ else (rows[0] if rows else None)


def close(session: Session, row: ReviewProposal, status: str, *, checker: str | None = None,
          note: str | None = None) -> None:
    """Decide a proposal: its values go, its field names stay. In the caller's
    transaction."""
    row.status, row.checker, row.decided_at = status, checker, utcnow()
    row.note = (note or "")[:500] or None
    row.proposal = {}
    session.add(row)


def check_checker(row: ReviewProposal, checker: Identity) -> None:
    """The checker is another person with the checker role."""
    checker.require(CHECKER, "confirm or refuse a four-eyes decision")
    if checker.same_person(row.maker):
        raise IdentityError(f"the checker must be a different reviewer from the maker "
                            f"({row.maker}): four eyes")
