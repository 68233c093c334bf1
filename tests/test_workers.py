"""Worker processes against one store: kill -9 and recovery; two workers on one inbox.

Real worker subprocesses (`backoffice worker`), the real PaddleOCR engine, real SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from worker_support import write_tiny_documents

from backoffice.audit import AuditEvent, verify_audit_chain
from backoffice.store import Document, Status, make_engine

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.ocr, pytest.mark.slow, pytest.mark.integration]
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DONE = {Status.PROCESSED, Status.IN_REVIEW, Status.APPROVED, Status.POSTED, Status.REJECTED,
        Status.QUARANTINED}


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    from conftest import PG_ADMIN_URL
    from outbox_support import fresh_pg_database

    with fresh_pg_database(PG_ADMIN_URL) as url:
        yield url


def _env(tmp_path: Path, url: str, lease: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "BACKOFFICE_DATA_DIR": str(tmp_path / "data"),
        "BACKOFFICE_DATABASE_URL": url,
        "BACKOFFICE_PROCESSING_LEASE_SECONDS": str(lease),
        "BACKOFFICE_WORKER_POLL_SECONDS": "0.2",
        "BACKOFFICE_OCR_CPU_THREADS": "1",
    })
    return env


def _worker(env, inbox: Path, owner: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--inbox", str(inbox),
         "--owner", owner, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _report(proc: subprocess.Popen, timeout: float) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _engine(url: str):
    import backoffice.outbox  # noqa: F401  (the outbox table)

    return make_engine(url)


def test_kill_9_during_processing_then_restart(store_url, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in sorted((ROOT / "fixtures" / "idcards" / "clean").glob("*.jpg"))[:4]:
        shutil.copy(path, inbox / path.name)
    env = _env(tmp_path, store_url, lease=3.0)
    engine = _engine(store_url)
    first = _worker(env, inbox, "doomed")
    try:
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read()[-3000:]
            with Session(engine) as session:
                victim = session.exec(select(Document).where(
                    Document.status == Status.PROCESSING)).first()
            time.sleep(0.05)
        assert victim is not None, "the worker never started processing"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        first.stdout.close()
        first.stderr.close()
    with Session(engine) as session:
        stuck = session.exec(select(Document).where(Document.status == Status.PROCESSING)).all()
    assert [d.lease_owner for d in stuck] == ["doomed"] * len(stuck) and stuck
    stuck_ids = {d.id for d in stuck}

    started = time.monotonic()
    report = _report(_worker(env, inbox, "rescuer", "--once"), timeout=240)
    restart_seconds = time.monotonic() - started
    assert report["requeued"] == len(stuck_ids) and report["failed"] == 0
    with Session(engine) as session:
        docs = session.exec(select(Document)).all()
        assert len(docs) == 4
        assert all(d.status in DONE for d in docs), Counter(d.status.value for d in docs)
        for doc in docs:
            if doc.id in stuck_ids:
                assert doc.attempts == 2 and doc.status is not Status.QUARANTINED
                expired = [e for e in session.exec(select(AuditEvent).where(
                    AuditEvent.document_id == doc.id)) if (e.data or {}).get("lease_expired")]
                assert len(expired) == 1 and expired[0].data["to"] == "received"
        processed = Counter(e.document_id for e in session.exec(
            select(AuditEvent).where(AuditEvent.action == "processed")))
        assert processed == Counter({d.id: 1 for d in docs})
        assert verify_audit_chain(session) == []
    print(f"kill -9: {len(stuck_ids)} document(s) held by the killed worker; restart "
          f"finished all 4 in {restart_seconds:.1f} s")


# The real engine costs ~0.1 s a tiny page (0.055 s of it preprocessing) plus ~10 s to
# load per worker: 500 pages by two real workers took 300 s on this shared 2-core
# machine, so by default the claim test reads with an engine that finds no text (the
# test is about claiming). BACKOFFICE_TEST_WORKER_OCR=paddle runs it with PaddleOCR.
WORKER_OCR = os.environ.get("BACKOFFICE_TEST_WORKER_OCR", "worker_support:BlankRecognizer")


def test_two_workers_one_inbox_500_documents(store_url, tmp_path):
    inbox = tmp_path / "inbox"
    write_tiny_documents(inbox, 500)
    env = _env(tmp_path, store_url, lease=120.0)
    # The test's own recogniser (worker_support) is importable from the tests folder.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT / "tests")]))
    engine = _engine(store_url)
    started = time.monotonic()
    workers = [_worker(env, inbox, f"w{i}", "--once", "--recognizer", WORKER_OCR)
               for i in (1, 2)]
    reports = [_report(w, timeout=300) for w in workers]
    seconds = time.monotonic() - started
    assert sum(r["received"] for r in reports) == 500
    assert sum(r["processed"] for r in reports) == 500
    assert all(r["failed"] == 0 for r in reports)
    with Session(engine) as session:
        statuses = Counter(d.status for d in session.exec(select(Document)))
        assert sum(statuses.values()) == 500 and set(statuses) <= DONE, statuses
        # Proof from the audit trail: each document was claimed once and processed once.
        claims = Counter()
        owners = Counter()
        for ev in session.exec(select(AuditEvent).where(AuditEvent.action == "status")):
            if ev.data["to"] == "processing":
                claims[ev.document_id] += 1
                owners[ev.actor] += 1
        processed = Counter(e.document_id for e in session.exec(
            select(AuditEvent).where(AuditEvent.action == "processed")))
        twice = [d for d, n in claims.items() if n > 1] + [d for d, n in processed.items()
                                                            if n > 1]
        assert len(claims) == 500 and len(processed) == 500 and twice == []
        assert session.exec(select(func.max(Document.attempts))).one() == 1
        assert set(owners) == {"w1", "w2"}, owners  # both took a share
        assert verify_audit_chain(session) == []
    print(f"two workers ({WORKER_OCR}), 500 documents: {seconds:.1f} s; claims by worker "
          f"{dict(owners)}; "
          f"intake duplicates {[r['duplicates'] for r in reports]}; processed twice: 0")
