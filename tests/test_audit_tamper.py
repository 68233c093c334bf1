"""Tampering with the audit trail directly in the database, on SQLite and PostgreSQL.

Each case builds a trail with the real writers, then alters, deletes or inserts rows with
plain SQL (as someone with database access would, leaving the head record alone), and
checks that `verify_audit_chain` and `backoffice audit verify` (a subprocess: exit code
and message) name the event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from backoffice.audit import AuditEvent, append_audit, event_hash, verify_audit_chain
from backoffice.store import Document, Status, make_engine, set_status

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EVENTS = 8  # the trail built by _trail


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres,
                                                                   pytest.mark.integration])])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    from conftest import PG_ADMIN_URL
    from outbox_support import fresh_pg_database

    request.getfixturevalue("postgres_url")  # fails loudly when PostgreSQL is down
    with fresh_pg_database(PG_ADMIN_URL) as url:
        yield url


def _trail(url: str):
    """A store with EVENTS audit events written by the real writers."""
    engine = make_engine(url)
    with Session(engine) as session:
        for n in range(2):
            doc = Document(sha256=f"{n}" * 64, original_name=f"d{n}.png", stored_path="/x")
            session.add(doc)
            session.flush()
            append_audit(session, "received", document_id=doc.id, data={"file": doc.original_name})
            set_status(session, doc, Status.PROCESSING)
            set_status(session, doc, Status.PROCESSED)
            session.commit()
        append_audit(session, "note", actor="operator", data={"text": "checked"})
        append_audit(session, "note", actor="operator", data={"text": "closed"})
        session.commit()
        ids = [e.id for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
        assert len(ids) == EVENTS and verify_audit_chain(session) == []
    return engine, ids


def _sql(engine, statement: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _forge(engine, event_id: int, prev_hash: str, action: str = "status",
           data: dict | None = None) -> None:
    """Insert a well-formed event (its own hash right, chained to `prev_hash`) by SQL."""
    at = datetime.now(UTC).replace(tzinfo=None)
    data = data or {"from": "in_review", "to": "approved", "reason": "looks fine"}
    digest = event_hash(prev_hash, at, "mallory", 1, action, data)
    as_json = "CAST(:data AS JSON)" if engine.dialect.name == "postgresql" else ":data"
    _sql(engine, "INSERT INTO auditevent (id, at, actor, document_id, action, data, prev_hash, "
                 f"hash) VALUES (:id, :at, 'mallory', 1, :action, {as_json}, :prev, :hash)",
         id=event_id, at=at, action=action, data=json.dumps(data), prev=prev_hash, hash=digest)


def _hash_of(engine, event_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT hash FROM auditevent WHERE id = :i"),
                            {"i": event_id}).scalar_one()


def _alter(engine, ids):
    _sql(engine, "UPDATE auditevent SET actor = 'mallory' WHERE id = :i", i=ids[3])
    return [f"event {ids[3]} (", "content altered"]


def _alter_and_rehash(engine, ids):
    with Session(engine) as session:
        ev = session.get(AuditEvent, ids[4])
        data = {**ev.data, "reason": "approved by phone"}
        digest = event_hash(ev.prev_hash, ev.at, ev.actor, ev.document_id, ev.action, data)
    as_json = "CAST(:data AS JSON)" if engine.dialect.name == "postgresql" else ":data"
    _sql(engine, f"UPDATE auditevent SET data = {as_json}, hash = :h WHERE id = :i",
         data=json.dumps(data), h=digest, i=ids[4])
    return [f"event {ids[4]} (", "content altered and re-hashed"]


def _delete_middle(engine, ids):
    _sql(engine, "DELETE FROM auditevent WHERE id = :i", i=ids[3])
    return [f"event {ids[4]}: chain broken",
            f"removed between event {ids[2]} and event {ids[4]}",
            f"ids {ids[3]} are missing"]


def _delete_last(engine, ids):
    _sql(engine, "DELETE FROM auditevent WHERE id = :i", i=ids[-1])
    return [f"event {ids[-1]} (the last one recorded in the head) was removed",
            f"ends at event {ids[-2]}"]


def _delete_first(engine, ids):
    _sql(engine, "DELETE FROM auditevent WHERE id = :i", i=ids[0])
    return [f"event {ids[1]}: chain broken; the event(s) before it were removed"]


def _insert_middle(engine, ids):
    # Make room after event ids[2] by renumbering the later ones, then slip one in that
    # is correctly chained to ids[2].
    _sql(engine, "UPDATE auditevent SET id = id + 1000 WHERE id > :i", i=ids[2])
    _sql(engine, "UPDATE auditevent SET id = id - 999 WHERE id > 1000")
    _forge(engine, ids[2] + 1, _hash_of(engine, ids[2]))
    return [f"event {ids[2] + 1} (status",
            f"inserted (event {ids[2] + 2} is chained to event {ids[2]})"]


def _insert_at_end(engine, ids):
    _forge(engine, ids[-1] + 1, _hash_of(engine, ids[-1]))
    return [f"event {ids[-1] + 1} (status", f"inserted after the recorded end (event {ids[-1]})"]


# Through the CLI as a subprocess too (exit code and message): one case of each kind.
CLI_CASES = {"altered", "deleted_middle", "deleted_last", "inserted_middle"}
CASES = {"altered": _alter, "altered_and_rehashed": _alter_and_rehash,
         "deleted_middle": _delete_middle, "deleted_last": _delete_last,
         "deleted_first": _delete_first, "inserted_middle": _insert_middle,
         "inserted_at_end": _insert_at_end}


def _cli_verify(url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BACKOFFICE_DATABASE_URL": url,
           "BACKOFFICE_DATA_DIR": str(tmp_path / "cli-data"), "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "cli", "audit", "verify"],
                          check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected_and_named(db_url, case, tmp_path):
    engine, ids = _trail(db_url)
    wanted = CASES[case](engine, ids)
    with Session(engine) as session:
        problems = verify_audit_chain(session)
    joined = "\n".join(problems)
    for fragment in wanted:
        assert fragment in joined, (case, problems)
    engine.dispose()
    if case not in CLI_CASES:
        return
    proc = _cli_verify(db_url, tmp_path)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    out = " ".join((proc.stdout + proc.stderr).split())
    for fragment in wanted:
        assert fragment in out, (case, out)
    assert "Traceback" not in proc.stderr


def test_an_intact_trail_verifies_through_the_cli(db_url, tmp_path):
    engine, _ = _trail(db_url)
    engine.dispose()
    proc = _cli_verify(db_url, tmp_path)
    assert proc.returncode == 0 and "audit trail intact" in proc.stdout + proc.stderr


def test_the_head_moves_with_every_writer(tmp_path):
    """append_audit, set_status and the outbox's batch appender all advance the head."""
    from backoffice.audit import AuditHead, append_audit_batch

    engine, _ = _trail(f"sqlite:///{tmp_path / 's.db'}")
    with Session(engine) as session:
        append_audit_batch(session, [("outbox.posted", None, "outbox:t", {"k": 1}),
                                     ("outbox.posted", None, "outbox:t", {"k": 2})])
        session.commit()
        head = session.get(AuditHead, 1)
        last = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (head.last_id, head.last_hash, head.count) == (last.id, last.hash, EVENTS + 2)
        assert verify_audit_chain(session) == []
        # A rolled-back append leaves neither an event nor a moved head.
        append_audit(session, "note", data={"x": 1})
        session.flush()
        session.rollback()
        assert session.get(AuditHead, 1).count == EVENTS + 2
        assert verify_audit_chain(session) == []
