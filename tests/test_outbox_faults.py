"""Exactly once through faults and crashes: 2,000 documents against the faulty sandbox.

Two drain processes post the outbox while the sandbox answers 20% of posts with 5xx,
commits 5% and then drops the connection before the reply, lets 1% time out (after
committing) and slows 4% down; 1% of the documents carry a payload the target refuses
(422). One drain is killed with SIGKILL half way and a new one started. At the end every
message must be posted exactly once downstream, or in dead-letter with a reason: nothing
lost, nothing twice. On SQLite and on the local PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import PG_ADMIN_URL, ROOT, _pg_available
from outbox_support import fresh_pg_database, make_documents
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from backoffice.audit import verify_audit_chain
from backoffice.connectors import build_connectors, load_targets
from backoffice.outbox import OUTBOX, OutboxMessage, OutboxStatus, reconcile
from backoffice.sandbox.common import Faults
from backoffice.sandbox.runner import run_sandbox
from backoffice.store import Document, Status, make_engine

pytestmark = [pytest.mark.slow, pytest.mark.integration]

N_DOCUMENTS = 2000
FAULTS = Faults(error_rate=0.20, drop_rate=0.05, timeout_rate=0.01, timeout_seconds=1.5,
                slow_rate=0.04, slow_seconds=0.2, seed=2026)
CLIENT_TIMEOUT = 1.0
WORKER_ARGS = ["--batch-size", "32", "--workers", "8", "--lease-seconds", "6",
               "--max-attempts", "12", "--backoff-base", "0.05", "--backoff-max", "1.0",
               "--max-seconds", "300"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    with fresh_pg_database(PG_ADMIN_URL) as url:
        yield url


def _drain_process(url: str, targets: Path, owner: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "backoffice.drain_worker", "--db", url,
             "--targets-file", str(targets), "--owner", owner, *WORKER_ARGS],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _by_status(engine) -> Counter:
    with engine.connect() as conn:
        rows = conn.execute(sa_select(OUTBOX.c.status, func.count())
                            .group_by(OUTBOX.c.status)).all()
    return Counter({OutboxStatus(s): n for s, n in rows})


def _leased_by(engine, owner: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa_select(func.count()).where(
            OUTBOX.c.status == OutboxStatus.IN_FLIGHT, OUTBOX.c.lease_owner == owner)
        ).scalar_one()


def _wait(procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("drain processes did not finish in time")


def _duplicates(db: Path, table: str, column: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute(f"SELECT {column}, count(*) FROM {table} WHERE {column} IS NOT "
                                 f"NULL GROUP BY {column} HAVING count(*) > 1").fetchall())


def test_2000_documents_exactly_once_through_faults_and_a_sigkill(store_url, tmp_path):
    engine = make_engine(store_url)
    with run_sandbox(tmp_path / "sandbox", faults=FAULTS) as sandbox:
        targets = sandbox.write_targets(tmp_path / "targets.json",
                                        timeout_seconds=CLIENT_TIMEOUT)
        config = load_targets(targets)
        batch = make_documents(engine, N_DOCUMENTS, seed=11, bad_rate=0.01, config=config,
                               tag="faults")
        total = sum(_by_status(engine).values())
        assert total > N_DOCUMENTS  # claim forms go to two targets

        log = tmp_path / "drains.log"
        started = time.monotonic()
        first = _drain_process(store_url, targets, "drain-1", log)
        second = _drain_process(store_url, targets, "drain-2", log)
        deadline = time.monotonic() + 240
        while _by_status(engine)[OutboxStatus.POSTED] < total * 0.3:
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.2)
        while _leased_by(engine, "drain-1") == 0:  # kill it while it holds messages
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        orphaned = _leased_by(engine, "drain-1")
        restarted = _drain_process(store_url, targets, "drain-1-restarted", log)
        _wait([second, restarted], timeout=300)
        seconds = time.monotonic() - started
        assert first.returncode == -signal.SIGKILL
        assert second.returncode == 0 and restarted.returncode == 0, log.read_text()[-3000:]
        stats = sandbox.stats()
        sandbox.set_faults(None)

        # 1. Every message settled: posted, or dead with a reason.
        with Session(engine) as session:
            messages = session.exec(select(OutboxMessage)).all()
            docs = {d.id: d for d in session.exec(
                select(Document).where(Document.id.in_(batch.doc_ids)))}
            chain = verify_audit_chain(session)
        by_status = Counter(m.status for m in messages)
        assert set(by_status) <= {OutboxStatus.POSTED, OutboxStatus.DEAD}, by_status
        dead = [m for m in messages if m.status is OutboxStatus.DEAD]
        assert all(m.dead_reason for m in dead)
        # 2. Exactly the refused payloads are dead, each after one attempt (422, no retry).
        expected_dead = ({(d, "core") for d in batch.bad_core}
                         | {(d, "claims") for d in batch.bad_claims})
        assert {(m.document_id, m.target) for m in dead} == expected_dead
        assert all(m.dead_reason.startswith("permanent: HTTP 422") for m in dead)

        # 3. Downstream: no key and no document held twice, in any system.
        dupes = {
            "core by key": _duplicates(sandbox.core.db_path, "kyc_record", "idempotency_key"),
            "core by document": _duplicates(sandbox.core.db_path, "kyc_record", "source_ref"),
            "claims by key": _duplicates(sandbox.claims.db_path, "claim", "idempotency_key"),
            "claims by document": _duplicates(sandbox.claims.db_path, "claim", "ext_ref"),
        }
        assert not any(dupes.values()), dupes
        with build_connectors(config) as connectors:
            held = {name: list(c.held()) for name, c in connectors.items()}
            report = reconcile(engine, connectors)
        # 4. Nothing lost: what the outbox says was posted is exactly what is held, under
        #    the same remote id; nothing dead or unsettled is held.
        posted = {(m.target, m.idempotency_key): m.remote_id for m in messages
                  if m.status is OutboxStatus.POSTED}
        held_ids = {(name, h.key): h.remote_id for name, hs in held.items() for h in hs}
        assert sum(len(hs) for hs in held.values()) == len(held_ids) == len(posted)
        assert held_ids == posted
        assert all(h.problem is None for hs in held.values() for h in hs)
        assert report.ok, json.dumps(report.as_dict())[:2000]

        # 5. Documents follow their messages; the audit chain is intact.
        failed_docs = {d for d, _ in expected_dead}
        for doc_id, doc in docs.items():
            assert doc.status is (Status.APPROVED if doc_id in failed_docs else Status.POSTED)
        assert chain == []

        # 6. The faults really happened, and the crash really left work behind.
        faults = Counter()
        for system in stats.values():
            faults.update(system["faults"])
        assert faults["error"] > 0 and faults["drop"] > 0 and faults["timeout"] > 0
        assert orphaned > 0
        replayed = sum(1 for m in messages if m.replayed)
        assert replayed > 0, "dropped replies were recovered through the idempotency key"
        summary = {
            "backend": engine.dialect.name, "documents": N_DOCUMENTS, "messages": len(messages),
            "posted": by_status[OutboxStatus.POSTED], "dead_letter": len(dead),
            "duplicates_downstream": 0, "lost": len(set(posted) - set(held_ids)),
            "replayed": replayed, "orphaned_by_sigkill": orphaned,
            "attempts": sum(m.attempts for m in messages), "faults_injected": dict(faults),
            "seconds": round(seconds, 1),
        }
        print("\nFAULT-TEST " + json.dumps(summary))
    engine.dispose()
