"""The keyed audit chain, erasure and published checkpoints (issue #17, part 3).

An attacker here has database access only: they know the code (they call its own hashing
functions) but not the audit key, and cannot change the checkpoint folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text, update
from sqlmodel import Session, select
from typer.testing import CliRunner

from backoffice.audit import (
    ERASE_ACTION,
    UNKEYED,
    AuditCheckpointError,
    AuditErasureError,
    AuditEvent,
    AuditHead,
    _write_once,
    append_audit,
    append_audit_batch,
    audit_report,
    chain_hash,
    data_digest,
    erase_event_data,
    event_hash,
    generate_signing_key,
    load_signing_key,
    publish_checkpoint,
    verify_audit_chain,
    write_checkpoint,
)
from backoffice.crypto import KeyRing, generate_key
from backoffice.settings import get_settings
from backoffice.store import Document, Status, make_engine, set_status

KEY_A, KEY_B, KEY_X = generate_key(), generate_key(), generate_key()
NAMES = ("张三丰", "李四光", "王五一", "赵六安")


def _person(document_id: int) -> tuple[str, str]:
    """A name and an ID number of each document's customer."""
    return NAMES[document_id % len(NAMES)], f"1101051949123{document_id % 10}00{document_id % 10}X"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Set BACKOFFICE_* settings for the rest of the test (None: unset); the checkpoint
    folder is always the test's own."""
    names = ("AUDIT_KEY", "AUDIT_SIGNING_KEY_FILE", "AUDIT_VERIFY_KEY_FILE",
             "ENCRYPTION_KEY", "DATABASE_URL")

    def switch(**values: str | None) -> None:
        for name, value in values.items():
            var = f"BACKOFFICE_{name.upper()}"
            if value is None:
                monkeypatch.delenv(var, raising=False)
            else:
                monkeypatch.setenv(var, str(value))
        get_settings.cache_clear()

    for name in names:
        monkeypatch.delenv(f"BACKOFFICE_{name}", raising=False)
    monkeypatch.setenv("BACKOFFICE_AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    get_settings.cache_clear()
    yield switch
    get_settings.cache_clear()


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(request):
    from conftest import PG_ADMIN_URL
    from outbox_support import fresh_pg_database

    request.getfixturevalue("postgres_url")  # fails loudly when PostgreSQL is down
    with fresh_pg_database(PG_ADMIN_URL) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def _trail(engine, documents: int = 2) -> list[int]:
    """Events from the real writers: an intake note, status moves, a correction, a batch."""
    with Session(engine) as session:
        for n in range(documents):
            doc = Document(sha256=secrets.token_hex(32), original_name=f"d{n}.png",
                           stored_path="/x")
            session.add(doc)
            session.flush()
            append_audit(session, "received", document_id=doc.id, data={"file": f"d{n}.png"})
            set_status(session, doc, Status.PROCESSING)
            name, id_number = _person(doc.id)
            append_audit(session, "review.corrected", document_id=doc.id, actor="operator",
                         data={"field": "id_number", "before": id_number[:-1] + "9",
                               "after": id_number, "name": name})
            session.commit()
        append_audit_batch(session, [("outbox.posted", None, "outbox:core", {"k": 1}),
                                     ("outbox.posted", None, "outbox:core", {"k": 2})])
        session.commit()
        return [ev.id for ev in session.exec(select(AuditEvent).order_by(AuditEvent.id))]


def _report(engine, checkpoints: Path | None = None):
    with Session(engine) as session:
        return audit_report(session, checkpoints)


def _checkpoint_dir() -> Path:
    return get_settings().audit_checkpoints_dir


def _cli(*args: str):
    from cli.main import app

    result = CliRunner().invoke(app, ["audit", *map(str, args)], env={"COLUMNS": "400"})
    return result.exit_code, " ".join(result.output.split())


def _rewrite(engine, target: int, *, actor: str | None = None, data: dict | None = None,
             key: bytes | None = None, scheme: str = UNKEYED, start: int | None = None
             ) -> None:
    """Database access only: edit event `target`, re-hash every event from `start`
    (default: the target) with the code's own formulas (under `key`, if the attacker
    has one of their own), and move the head to the new last hash."""
    start = target if start is None else start
    with engine.begin() as conn:
        rows = conn.execute(text(
            "SELECT id, at, actor, document_id, action, data, data_salt, hash "
            "FROM auditevent ORDER BY id")).mappings().all()
        prev = ""
        for row in rows:
            if row["id"] < start:
                prev = row["hash"]
                continue
            row_actor, row_data = row["actor"], row["data"]
            if isinstance(row_data, str):  # SQLite hands JSON back as text
                row_data = json.loads(row_data)
            if row["id"] == target:
                row_actor = actor if actor is not None else row_actor
                row_data = data if data is not None else row_data
            salt = row["data_salt"] or secrets.token_hex(16)
            digest = data_digest(row_data, salt, key)
            at = row["at"] if isinstance(row["at"], datetime) else \
                datetime.fromisoformat(row["at"])
            new = chain_hash(prev, at, row_actor, row["document_id"], row["action"], digest,
                             scheme, key)
            as_json = "CAST(:data AS JSON)" if engine.dialect.name == "postgresql" else ":data"
            conn.execute(text(
                f"UPDATE auditevent SET actor = :actor, data = {as_json}, scheme = :scheme, "
                "data_salt = :salt, data_digest = :digest, prev_hash = :prev, hash = :hash "
                "WHERE id = :id"),
                {"actor": row_actor, "data": json.dumps(row_data, ensure_ascii=False),
                 "scheme": scheme, "salt": salt, "digest": digest, "prev": prev, "hash": new,
                 "id": row["id"]})
            prev = new
        conn.execute(text("UPDATE audithead SET last_hash = :h WHERE id = 1"), {"h": prev})


# --- the keyed chain -------------------------------------------------------------------


def test_a_keyed_chain_records_its_key_and_verifies(env, engine):
    env(audit_key=f"k1:{KEY_A}")
    ids = _trail(engine)
    with Session(engine) as session:
        events = session.exec(select(AuditEvent)).all()
        assert {ev.scheme for ev in events} == {"h1:k1"}
        assert all(len(ev.hash) == 64 and len(ev.data_digest) == 64 and ev.data_salt
                   for ev in events)
        ev = events[0]
        # HMAC under the key: the plain SHA-256 of the same payload is something else.
        assert ev.hash != chain_hash(ev.prev_hash, ev.at, ev.actor, ev.document_id,
                                     ev.action, ev.data_digest, ev.scheme)
    report = _report(engine)
    assert report.problems == [] and report.events == len(ids)
    assert not any("not keyed" in w for w in report.warnings)
    # The same trail checked without the key, or under another key with the same kid.
    env(audit_key=None)
    assert any("keyed with audit key 'k1', which is not configured" in p
               for p in _report(engine).problems)
    env(audit_key=f"k1:{KEY_X}")
    assert sum("content altered" in p for p in _report(engine).problems) == len(ids)


def test_an_unkeyed_chain_says_so_and_still_exits_0(env, engine):
    env(database_url=engine.url.render_as_string(hide_password=False))
    _trail(engine)
    code, out = _cli("verify")
    assert code == 0, out
    assert "warning: the audit chain is not keyed" in out and "audit trail intact" in out
    assert "no published checkpoints" in out


def test_old_and_new_events_and_a_key_set_later_verify_together(env, engine):
    """Events written before data digests (their hash covers the data), then unkeyed
    events, then keyed ones, in one chain."""
    env(audit_key=None)
    with Session(engine) as session:
        prev = ""
        for n in range(3):  # what the code before this change wrote
            at = datetime(2024, 1, 1, 12, 0, n, tzinfo=UTC)
            data = {"from": "received", "to": "processing", "n": n}
            h = event_hash(prev, at, "system", 1, "status", data)
            session.add(AuditEvent(at=at, document_id=1, action="status", data=data,
                                   prev_hash=prev, hash=h))
            prev = h
        session.commit()
        append_audit(session, "note", data={"x": 1})
        session.commit()
        schemes = [ev.scheme for ev in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert schemes == [None, None, None, UNKEYED]
    env(audit_key=f"k1:{KEY_A}")
    with Session(engine) as session:
        append_audit(session, "note", data={"x": 2})
        session.commit()
    report = _report(engine)
    assert report.problems == [], report.problems
    assert any("events 1-3 (3) predate data digests" in n for n in report.notes)
    assert any("events 1-4 (4) are not keyed" in w for w in report.warnings)
    # An old-format or unkeyed event after keyed ones: a forger's downgrade.
    with Session(engine) as session:
        last = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        at = datetime(2024, 1, 2, tzinfo=UTC)
        forged = AuditEvent(at=at, action="status", document_id=1, data={"to": "approved"},
                            prev_hash=last.hash,
                            hash=event_hash(last.hash, at, "system", 1, "status",
                                            {"to": "approved"}))
        session.add(forged)
        session.commit()
        assert any(p.startswith(f"event {forged.id} (") and "before data digests, after "
                   "event 5 (keyed)" in p for p in verify_audit_chain(session))


def test_a_store_written_before_the_change_verifies_once_the_columns_are_added(tmp_path):
    """The schema and rows of the code before this change, then the columns added as the
    migration will add them: the old events verify and new ones chain onto them."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    from sqlalchemy import create_engine

    raw = create_engine(url)
    with raw.begin() as conn:
        conn.execute(text(
            "CREATE TABLE auditevent (id INTEGER NOT NULL PRIMARY KEY, at DATETIME NOT NULL, "
            "actor VARCHAR NOT NULL, document_id INTEGER, action VARCHAR NOT NULL, data JSON, "
            "prev_hash VARCHAR NOT NULL, hash VARCHAR(64) NOT NULL)"))
        conn.execute(text(
            "CREATE TABLE audithead (id INTEGER NOT NULL PRIMARY KEY, last_id INTEGER NOT NULL,"
            " last_hash VARCHAR(64) NOT NULL, count INTEGER NOT NULL, "
            "updated_at DATETIME NOT NULL)"))
        prev = ""
        for n in range(1, 4):
            at = datetime(2024, 5, 1, 8, 30, n, 123456)
            data = {"file": f"d{n}.png", "名": NAMES[n]}
            h = event_hash(prev, at, "system", n, "received", data)
            conn.execute(text("INSERT INTO auditevent VALUES (:id, :at, 'system', :d, "
                              "'received', :data, :prev, :h)"),
                         {"id": n, "at": at.isoformat(sep=" "), "d": n,
                          "data": json.dumps(data, ensure_ascii=False), "prev": prev, "h": h})
            prev = h
        conn.execute(text("INSERT INTO audithead VALUES (1, 3, :h, 3, '2024-05-01 08:30:04')"),
                     {"h": prev})
        for ddl in ("ALTER TABLE auditevent ADD COLUMN scheme VARCHAR(48)",
                    "ALTER TABLE auditevent ADD COLUMN data_digest VARCHAR(64)",
                    "ALTER TABLE auditevent ADD COLUMN data_salt VARCHAR(32)"):
            conn.execute(text(ddl))
    raw.dispose()
    engine = make_engine(url)
    with Session(engine) as session:
        assert verify_audit_chain(session) == []
        append_audit(session, "note", data={"after": "upgrade"})
        session.commit()
        assert verify_audit_chain(session) == []
        with pytest.raises(AuditErasureError, match="before data digests"):
            erase_event_data(session, [1], "DSR-old")
    engine.dispose()


def test_a_rotated_audit_key_still_verifies_the_older_events(env, engine):
    env(audit_key=f"k1:{KEY_A}")
    _trail(engine, documents=1)
    with Session(engine) as session:
        first = write_checkpoint(session, _checkpoint_dir())
    assert first.signature == "hmac-sha256"
    env(audit_key=f"k2:{KEY_B},k1:{KEY_A}")  # k2 hashes new events, k1 still verifies
    _trail(engine, documents=1)
    with Session(engine) as session:
        schemes = {ev.scheme for ev in session.exec(select(AuditEvent))}
        second = write_checkpoint(session, _checkpoint_dir())
    assert schemes == {"h1:k1", "h1:k2"} and second.written
    report = _report(engine, _checkpoint_dir())
    assert report.problems == [] and report.checkpoints == 2, report.problems
    env(audit_key=f"k2:{KEY_B}")  # k1 dropped too early: named, not silently passed
    problems = _report(engine, _checkpoint_dir()).problems
    assert any("keyed with audit key 'k1', which is not configured" in p for p in problems)
    assert any(f"checkpoint {first.path.name}: signed with audit key 'k1'" in p
               for p in problems)


# --- erasure ---------------------------------------------------------------------------


def _raw_data(engine) -> str:
    """The data column as the database holds it (JSON unescaped: SQLite keeps \\u escapes)."""
    with engine.connect() as conn:
        return "\n".join(json.dumps(json.loads(data), ensure_ascii=False) for (data,) in
                         conn.execute(text("SELECT data FROM auditevent")) if data)


@pytest.mark.parametrize("encrypted", [False, True])
def test_erasing_a_customer_keeps_the_chain_and_makes_the_data_unreadable(env, engine,
                                                                         encrypted):
    env(audit_key=f"k1:{KEY_A}", encryption_key=f"e1:{KEY_B}" if encrypted else None)
    _trail(engine, documents=2)
    publish_checkpoint(engine)
    with Session(engine) as session:
        customer = [ev.id for ev in session.exec(select(AuditEvent).where(
            AuditEvent.document_id == 1))]
        before = {ev.id: (ev.hash, ev.data_digest) for ev in session.exec(select(AuditEvent))}
    name, id_number = _person(1)
    assert encrypted or (name in _raw_data(engine) and id_number in _raw_data(engine))
    with Session(engine) as session:
        assert erase_event_data(session, customer, "DSR-2024-017", actor="dpo") == customer
        session.commit()
    with Session(engine) as session:
        events = {ev.id: ev for ev in session.exec(select(AuditEvent))}
        for i in customer:
            assert events[i].data == {"erased": "DSR-2024-017"} and events[i].data_salt is None
            assert (events[i].hash, events[i].data_digest) == before[i]
        record = max(events.values(), key=lambda ev: ev.id)
        assert record.action == ERASE_ACTION and record.actor == "dpo"
        assert record.data == {"request": "DSR-2024-017", "events": customer}
        # Again: nothing left to erase, nothing recorded twice.
        assert erase_event_data(session, customer, "DSR-2024-017") == []
    raw = _raw_data(engine)
    assert name not in raw and id_number not in raw
    assert encrypted or _person(2)[0] in raw  # the other customer's events are kept
    report = _report(engine, _checkpoint_dir())
    assert report.problems == [], report.problems
    assert f"{len(customer)} events erased (request DSR-2024-017)" in report.notes
    env(database_url=engine.url.render_as_string(hide_password=False))
    code, out = _cli("verify")
    assert code == 0 and f"{len(customer)} events erased (request DSR-2024-017)" in out, out


def test_an_erasure_not_recorded_in_the_trail_is_a_problem(env, engine):
    env(audit_key=f"k1:{KEY_A}")
    ids = _trail(engine, documents=1)
    with engine.begin() as conn:  # someone "erases" an event to hide what it said
        conn.execute(text("UPDATE auditevent SET data = :d, data_salt = NULL WHERE id = :i"),
                     {"d": json.dumps({"erased": "none"}), "i": ids[2]})
    problems = _report(engine).problems
    assert any(f"event {ids[2]} (1): data erased (request 'none') but the trail records "
               "no such erasure" in p for p in problems), problems
    with Session(engine) as session, pytest.raises(AuditErasureError, match="no audit events"):
        erase_event_data(session, [999], "DSR-1")


# --- checkpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["foreign_key", "downgrade_from_start", "downgrade"])
def test_a_consistent_rewrite_without_the_key_is_reported(env, engine, attack):
    env(audit_key=f"k1:{KEY_A}", database_url=engine.url.render_as_string(
        hide_password=False))
    ids = _trail(engine)
    code, out = _cli("checkpoint")
    assert code == 0 and "published" in out and "signature hmac-sha256" in out, out
    (checkpoint,) = _checkpoint_dir().iterdir()
    target = ids[2]  # a correction: who made it and what it said
    edit = {"actor": "mallory", "data": {"field": "id_number", "before": "x", "after": "y"}}
    if attack == "foreign_key":  # re-hashed as keyed, under a key of their own
        _rewrite(engine, target, key=KeyRing.parse(f"x:{KEY_X}").keys["x"], scheme="h1:k1",
                 **edit)
    elif attack == "downgrade_from_start":  # the whole chain re-hashed without a key
        _rewrite(engine, target, start=ids[0], **edit)
    else:
        _rewrite(engine, target, **edit)
    code, out = _cli("verify")
    assert code == 1, out
    first = ids[0] if attack == "downgrade_from_start" else target
    assert (f"checkpoint {checkpoint.name} (published" in out
            and f"first differing event: event {first} (" in out), out
    if attack == "foreign_key":
        assert f"event {target} (review.corrected, document 1" in out
        assert "content altered" in out
    elif attack == "downgrade":
        assert "not keyed (forged or re-hashed without the audit key" in out
    # And nothing is published over a trail that does not verify.
    code, out = _cli("checkpoint")
    assert code == 1 and "no checkpoint published" in out
    assert len(list(_checkpoint_dir().iterdir())) == 1


def test_a_consistent_rewrite_of_an_unkeyed_chain_is_caught_by_the_checkpoint(env, engine):
    env(database_url=engine.url.render_as_string(hide_password=False))
    ids = _trail(engine)
    assert _cli("checkpoint")[0] == 0
    _trail(engine, documents=1)  # more events after the checkpoint
    target = ids[2]
    _rewrite(engine, target, actor="mallory", data={"field": "name", "after": "李四"})
    # The chain alone cannot tell: re-hashed with the code's formulas, head moved.
    assert _report(engine).problems == []
    code, out = _cli("verify")
    (checkpoint,) = _checkpoint_dir().iterdir()
    assert code == 1, out
    assert (f"checkpoint {checkpoint.name} (published" in out and "the trail no longer "
            f"matches it (event {ids[-1]} at position {len(ids)})" in out
            and f"first differing event: event {target} (review.corrected, document 1"
            in out), out


@pytest.mark.postgres
@pytest.mark.integration
def test_checkpoints_and_erasure_on_postgresql(env, pg_engine):
    """The same on PostgreSQL: checkpoint from a REPEATABLE READ snapshot, erasure, then
    a consistent rewrite with a key of the attacker's own."""
    env(audit_key=f"k1:{KEY_A}", database_url=pg_engine.url.render_as_string(
        hide_password=False))
    ids = _trail(pg_engine)
    assert publish_checkpoint(pg_engine)["signature"] == "hmac-sha256"
    with Session(pg_engine) as session:
        erase_event_data(session, ids[:3], "DSR-pg")
        session.commit()
    code, out = _cli("verify")
    assert code == 0 and "3 events erased (request DSR-pg)" in out, out
    _rewrite(pg_engine, ids[4], actor="mallory", key=KeyRing.parse(f"x:{KEY_X}").keys["x"],
             scheme="h1:k1")
    code, out = _cli("verify")
    (checkpoint,) = _checkpoint_dir().iterdir()
    assert code == 1 and f"checkpoint {checkpoint.name} (published" in out
    assert f"first differing event: event {ids[4]} (" in out, out


def test_checkpoints_are_read_only_never_overwritten_and_chained(env, engine):
    env(audit_key=f"k1:{KEY_A}")
    directory = _checkpoint_dir()
    assert publish_checkpoint(engine)["path"] is None  # empty trail: nothing to publish
    _trail(engine, documents=1)
    one = publish_checkpoint(engine)
    path = Path(one["path"])
    assert one["written"] and stat.S_IMODE(path.stat().st_mode) == 0o444
    body = json.loads(path.read_text())["checkpoint"]
    assert (body["count"], body["last_id"], body["audit_kid"]) == (one["count"],
                                                                  one["last_id"], "k1")
    # Unchanged head: no new file; the same name again: refused, content kept.
    again = publish_checkpoint(engine)
    assert (again["written"], again["path"]) == (False, one["path"])
    content = path.read_bytes()
    with pytest.raises(FileExistsError):
        _write_once(path, b"{}")
    assert path.read_bytes() == content and os.listdir(directory) == [path.name]
    _trail(engine, documents=1)
    two = Path(publish_checkpoint(engine)["path"])
    _trail(engine, documents=1)
    three = Path(publish_checkpoint(engine)["path"])
    assert json.loads(three.read_text())["checkpoint"]["previous"]["file"] == two.name
    assert _report(engine, directory).problems == []
    # Altered (by someone who can change the folder after all): the signature fails.
    os.chmod(two, 0o644)
    doc = json.loads(two.read_text())
    doc["checkpoint"]["time"] = "2000-01-01T00:00:00Z"
    two.write_text(json.dumps(doc))
    problems = _report(engine, directory).problems
    assert f"checkpoint {two.name}: signature does not verify (altered or forged)" in problems
    assert f"checkpoint {three.name} follows {two.name}, whose content has changed since" \
        in problems
    # Removed: its successor names it.
    two.unlink()
    problems = _report(engine, directory).problems
    assert any(p.startswith(f"checkpoint {three.name} follows {two.name}, which is no "
                            "longer in") for p in problems), problems


def test_ed25519_signed_checkpoints(env, engine, tmp_path):
    code, out = _cli("signing-key", tmp_path / "keys" / "audit-signing.pem")
    assert code == 0 and "key id" in out, out
    private, public = tmp_path / "keys" / "audit-signing.pem", \
        tmp_path / "keys" / "audit-signing.pub.pem"
    key_id = out.split("key id ")[1].split()[0]
    assert stat.S_IMODE(private.stat().st_mode) == 0o400 and public.name.endswith(".pub.pem")
    with pytest.raises(FileExistsError):
        generate_signing_key(private)
    env(audit_key=f"k1:{KEY_A}", audit_signing_key_file=private)
    _trail(engine, documents=1)
    result = publish_checkpoint(engine)
    signature = json.loads(Path(result["path"]).read_text())["signature"]
    assert (signature["alg"], signature["key_id"]) == ("ed25519", key_id)
    # The verifiers hold only the public key.
    env(audit_signing_key_file=None, audit_verify_key_file=public)
    assert _report(engine, _checkpoint_dir()).problems == []
    other, other_public, _ = generate_signing_key(tmp_path / "other.pem")
    env(audit_verify_key_file=other_public)
    assert any("which is not among the verify keys" in p
               for p in _report(engine, _checkpoint_dir()).problems)
    # A checkpoint signed by another key (say, forged with a stolen audit key's HMAC
    # replaced): detected as a bad signature under the configured public key.
    env(audit_verify_key_file=public)
    path = Path(result["path"])
    os.chmod(path, 0o644)
    doc = json.loads(path.read_text())
    doc["checkpoint"]["count"] += 1
    forged = load_signing_key(other)
    from backoffice.audit import _sign

    doc["signature"] = {**_sign(doc["checkpoint"], forged, None), "key_id": key_id}
    path.write_text(json.dumps(doc))
    problems = _report(engine, _checkpoint_dir()).problems
    assert f"checkpoint {path.name}: signature does not verify (altered or forged)" in problems


def test_an_unsigned_checkpoint_after_signed_ones_is_a_problem(env, engine):
    env(audit_key=None)
    _trail(engine, documents=1)
    assert publish_checkpoint(engine)["signature"] == "none"
    env(audit_key=f"k1:{KEY_A}")
    _trail(engine, documents=1)
    signed = Path(publish_checkpoint(engine)["path"])
    report = _report(engine, _checkpoint_dir())
    assert report.problems == [] and any("1 checkpoint(s) not signed (published before a "
                                         "signing key was set)" in w for w in report.warnings)
    # One more, unsigned, after the signed one (as a forger without the keys would write).
    from backoffice.audit import _sign

    body = {**json.loads(signed.read_text())["checkpoint"], "time": "2099-01-01T00:00:00Z"}
    forged = json.dumps({"checkpoint": body, "signature": _sign(body, None, None)}).encode()
    name = f"audit-{body['count']:012d}-20990101T000000000000Z.json"
    _write_once(_checkpoint_dir() / name, forged)
    problems = _report(engine, _checkpoint_dir()).problems
    assert f"checkpoint {name}: not signed, after the signed checkpoint {signed.name}" \
        in problems
    with Session(engine) as session, pytest.raises(AuditCheckpointError):
        write_checkpoint(session, _checkpoint_dir())


def test_the_deployment_publishes_hourly():
    from flows.deployments import build_deployments

    (dep,) = [d for d in build_deployments() if d.name == "audit-checkpoint"]
    (sched,) = dep.schedules
    assert sched.schedule.cron == "0 * * * *" and sched.schedule.timezone == "Asia/Shanghai"


@pytest.mark.integration
def test_the_flow_publishes_a_checkpoint(prefect_harness, env, engine):
    env(audit_key=f"k1:{KEY_A}", database_url=engine.url.render_as_string(
        hide_password=False))
    _trail(engine, documents=1)
    from flows.audit_checkpoint import audit_checkpoint

    result = audit_checkpoint()
    assert result["written"] and Path(result["path"]).parent == _checkpoint_dir()


# --- any single edit ---------------------------------------------------------------------

_FIELDS = ("at", "actor", "document_id", "action", "data", "prev_hash", "hash", "scheme",
           "data_digest", "data_salt")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A keyed trail, built once; each example edits a copy."""
    folder = tmp_path_factory.mktemp("audit-template")
    old = os.environ.get("BACKOFFICE_AUDIT_KEY")
    os.environ["BACKOFFICE_AUDIT_KEY"] = f"k1:{KEY_A}"
    get_settings.cache_clear()
    try:
        engine = make_engine(f"sqlite:///{folder / 'store.db'}")
        ids = _trail(engine)
        with Session(engine) as session:
            rows = {ev.id: ev.model_dump() for ev in session.exec(select(AuditEvent))}
        engine.dispose()
    finally:
        if old is None:
            os.environ.pop("BACKOFFICE_AUDIT_KEY", None)
        else:
            os.environ["BACKOFFICE_AUDIT_KEY"] = old
        get_settings.cache_clear()
    return folder / "store.db", ids, rows


_values = {
    "at": st.integers(1, 10**6).map(lambda s: timedelta(microseconds=s)),
    "actor": st.text(min_size=0, max_size=12),
    "document_id": st.one_of(st.none(), st.integers(-5, 10**6)),
    "action": st.text(min_size=0, max_size=12),
    "data": st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.one_of(
        st.integers(), st.text(max_size=8), st.booleans()), max_size=3),
        st.builds(lambda s: {"erased": s}, st.text(max_size=8))),
    "prev_hash": st.text("0123456789abcdef", min_size=0, max_size=64),
    "hash": st.text("0123456789abcdef", min_size=0, max_size=64),
    "scheme": st.one_of(st.none(), st.sampled_from([UNKEYED, "h1:k2", "h1:", "x"]),
                        st.text(max_size=6)),
    "data_digest": st.one_of(st.none(), st.text("0123456789abcdef", max_size=64)),
    "data_salt": st.one_of(st.none(), st.text("0123456789abcdef", max_size=32)),
}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_field_edit_of_any_event_is_detected(env, template, data):
    """One field of one event changed in the database (nothing re-hashed): verify names a
    problem, with the key configured."""
    env(audit_key=f"k1:{KEY_A}")
    path, ids, rows = template
    target = data.draw(st.sampled_from(ids), label="event")
    name = data.draw(st.sampled_from(_FIELDS), label="field")
    value = data.draw(_values[name], label="value")
    if name == "at":
        value = rows[target]["at"] + value
    assume(value != rows[target][name])
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "store.db"
        shutil.copy(path, copy)
        engine = make_engine(f"sqlite:///{copy}")
        try:
            table = AuditEvent.__table__
            with engine.begin() as conn:
                conn.execute(update(table).where(table.c.id == target).values({name: value}))
            with Session(engine) as session:
                problems = verify_audit_chain(session)
        finally:
            engine.dispose()
    assert problems, (target, name, value)


def test_a_checkpoint_names_its_predecessor_by_digest(env, engine):
    """A checkpoint's previous-file digest is over the exact bytes published."""
    env(audit_key=f"k1:{KEY_A}")
    _trail(engine, documents=1)
    one = Path(publish_checkpoint(engine)["path"])
    _trail(engine, documents=1)
    two = Path(publish_checkpoint(engine)["path"])
    previous = json.loads(two.read_text())["checkpoint"]["previous"]
    assert previous == {"file": one.name, "sha256": hashlib.sha256(one.read_bytes()).hexdigest()}
    with Session(engine) as session:
        assert session.get(AuditHead, 1).count == json.loads(two.read_text())["checkpoint"][
            "count"]
