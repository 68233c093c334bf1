"""The outbox on SQLite and PostgreSQL: approval and messages in one transaction, the drain
against the real sandbox, dead-letter, leases, redrive, purge, reconciliation, the CLI and
the `drain-outbox` flow through Prefect."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import timedelta

import pytest
from conftest import PG_ADMIN_URL, _pg_available
from outbox_support import fresh_pg_database, make_documents
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backoffice.audit import AuditEvent, verify_audit_chain
from backoffice.connectors import build_connectors
from backoffice.outbox import (
    DrainPolicy,
    DrainReport,
    OutboxMessage,
    OutboxStatus,
    approve_document,
    enqueue_document,
    purge,
    reconcile,
    redrive,
    run_drain,
    utcnow,
)
from backoffice.outbox.drain import _claim, _Outcome, _record
from backoffice.sandbox.common import Faults
from backoffice.sandbox.runner import run_sandbox
from backoffice.store import Document, FieldValue, Status, make_engine

FAST = DrainPolicy(batch_size=32, max_workers=4, lease_seconds=5, max_attempts=4,
                   backoff_base=0.01, backoff_max=0.05)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        yield eng
        eng.dispose()
        return
    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    with fresh_pg_database(PG_ADMIN_URL) as url:
        eng = make_engine(url)
        yield eng
        eng.dispose()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with run_sandbox(tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


@pytest.fixture
def config(sandbox):
    sandbox.set_faults(None)
    yield sandbox.targets_config(timeout_seconds=2)
    sandbox.set_faults(None)


@pytest.fixture
def tag(request):
    return request.node.name


def _front(session, sha, values=None) -> Document:
    doc = Document(sha256=sha, original_name="front.jpg", stored_path="/nowhere",
                   doc_type="id_card_front", status=Status.PROCESSED)
    session.add(doc)
    session.flush()
    values = values or {"id_number": "11010519491231002X", "name": "李秀英",
                        "birth_date": "1949-12-31"}
    for name, value in values.items():
        session.add(FieldValue(document_id=doc.id, name=name, value=value, confidence=0.99))
    session.flush()
    return doc


def _messages(engine, **where) -> list[OutboxMessage]:
    with Session(engine) as session:
        query = select(OutboxMessage)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list(session.exec(query.order_by(OutboxMessage.id)).all())


# --- writing -------------------------------------------------------------------------


def test_approval_and_its_messages_share_one_transaction(engine, config):
    with Session(engine) as session:
        doc = _front(session, "a" * 64)
        session.commit()
        created = approve_document(session, doc, actor="reviewer", config=config)
        assert [m.target for m in created] == ["core"]
        session.rollback()  # neither the approval nor the message survives
        doc = session.get(Document, doc.id)
        assert doc.status is Status.PROCESSED
        assert _messages(engine) == []
        approve_document(session, doc, actor="reviewer", config=config)
        session.commit()
        doc_id = doc.id
    [message] = _messages(engine)
    assert message.idempotency_key == f"bo-{doc_id}-{'a' * 12}:core:v1"
    assert message.status is OutboxStatus.PENDING and message.attempts == 0
    assert message.payload["fields"]["id_number"] == "11010519491231002X"
    assert "李秀英" not in repr(message)
    with Session(engine) as session:
        assert session.get(Document, doc_id).status is Status.APPROVED
        actions = [e.action for e in session.exec(
            select(AuditEvent).where(AuditEvent.document_id == doc_id))]
        assert actions[-2:] == ["status", "outbox.enqueued"]


def test_enqueue_is_idempotent_and_a_correction_is_a_new_version(engine, config):
    with Session(engine) as session:
        doc = _front(session, "b" * 64)
        approve_document(session, doc, config=config)
        session.commit()
        assert enqueue_document(session, doc, config=config) == []
        field = session.exec(select(FieldValue).where(FieldValue.document_id == doc.id,
                                                      FieldValue.name == "name")).one()
        field.reviewed_value = "李秀兰"
        session.add(field)
        [v2] = enqueue_document(session, doc, config=config)
        session.commit()
        assert v2.payload_version == 2 and v2.idempotency_key.endswith(":core:v2")
        assert v2.payload["fields"]["name"] == "李秀兰"
    with pytest.raises(ValueError), Session(engine) as session:
        approve_document(session, _front(session, "c" * 64), targets=["nowhere"],
                         config=config)


def test_the_idempotency_key_is_unique(engine):
    with Session(engine) as session:
        doc = _front(session, "d" * 64)
        for version in (1, 2):
            session.add(OutboxMessage(document_id=doc.id, target="core", payload={},
                                      payload_version=version, payload_sha256="x",
                                      idempotency_key="same"))
        with pytest.raises(IntegrityError):
            session.commit()


# --- draining ------------------------------------------------------------------------


def test_drain_posts_each_message_once_and_marks_documents_posted(engine, sandbox, config,
                                                                  tag):
    batch = make_documents(engine, 40, seed=3, bad_rate=0, config=config, tag=tag)
    with build_connectors(config) as connectors:
        report = run_drain(engine, connectors, policy=FAST)
    messages = [m for m in _messages(engine)]
    assert report.posted == len(messages) and report.dead == 0
    # The report as the flow logs it goes through the log masking unchanged (no digit run).
    from domain.masking import mask_text

    assert mask_text(str(report)) == str(report), report
    assert all(m.status is OutboxStatus.POSTED and m.remote_id for m in messages)
    with Session(engine) as session:
        docs = session.exec(select(Document).where(Document.id.in_(batch.doc_ids))).all()
        assert {d.status for d in docs} == {Status.POSTED}
        assert verify_audit_chain(session) == []
        posted_events = session.exec(select(AuditEvent).where(
            AuditEvent.action == "outbox.posted")).all()
        assert len(posted_events) == len(messages)
        assert all("李" not in json.dumps(e.data, ensure_ascii=False) for e in posted_events)
    keys = {m.idempotency_key for m in messages if m.target == "core"}
    with sqlite3.connect(sandbox.core.db_path) as conn:
        held = [k for (k,) in conn.execute("SELECT idempotency_key FROM kyc_record")
                if k in keys]
    assert sorted(held) == sorted(keys)


def test_a_rejected_payload_goes_to_dead_letter_with_its_reason(engine, config):
    with Session(engine) as session:
        doc = _front(session, "e" * 64, {"id_number": "110105194912310021", "name": "李秀英"})
        approve_document(session, doc, config=config)
        session.commit()
        doc_id = doc.id
    with build_connectors(config, ["core"]) as connectors:
        report = run_drain(engine, connectors, policy=FAST)
    [message] = _messages(engine)
    assert report.dead == 1 and message.status is OutboxStatus.DEAD
    assert message.attempts == 1, "a permanent error is not retried"
    assert message.dead_reason.startswith("permanent: HTTP 422")
    assert "110105194912310021" not in message.dead_reason
    with Session(engine) as session:
        assert session.get(Document, doc_id).status is Status.APPROVED


def test_transient_errors_back_off_then_dead_letter_then_redrive(engine, sandbox, config):
    with Session(engine) as session:
        doc = _front(session, "f" * 64)
        approve_document(session, doc, config=config)
        session.commit()
        doc_id = doc.id
    sandbox.core.set_faults(Faults(error_rate=1.0))
    with build_connectors(config, ["core"]) as connectors:
        report = run_drain(engine, connectors, policy=FAST)
        [message] = _messages(engine)
        assert report.retried == 3 and report.dead == 1
        assert message.status is OutboxStatus.DEAD and message.attempts == 4
        assert message.dead_reason.startswith("gave up after 4 attempts; last error: HTTP 503")
        sandbox.core.set_faults(None)
        with Session(engine) as session:
            assert redrive(session, ids=[message.id]) == 1
        run_drain(engine, connectors, policy=FAST)
    [message] = _messages(engine)
    assert message.status is OutboxStatus.POSTED and message.dead_reason is None
    with Session(engine) as session:
        assert session.get(Document, doc_id).status is Status.POSTED
        assert session.exec(select(AuditEvent).where(
            AuditEvent.action == "outbox.redrive")).first() is not None


def test_a_dead_drains_lease_expires_and_another_takes_over(engine, config, tag):
    make_documents(engine, 6, seed=4, bad_rate=0, claim_share=0, config=config, tag=tag)
    policy = DrainPolicy(lease_seconds=0.5, max_workers=2, backoff_base=0.01)
    claimed = _claim(engine, "core", "crashed-drain", 10, utcnow(), policy)
    assert len(claimed) == 6
    with build_connectors(config, ["core"]) as connectors:
        # The crashed drain had got as far as posting two of them.
        for m in claimed[:2]:
            from backoffice.connectors import Outgoing

            connectors["core"].post(Outgoing(m.key, m.target, m.document_id, m.payload))
        started = time.monotonic()
        report = run_drain(engine, connectors, policy=policy, owner="rescuer")
    assert time.monotonic() - started >= 0.3, "waited for the lease to expire"
    assert report.posted == 6 and report.replayed == 2
    messages = _messages(engine)
    assert all(m.status is OutboxStatus.POSTED and m.attempts == 2 for m in messages)
    # The crashed drain wakes up and records stale outcomes: the lease fence refuses them.
    late = DrainReport()
    _record(engine, "crashed-drain", [_Outcome(m, error="late") for m in claimed], policy,
            late, __import__("logging").getLogger("test"))
    assert late.lost_lease == 6 and late.retried == 0
    assert {m.status for m in _messages(engine)} == {OutboxStatus.POSTED}


def test_reconcile_reports_every_kind_of_difference(engine, sandbox, config, tag):
    make_documents(engine, 8, seed=5, bad_rate=0, claim_share=0, config=config, tag=tag)
    with build_connectors(config, ["core"]) as connectors:
        run_drain(engine, connectors, policy=FAST)
        clean = reconcile(engine, connectors)
        assert clean.ok, clean.as_dict()
        assert clean.targets["core"].posted == 8
        a, b, c = [m.idempotency_key for m in _messages(engine)][:3]
        db = sandbox.core.db_path
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM kyc_record WHERE idempotency_key = ?", (a,))
            conn.execute("INSERT INTO kyc_record (id_number, name, idempotency_key) "
                         "SELECT id_number, name, idempotency_key FROM kyc_record "
                         "WHERE idempotency_key = ?", (b,))
        with Session(engine) as session:
            msg = session.exec(select(OutboxMessage).where(
                OutboxMessage.idempotency_key == c)).one()
            msg.status, msg.dead_reason = OutboxStatus.DEAD, "test"
            session.add(msg)
            session.commit()
        report = reconcile(engine, connectors).targets["core"]
        with sqlite3.connect(db) as conn:  # the sandbox is shared by the module's tests
            conn.execute("DELETE FROM kyc_record WHERE idempotency_key = ? AND kyc_id > "
                         "(SELECT min(kyc_id) FROM kyc_record WHERE idempotency_key = ?)",
                         (b, b))
    assert not report.ok
    assert report.missing == [a] and report.duplicates == [b] and report.dead_but_held == [c]


def test_purge_removes_only_settled_messages(engine, config):
    with Session(engine) as session:
        for sha in ("1", "2"):
            approve_document(session, _front(session, sha * 64), config=config)
        session.commit()
        first, second = session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        first.status = OutboxStatus.POSTED
        session.add(first)
        session.commit()
        assert purge(session, older_than=timedelta(days=1)) == 0
        assert purge(session, older_than=timedelta(0)) == 1
        with pytest.raises(ValueError):
            purge(session, older_than=timedelta(0), statuses=[OutboxStatus.PENDING])
        assert [m.id for m in session.exec(select(OutboxMessage))] == [second.id]
        assert session.exec(select(AuditEvent).where(
            AuditEvent.action == "outbox.purged")).first().data["count"] == 1


# --- the command line ----------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path, sandbox):
    """The CLI reads its store and targets from the environment."""
    from backoffice.runtime import db_engine
    from backoffice.settings import get_settings

    targets = sandbox.write_targets(tmp_path / "targets.json", timeout_seconds=2)
    saved = {k: os.environ.get(k) for k in ("BACKOFFICE_DATABASE_URL",
                                            "BACKOFFICE_TARGETS_FILE")}
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    os.environ.update({"BACKOFFICE_DATABASE_URL": url, "BACKOFFICE_TARGETS_FILE": str(targets)})
    get_settings.cache_clear()
    try:
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        db_engine.cache_clear()


def test_cli_lists_redrives_purges_and_reconciles(cli_env, sandbox, config):
    from typer.testing import CliRunner

    from cli.outbox import outbox_app

    engine = make_engine(cli_env)
    with Session(engine) as session:
        good = _front(session, "7" * 64)
        bad = _front(session, "8" * 64, {"id_number": "110105194912310021", "name": "李秀英"})
        for doc in (good, bad):
            approve_document(session, doc, config=config)
        session.commit()
    runner = CliRunner()
    result = runner.invoke(outbox_app, ["drain", "--no-prefect", "--max-seconds", "30"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(outbox_app, ["list", "--json"])
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["status"] for r in rows} == {"posted", "dead"}
    assert "李秀英" not in listed.output and "11010519491231002X" not in listed.output
    table = runner.invoke(outbox_app, ["list", "--status", "dead"])
    assert table.exit_code == 0 and "HTTP 422" in table.output
    assert runner.invoke(outbox_app, ["list", "--status", "nonsense"]).exit_code != 0
    reconciled = runner.invoke(outbox_app, ["reconcile", "--target", "core", "--json"])
    assert reconciled.exit_code == 0, reconciled.output
    assert json.loads(reconciled.stdout)["ok"] is True
    redriven = runner.invoke(outbox_app, ["redrive"])
    assert redriven.exit_code == 0 and "re-driven: 1" in redriven.output
    assert runner.invoke(outbox_app, ["purge", "--older-than-days", "0", "--yes"]).exit_code == 0
    left = [json.loads(line) for line in
            runner.invoke(outbox_app, ["list", "--json"]).stdout.splitlines()]
    assert [r["status"] for r in left] == ["pending"]


# --- through Prefect -----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_drain_outbox_flow_through_prefect_with_a_rate_limit(prefect_harness, tmp_path,
                                                             sandbox, tag):
    """The flow creates its global concurrency limit and keeps to it, with faults on."""
    from prefect.client.orchestration import get_client
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import rate_limit
    from prefect.exceptions import ObjectNotFound

    from backoffice.runtime import db_engine
    from backoffice.settings import get_settings
    from flows.drain_outbox import drain_outbox

    raw = json.loads(sandbox.targets_config(timeout_seconds=2).model_dump_json(by_alias=True))
    raw["targets"]["core"]["rate_limit_per_second"] = 20
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps(raw))
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    engine = make_engine(url)
    from backoffice.connectors import load_targets

    make_documents(engine, 60, seed=6, bad_rate=0, claim_share=0,
                   config=load_targets(targets), tag=tag)
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_global_concurrency_limit_by_name("backoffice-post-core")
    # Why the flow creates its limits and takes them strictly: an unknown name does not
    # limit at all (a thousand slots at once, granted), unless strict.
    started = time.monotonic()
    rate_limit("backoffice-post-nowhere", occupy=1000, timeout_seconds=5)
    assert time.monotonic() - started < 5
    with pytest.raises(ConcurrencySlotAcquisitionError, match="must be created"):
        rate_limit("backoffice-post-nowhere", occupy=1, strict=True, timeout_seconds=5)

    sandbox.core.set_faults(Faults(error_rate=0.1, seed=7))
    os.environ["BACKOFFICE_DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        started = time.monotonic()
        state = drain_outbox(targets=["core"], targets_file=str(targets), workers=4,
                             backoff_base=0.05, backoff_max=0.2, max_seconds=120,
                             return_state=True)
        elapsed = time.monotonic() - started
    finally:
        os.environ.pop("BACKOFFICE_DATABASE_URL", None)
        get_settings.cache_clear()
        db_engine.cache_clear()
        sandbox.core.set_faults(None)
    assert state.is_completed(), state
    report = state.result()
    assert report["posted"] == 60 and report["dead"] == 0
    assert {m.status for m in _messages(engine)} == {OutboxStatus.POSTED}
    # 60 posts at 20/s with a burst of 20: at least (60 - 20) / 20 = 2 s.
    assert elapsed >= 2.0, elapsed
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("backoffice-post-core")
    assert limit.limit == 20 and limit.slot_decay_per_second == 20
