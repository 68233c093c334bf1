"""Named reviewers and four eyes, without Prefect: personal keys kept only as scrypt
hashes; who may act in open and enforced mode; an override or an ID/account correction by
one reviewer is kept as a proposal and refused with a clear message until a different
reviewer with the checker role confirms it; every reveal is audited with the reviewer."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from case_support import CARD, PAGES, make_case
from sqlmodel import Session, select
from test_review_flow import BAD_ID, FRONT, make_review_doc
from typer.testing import CliRunner

from backoffice import reviewers
from backoffice.audit import AuditEvent, verify_audit_chain
from backoffice.review import (
    ReviewDecision,
    ReviewError,
    apply_review,
    decide_proposal,
    proposal_view,
)
from backoffice.reviewers import IdentityError, ReviewProposal, identify
from backoffice.settings import Settings, get_settings
from backoffice.store import Document, FieldValue, Status
from validators.rules._samples import CLAIM, LOOKUP

TODAY = datetime.date(2025, 4, 1)


@pytest.fixture
def store(tmp_path):
    """A fresh store of its own (reviewers registered here do not leak to other tests)."""
    from backoffice.runtime import db_engine

    return db_engine(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    """The CLI's settings pointed at a fresh store."""
    from backoffice.runtime import db_engine

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", url)
    monkeypatch.delenv(reviewers.KEY_ENV, raising=False)
    get_settings.cache_clear()
    yield db_engine(url)
    monkeypatch.delenv("BACKOFFICE_DATABASE_URL", raising=False)
    get_settings.cache_clear()


def _events(engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)
                                 .order_by(AuditEvent.id)))


def _team(engine) -> dict[str, str]:
    """A maker, a checker, a reviewer who is both, and their keys."""
    keys = {}
    for name, roles in (("maker.li", ["reviewer"]), ("checker.wang", ["checker"]),
                        ("both.zhao", ["reviewer", "checker"])):
        _, keys[name] = reviewers.add_reviewer(engine, name, roles)
    return keys


def _who(engine, name, keys):
    return identify(engine, name, keys[name])


# --- keys and identities -----------------------------------------------------------------


def test_a_personal_key_is_kept_only_as_a_salted_scrypt_hash(store):
    info, key = reviewers.add_reviewer(store, "Alice.Ma", ["reviewer"], display_name="马丽")
    assert info.name == "alice.ma" and info.roles == ["reviewer"] and len(key) >= 24
    with Session(store) as session:
        row = session.get(reviewers.Reviewer, "alice.ma")
    assert row.key_hash.startswith("scrypt$16384$8$1$") and key not in row.key_hash
    assert reviewers.check_key(key, row.key_hash) and not reviewers.check_key(key + "x",
                                                                              row.key_hash)
    other = reviewers.hash_key(key)
    assert other != row.key_hash and reviewers.check_key(key, other)  # salted
    added = _events(store, "reviewer.added")
    assert added[0].data == {"reviewer": "alice.ma", "roles": ["reviewer"]}
    assert key not in json.dumps([e.data for e in _events(store, "reviewer.added")])


def test_open_until_a_reviewer_is_registered_then_enforced(store):
    assert reviewers.mode(store) == "open"
    anyone = identify(store, "  Anyone ", None)
    assert anyone.name == "Anyone" and not anyone.authenticated
    assert anyone.roles == frozenset(reviewers.ROLES)
    keys = _team(store)
    assert reviewers.mode(store) == "enforced"
    with pytest.raises(IdentityError, match="personal key is required"):
        identify(store, "maker.li", None)
    with pytest.raises(IdentityError, match="unknown id or wrong key"):
        identify(store, "maker.li", keys["checker.wang"])
    with pytest.raises(IdentityError, match="unknown id or wrong key"):
        identify(store, "nobody", keys["maker.li"])
    me = identify(store, " MAKER.LI ", keys["maker.li"])
    assert me.name == "maker.li" and me.authenticated and me.roles == {"reviewer"}
    reviewers.disable_reviewer(store, "maker.li")
    with pytest.raises(IdentityError, match="maker.li is disabled"):
        identify(store, "maker.li", keys["maker.li"])
    refused = _events(store, "reviewer.refused")
    assert [e.data["why"] for e in refused] == ["unknown id or wrong key",
                                                "unknown id or wrong key", "disabled"]
    assert all(keys["maker.li"] not in json.dumps(e.data) for e in refused)
    # A new key replaces the old one.
    _, new = reviewers.reset_key(store, "checker.wang")
    with pytest.raises(IdentityError, match="wrong key"):
        identify(store, "checker.wang", keys["checker.wang"])
    assert identify(store, "checker.wang", new).authenticated


def test_enforced_mode_accepts_nobody_while_no_reviewer_is_registered(store):
    enforced = Settings(reviewers="enforced")
    assert reviewers.mode(store, enforced) == "enforced"
    with pytest.raises(IdentityError, match="key is required"):
        identify(store, "alice", None, settings=enforced)
    with pytest.raises(IdentityError, match="wrong key"):
        identify(store, "alice", "guess", settings=enforced)


def test_managing_reviewers_needs_an_admin_once_one_exists(store):
    _, admin_key = reviewers.add_reviewer(store, "root.admin", ["admin"])
    with pytest.raises(IdentityError, match="needs an admin"):
        reviewers.add_reviewer(store, "late", ["reviewer"])
    keys = _team_as_admin(store, identify(store, "root.admin", admin_key))
    with pytest.raises(IdentityError, match="admin role"):
        reviewers.disable_reviewer(store, "root.admin",
                                   admin=identify(store, "maker.li", keys["maker.li"]))
    assert [e.actor for e in _events(store, "reviewer.added")] == ["setup", "root.admin"]


def _team_as_admin(store, admin):
    _, key = reviewers.add_reviewer(store, "maker.li", ["reviewer"], admin=admin)
    return {"maker.li": key}


def test_four_eyes_names_only_known_fields():
    assert Settings().four_eyes_set == {"override", "id_number", "insured_id_number",
                                        "account_number", "card_number"}
    assert Settings(four_eyes=" override , phone ").four_eyes_set == {"override", "phone"}
    assert Settings(four_eyes="").four_eyes_set == frozenset()
    with pytest.raises(ValueError, match="unknown field"):
        Settings(four_eyes="override,claimant_id_number")


# --- four eyes on a document -------------------------------------------------------------


def test_an_override_alone_is_refused_and_a_different_checker_confirms_it(store):
    keys = _team(store)
    doc_id = make_review_doc({**FRONT, "id_number": BAD_ID}, engine=store,
                             reason="id_number.checksum (error): check digit is wrong")
    maker = _who(store, "maker.li", keys)
    alone = apply_review(store, doc_id, ReviewDecision(decision="approve", reviewer="maker.li",
                                                       override=True), identity=maker)
    assert alone.status == "in_review" and alone.pending and alone.outbox_messages == 0
    assert alone.message.startswith("an override needs a second reviewer (four eyes): "
                                    f"maker.li's decision on document {doc_id} is kept as "
                                    f"proposal {alone.pending}, not applied; ask a checker "
                                    f"to run `backoffice review confirm {doc_id}`")
    with Session(store) as session:
        assert session.get(Document, doc_id).status is Status.IN_REVIEW
    # A reviewer without a key, one without the checker role, and the maker are refused.
    with pytest.raises(IdentityError, match="key is required"):
        apply_review(store, doc_id, ReviewDecision(decision="approve", reviewer="maker.li",
                                                   override=True))
    with pytest.raises(IdentityError, match="checker role"):
        decide_proposal(store, doc_id, maker, confirm=True)
    both = _who(store, "both.zhao", keys)
    view = proposal_view(store, doc_id)
    assert (view.maker, view.needs, view.failing) == ("maker.li", ["override"],
                                                      ["id_number.checksum"])
    done = decide_proposal(store, doc_id, both, confirm=True)
    assert done.status == "approved" and done.checker == "both.zhao" and done.outbox_messages
    events = {e.action: e for e in _events(store, "review.approved")
              + _events(store, "review.confirmed") + _events(store, "review.proposed")}
    assert events["review.proposed"].actor == "maker.li"
    assert events["review.proposed"].data["needs"] == ["override"]
    assert events["review.approved"].actor == "maker.li"
    assert events["review.approved"].data["checker"] == "both.zhao"
    assert events["review.confirmed"].actor == "both.zhao"
    assert events["review.confirmed"].data["maker"] == "maker.li"
    with Session(store) as session:
        row = session.get(ReviewProposal, alone.pending)
        assert (row.status, row.checker, row.proposal) == ("confirmed", "both.zhao", {})
        assert not verify_audit_chain(session)


def test_the_checker_must_be_another_person(store):
    keys = _team(store)
    doc_id = make_review_doc({**FRONT, "id_number": BAD_ID}, engine=store,
                             reason="id_number.checksum (error): check digit is wrong")
    both = _who(store, "both.zhao", keys)
    out = apply_review(store, doc_id, ReviewDecision(
        decision="correct", reviewer="both.zhao",
        corrections={"id_number": FRONT["id_number"]}), identity=both)
    assert out.pending and "a correction of id_number needs a second reviewer" in out.message
    with Session(store) as session:  # nothing of it on the document yet
        f = session.exec(select(FieldValue).where(FieldValue.document_id == doc_id,
                                                  FieldValue.name == "id_number")).one()
        assert f.reviewed_value is None
    with pytest.raises(IdentityError, match="different reviewer from the maker"):
        decide_proposal(store, doc_id, both, confirm=True)
    checker = _who(store, "checker.wang", keys)
    with pytest.raises(ReviewError, match="refusal needs a reason"):
        decide_proposal(store, doc_id, checker, confirm=False)
    refused = decide_proposal(store, doc_id, checker, confirm=False,
                              reason="the card says otherwise")
    assert refused.status == "in_review" and "refused by checker.wang" in refused.message
    with Session(store) as session:
        doc = session.get(Document, doc_id)
        assert doc.status is Status.IN_REVIEW and "refused by checker.wang" in doc.reason
    assert proposal_view(store, doc_id) is None
    assert _events(store, "review.refused")[0].data["maker"] == "both.zhao"


def test_a_correction_that_still_fails_is_returned_at_once_and_a_changed_document_voids(store):
    keys = _team(store)
    doc_id = make_review_doc({**FRONT, "id_number": BAD_ID}, engine=store,
                             reason="id_number.checksum (error): check digit is wrong")
    maker = _who(store, "maker.li", keys)
    still = apply_review(store, doc_id, ReviewDecision(
        decision="correct", reviewer="maker.li",
        corrections={"id_number": "422823194201039462"}), identity=maker)
    assert still.pending is None and "nothing was saved" in still.message
    assert not _events(store, "review.corrected")
    out = apply_review(store, doc_id, ReviewDecision(
        decision="correct", reviewer="maker.li",
        corrections={"id_number": FRONT["id_number"]}), identity=maker)
    # Someone changes another value meanwhile: the proposal no longer holds.
    with Session(store) as session:
        name = session.exec(select(FieldValue).where(FieldValue.document_id == doc_id,
                                                     FieldValue.name == "name")).one()
        name.reviewed_value = "白煜"
        session.add(name)
        session.commit()
    with pytest.raises(ReviewError, match="changed since maker.li proposed"):
        decide_proposal(store, doc_id, _who(store, "checker.wang", keys), confirm=True)
    with Session(store) as session:
        assert session.get(ReviewProposal, out.pending).status == "void"


def test_without_four_eyes_one_reviewer_decides(store):
    keys = _team(store)
    doc_id = make_review_doc({**FRONT, "id_number": BAD_ID}, engine=store,
                             reason="id_number.checksum (error): check digit is wrong")
    out = apply_review(store, doc_id, ReviewDecision(
        decision="approve", reviewer="maker.li", override=True),
        identity=_who(store, "maker.li", keys), settings=Settings(four_eyes=""))
    assert out.status == "approved" and out.pending is None


# --- four eyes on a case -----------------------------------------------------------------


def _case_in_review(engine, settings) -> int:
    """A claim case whose bank card does not match the account: in review."""
    from backoffice.cases import assess_case
    from backoffice.store import CaseStatus

    case_id = make_case(engine, f"C-{uuid.uuid4().hex[:6]}",
                        {**PAGES, "bank_card": {**CARD, "card_number": "6222020200112233453"}})
    assert assess_case(engine, case_id, settings, lookup=LOOKUP,
                       today=TODAY).status is CaseStatus.IN_REVIEW
    return case_id


def test_a_case_override_waits_for_a_checker(store, tmp_path):
    from backoffice.cases import (
        CaseAction,
        CaseReview,
        apply_case_review,
        case_proposal_view,
        decide_case_proposal,
    )
    from backoffice.store import Case, CaseStatus

    settings = Settings(data_dir=tmp_path / "var")
    keys = _team(store)
    case_id = _case_in_review(store, settings)
    maker = _who(store, "both.zhao", keys)
    out = apply_case_review(store, str(case_id), CaseReview(
        decision=CaseAction.APPROVE, reviewer="both.zhao", override=True), settings,
        lookup=LOOKUP, today=TODAY, identity=maker)
    assert out["pending"] and out["message"].startswith("an override needs a second reviewer")
    assert f"backoffice case confirm {case_id}" in out["message"]
    view = case_proposal_view(store, str(case_id))
    assert view.maker == "both.zhao" and "case.bank_card_matches_account" in view.failing
    with pytest.raises(IdentityError, match="different reviewer"):
        decide_case_proposal(store, str(case_id), maker, confirm=True, settings=settings)
    with Session(store) as session:
        assert session.get(Case, case_id).status is CaseStatus.IN_REVIEW
    done = decide_case_proposal(store, str(case_id), _who(store, "checker.wang", keys),
                                confirm=True, settings=settings, lookup=LOOKUP, today=TODAY)
    assert done["status"] == "approved" and done["checker"] == "checker.wang"
    with Session(store) as session:
        assert session.get(Case, case_id).decided_by == "both.zhao"
    confirmed = _events(store, "case.review_confirmed")[0]
    assert (confirmed.actor, confirmed.data["maker"]) == ("checker.wang", "both.zhao")


# --- the command line --------------------------------------------------------------------


def _cli(*args, **env):
    from cli.main import app

    return CliRunner().invoke(app, list(args), env=env or None)


def test_reviewers_commands_print_the_key_once_and_never_list_it(cli_store):
    added = _cli("reviewers", "add", "Clerk-7", "--role", "reviewer", "--role", "checker",
                 "--display-name", "王芳")
    assert added.exit_code == 0, added.output
    key = added.stdout.strip().splitlines()[-1]
    assert identify(cli_store, "clerk-7", key).roles == {"reviewer", "checker"}
    listed = _cli("reviewers", "list", "--json")
    row = json.loads(listed.stdout)
    assert row["name"] == "clerk-7" and row["roles"] == ["checker", "reviewer"]
    assert key not in listed.stdout and "scrypt" not in listed.stdout
    assert _cli("reviewers", "add", "x", "--role", "boss").exit_code == 2
    reset = _cli("reviewers", "reset-key", "clerk-7")
    new = reset.stdout.strip().splitlines()[-1]
    assert reset.exit_code == 0 and new != key
    assert _cli("reviewers", "disable", "clerk-7").exit_code == 0
    with pytest.raises(IdentityError, match="disabled"):
        identify(cli_store, "clerk-7", new)


def test_cli_decide_override_alone_exits_4_and_a_checker_confirms(cli_store):
    keys = _team(cli_store)
    doc_id = make_review_doc({**FRONT, "id_number": BAD_ID}, engine=cli_store,
                             reason="id_number.checksum (error): check digit is wrong")
    wrong = _cli("review", "decide", str(doc_id), "-d", "approve", "-r", "maker.li",
                 "--override", BACKOFFICE_REVIEWER_KEY="not-the-key")
    assert wrong.exit_code == 2 and "wrong key" in wrong.output
    alone = _cli("review", "decide", str(doc_id), "-d", "approve", "-r", "maker.li",
                 "--override", BACKOFFICE_REVIEWER_KEY=keys["maker.li"])
    assert alone.exit_code == 4, alone.output
    assert "an override needs a second reviewer (four eyes)" in alone.output
    assert f"backoffice review confirm {doc_id}" in " ".join(alone.output.split())
    self_check = _cli("review", "confirm", str(doc_id), "-r", "maker.li", "--yes",
                      BACKOFFICE_REVIEWER_KEY=keys["maker.li"])
    assert self_check.exit_code == 2 and "checker role" in self_check.output
    # The key may also be typed at the hidden prompt.
    from cli.main import app

    confirmed = CliRunner().invoke(app, ["review", "confirm", str(doc_id), "-r",
                                         "checker.wang", "--yes"],
                                   input=keys["checker.wang"] + "\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert keys["checker.wang"] not in confirmed.output
    with Session(cli_store) as session:
        assert session.get(Document, doc_id).status is Status.APPROVED


def test_every_reveal_needs_a_reviewer_and_is_audited(cli_store):
    keys = _team(cli_store)
    doc_id = make_review_doc(FRONT, engine=cli_store, reason="name: confidence 0.62",
                             confidences={"name": 0.62})
    masked = _cli("review", "show", str(doc_id))
    assert masked.exit_code == 0 and FRONT["id_number"] not in masked.output
    anonymous = _cli("review", "show", str(doc_id), "--reveal", "id_number")
    assert anonymous.exit_code == 2 and "needs --reviewer" in anonymous.output
    assert FRONT["id_number"] not in anonymous.output
    wrong = _cli("review", "show", str(doc_id), "--reveal", "id_number", "-r", "maker.li",
                 BACKOFFICE_REVIEWER_KEY="nope")
    assert wrong.exit_code == 2 and FRONT["id_number"] not in wrong.output
    shown = _cli("review", "show", str(doc_id), "--reveal", "id_number", "--reveal", "address",
                 "-r", "checker.wang", BACKOFFICE_REVIEWER_KEY=keys["checker.wang"])
    assert shown.exit_code == 0, shown.output
    assert FRONT["id_number"] in shown.output
    revealed = _events(cli_store, "revealed")
    assert [(e.actor, e.document_id, e.data["fields"]) for e in revealed] == [
        ("checker.wang", doc_id, ["address", "id_number"])]
    assert revealed[0].data["authenticated"] is True
    assert FRONT["id_number"] not in json.dumps(revealed[0].data)
    # A case: each page's personal fields, audited per page with the case.
    case_id = make_case(cli_store, f"C-{uuid.uuid4().hex[:6]}")
    assert _cli("case", "show", str(case_id), "--reveal").exit_code == 2
    view = _cli("case", "show", str(case_id), "--reveal", "-r", "maker.li",
                BACKOFFICE_REVIEWER_KEY=keys["maker.li"])
    assert view.exit_code == 0, view.output
    assert CLAIM["account_number"] in view.stdout
    pages = [e for e in _events(cli_store, "revealed") if e.data.get("case") == case_id]
    assert pages and {e.actor for e in pages} == {"maker.li"}
    assert any("account_number" in e.data["fields"] for e in pages)
    assert CLAIM["account_number"] not in json.dumps([e.data for e in pages])


def test_erasure_clears_a_pending_case_proposal(store, tmp_path):
    """A correction waiting for a checker on a case holds the case's values: erasing the
    customer clears it like a page's own proposal."""
    from backoffice.cases import CaseAction, CaseReview, apply_case_review
    from backoffice.retention import erase_customer
    from backoffice.store import CaseDocument

    settings = Settings(data_dir=tmp_path / "var")
    keys = _team(store)
    case_id = _case_in_review(store, settings)
    with Session(store) as session:
        card_doc = next(d.id for d in session.exec(select(Document).join(
            CaseDocument, CaseDocument.document_id == Document.id).where(
            CaseDocument.case_id == case_id)) if d.doc_type == "bank_card")
    new_number = "6222020200112233446"
    out = apply_case_review(store, str(case_id), CaseReview(
        decision=CaseAction.APPROVE, reviewer="both.zhao",
        corrections={f"{card_doc}.card_number": new_number}), settings,
        lookup=LOOKUP, today=TODAY, identity=_who(store, "both.zhao", keys))
    assert out["pending"]
    with Session(store) as session:
        pending = session.exec(select(ReviewProposal).where(
            ReviewProposal.case_id == case_id)).one()
        assert new_number in json.dumps(pending.proposal)
    erase_customer(store, settings, CLAIM["insured_id_number"], actor="dpo-1",
                   include_open=True)
    with Session(store) as session:
        row = session.exec(select(ReviewProposal).where(
            ReviewProposal.case_id == case_id)).one()
        assert row.proposal is None
        assert new_number not in json.dumps(row.model_dump(mode="json"))
