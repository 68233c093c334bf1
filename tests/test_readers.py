"""Scale-out on Prefect's engine, as separate hosts would run it.

A Prefect server on PostgreSQL, the store on PostgreSQL with the originals in it, the
deployments in the work pool run by ``prefect worker start --pool``, and readers
(``backoffice reader``, Prefect task workers) as separate processes, each in its own
folder with its own data folder. The real PaddleOCR reads the documents.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import FIXTURES, PG_ADMIN_URL
from sqlmodel import Session

from backoffice.audit import verify_audit_chain
from backoffice.runtime import db_engine
from cli.scale_demo import Cluster, store_report

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _stage(inbox: Path, n_ids: int, n_claims: int) -> int:
    inbox.mkdir(parents=True, exist_ok=True)
    ids = sorted((FIXTURES / "idcards" / "photo").glob("*.*"))[:n_ids]
    claims = sorted((FIXTURES / "claims" / "clean").glob("*.*"))[:n_claims]
    assert len(ids) == n_ids and len(claims) == n_claims
    for path in [*claims, *ids]:
        shutil.copy(path, inbox / path.name)
    (inbox / "empty.png").write_bytes(b"")  # quarantined at intake, with its reason
    return len(ids) + len(claims)


@pytest.mark.ocr
@pytest.mark.slow
def test_kill_9_a_reader_mid_document_exactly_once_nothing_lost(tmp_path):
    with Cluster(root=tmp_path / "hosts", readers=2, pg_admin=PG_ADMIN_URL) as cluster:
        api = cluster.server.api_url
        # The project's work pool and module-path deployments.
        pool = httpx.get(f"{api}/work_pools/backoffice", timeout=10).json()
        assert pool["type"] == "process"
        assert pool["base_job_template"]["variables"]["properties"]["env"]["default"] == {
            "BACKOFFICE_DISPATCH": "readers"}
        deployment = httpx.get(f"{api}/deployments/name/process-inbox/process-inbox",
                               timeout=10).json()
        assert deployment["work_pool_name"] == "backoffice"
        assert deployment["entrypoint"] == "flows.process_inbox.process_inbox"
        assert deployment["work_queue_name"] == "intake"
        drain = httpx.get(f"{api}/deployments/name/drain-outbox/drain-outbox",
                          timeout=10).json()
        assert (drain["work_pool_name"], drain["work_queue_name"]) == ("backoffice", "default")

        cluster.wait_for_readers()
        total = _stage(cluster.inbox, n_ids=4, n_claims=6)
        engine = db_engine(cluster.store_url)
        outcome: dict = {}
        runner = threading.Thread(target=lambda: outcome.update(cluster.run_inbox(timeout=900)))
        runner.start()
        victim, held_doc, victim_run = cluster.kill_a_reader_mid_document()
        runner.join(900)
        assert outcome.get("state") == "COMPLETED", outcome

        report = store_report(cluster.store_url)
        assert report["exactly_once"], report
        assert report["read"] == total and report["active"] == []
        # The killed reader's document was taken again, by the surviving reader.
        survivor = next(p for p in cluster.reader_procs if p is not victim)
        assert any(str(survivor.pid) in name for name in report["by_reader"])
        assert report["claims"] >= total + 1
        # Its run in Prefect says what happened.
        run = httpx.get(f"{api}/task_runs/{victim_run}", timeout=10).json()
        assert run["state"]["type"] == "CRASHED", run["state"]
        assert f"document {held_doc}" in run["state"]["message"]
        # The empty file was quarantined with its reason; nothing was dropped.
        assert report["statuses"].get("quarantined", 0) >= 1
        assert sum(report["statuses"].values()) >= total + 1
        with Session(engine) as session:
            assert verify_audit_chain(session) == []
        # Per-document runs under the flow run, as an operator sees them in the UI: each
        # document has its completed run; any run a dead reader took unstarted is
        # cancelled with the reason, none is left scheduled.
        runs = httpx.post(f"{api}/task_runs/filter", json={
            "task_runs": {"name": {"like_": "process-document-"}}}, timeout=10).json()
        assert [(r["name"], r["flow_run_id"], r["state"]["type"]) for r in runs
                if r["flow_run_id"] != outcome["flow_run"]] == []
        completed = {r["name"] for r in runs if r["state"]["type"] == "COMPLETED"}
        with Session(engine) as session:
            from sqlmodel import select

            from backoffice.store import Document

            read_ids = session.exec(select(Document.id).where(
                Document.page == 0, Document.status != "quarantined")).all()
        assert {f"process-document-{i}" for i in read_ids} <= completed
        assert all(r["state"]["type"] in ("COMPLETED", "CRASHED", "CANCELLED") for r in runs)
        for r in runs:
            if r["state"]["type"] == "CANCELLED":
                assert "handed out again" in r["state"]["message"]
        _operator_sees(cluster.server.url, outcome["flow_run"], victim_run, held_doc,
                       tmp_path / "ui-shots")
        db_engine.cache_clear()


def _operator_sees(url: str, flow_run_id: str, crashed_run: str, doc_id: int,
                   shots: Path) -> None:
    """In the Prefect UI (headless Chromium): the process-inbox run lists its documents'
    runs, and the crashed one says why."""
    from browser import PrefectUI, chromium, evidence_on_failure

    driver = chromium()
    try:
        ui = PrefectUI(driver, url, shots)
        with evidence_on_failure(ui):
            ui.flow_run(flow_run_id)
            ui.click("Task Runs")
            ui.wait_text("process-document-", timeout=60)
            ui.shot("process-inbox-task-runs")
            ui.open(f"runs/task-run/{crashed_run}")
            ui.wait_text("Crashed", timeout=60)
            ui.wait_text(f"process-document-{doc_id}", timeout=30)
            ui.shot("crashed-reader-run")
    finally:
        driver.quit()


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path.endswith("/health") else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass


def _reader(env_extra: dict[str, str], tmp_path: Path, seconds: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BACKOFFICE_"))}
    env.update({"BACKOFFICE_DATA_DIR": str(tmp_path / "data"), **env_extra})
    return subprocess.run([sys.executable, "-m", "cli", "reader", "--max-seconds", str(seconds),
                           "--retry-max-seconds", "1"], check=False, env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_a_reader_that_cannot_reach_the_server_retries_and_says_so(tmp_path):
    from backoffice.server import free_port

    port = free_port()
    done = _reader({"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}, tmp_path, 5)
    assert done.returncode == 1
    assert f"cannot reach the Prefect server at http://127.0.0.1:{port}/api (attempt 1)" \
        in done.stderr
    assert "(attempt 2)" in done.stderr and "retrying in" in done.stderr


def test_a_reader_that_cannot_reach_the_store_retries_and_says_so(tmp_path):
    from backoffice.server import free_port

    server = HTTPServer(("127.0.0.1", 0), _Health)  # the test is about the store
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dead = free_port()
        done = _reader({
            "PREFECT_API_URL": f"http://127.0.0.1:{server.server_port}/api",
            "BACKOFFICE_DATABASE_URL": f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{dead}/x",
            "BACKOFFICE_DOCUMENT_STORAGE": "store"}, tmp_path, 5)
    finally:
        server.shutdown()
    assert done.returncode == 1
    assert "cannot reach the store's database (attempt 1)" in done.stderr
    assert "s3cret" not in done.stderr


def test_a_reader_refuses_a_storage_it_cannot_use(tmp_path):
    done = _reader({"PREFECT_API_URL": "http://127.0.0.1:9/api",
                    "BACKOFFICE_DOCUMENT_STORAGE": "s3://bucket/prefix"}, tmp_path, 5)
    assert done.returncode == 2
    assert "s3fs" in done.stderr


def test_prefect_server_command_on_postgres_starts_answers_and_stops(tmp_path):
    """`backoffice prefect-server` on PostgreSQL (its database created if missing)."""
    import signal
    import time
    import uuid

    import psycopg

    from backoffice.server import free_port

    name = f"bo_prefect_cmd_{uuid.uuid4().hex[:8]}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BACKOFFICE_"))}
    env["BACKOFFICE_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "prefect-server", "--port", str(port),
                             "--database-url", f"{base}/{name}"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None and not healthy:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success
            except httpx.HTTPError:
                time.sleep(0.5)
        assert healthy, proc.stdout.read() if proc.poll() is not None else "not healthy"
        with psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}") as conn:
            tables = conn.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_name = 'flow_run'").fetchone()[0]
        assert tables == 1  # Prefect's tables live in PostgreSQL, not SQLite
        assert not (tmp_path / "data" / "prefect" / "prefect.db").exists()
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_prefect_server_refuses_a_database_url_it_cannot_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BACKOFFICE_"))}
    env["BACKOFFICE_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([sys.executable, "-m", "cli", "prefect-server", "--database-url",
                           "postgresql://prefect:s3cret@db/prefect"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "postgresql+asyncpg://" in done.stderr and "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr + done.stdout


def test_every_pool_template_is_prefects_with_our_environment():
    from flows.deployments import POOL_TEMPLATES, pool_template

    for kind in POOL_TEMPLATES:
        template = pool_template(kind)
        props = template["variables"]["properties"]
        assert props["env"]["default"]["BACKOFFICE_DISPATCH"] == "readers"
        assert "{{ env }}" in str(template["job_configuration"]["env"])
        if kind != "process":
            assert props["image"]["default"] == "backoffice:latest"
    with pytest.raises(ValueError, match="no work pool template"):
        pool_template("ecs")


def test_prefect_server_stopped_while_starting_exits_cleanly_and_leaves_no_server(tmp_path):
    """SIGTERM before the server answers (a supervisor giving up, an operator's Ctrl-C):
    the command stops what it started and exits 0; nothing is left on the port."""
    import signal
    import time

    from backoffice.server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BACKOFFICE_"))}
    env["BACKOFFICE_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "prefect-server", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # Wait until the command has launched the server (its log folder exists), then stop.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp_path / "data").exists():
            time.sleep(0.2)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    time.sleep(1.0)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
