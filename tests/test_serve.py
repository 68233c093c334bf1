"""`backoffice serve` for real: a Prefect server on 127.0.0.1, every deployment served, a
review-document run executed by the served deployment, paused, resumed over the REST API
(as the UI does), and everything stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT
from sqlmodel import Session

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _post(url: str, body: dict) -> httpx.Response:
    """POST as Prefect's own client does: a 503 (SQLite busy on a loaded machine) is retried."""
    for _ in range(10):
        response = httpx.post(url, json=body, timeout=10)
        if response.status_code != 503:
            return response
        time.sleep(1)
    return response


def test_serve_runs_the_review_deployment_and_stops_cleanly(tmp_path):
    from test_review_flow import FRONT, make_review_doc

    import backoffice.outbox
    from backoffice.server import free_port
    from backoffice.store import Document, Status, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'backoffice.db'}")
    backoffice.outbox.ensure_schema(engine)
    doc_id = make_review_doc(FRONT, reason="name: confidence 0.60 below 0.85",
                             confidences={"name": 0.6}, engine=engine)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(BACKOFFICE_DATA_DIR=str(tmp_path))
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port",
                             str(port), "--pause-schedules"], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def deployments():
            try:
                found = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
            except httpx.HTTPError:
                return None
            return {d["name"]: d for d in found} if len(found) == 8 else None

        deps = _wait(deployments, 240, "eight deployments")
        assert deps["process-inbox"]["global_concurrency_limit"]["limit"] == 1
        assert deps["drain-outbox"]["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        for name in ("reconcile-masters", "kpi-report", "audit-checkpoint", "apply-retention"):
            (sched,) = deps[name]["schedules"]
            assert sched["schedule"]["timezone"] == "Asia/Shanghai"
        assert deps["process-inbox"]["parameter_openapi_schema"]["properties"][
            "confidence_threshold"]["anyOf"][0]["maximum"] == 1.0
        bad = _post(f"{api}/deployments/{deps['process-inbox']['id']}/create_flow_run",
                    {"parameters": {"confidence_threshold": 1.5}})
        assert bad.status_code == 409 and "maximum" in bad.text

        created = _post(f"{api}/deployments/{deps['review-document']['id']}/create_flow_run",
                        {"parameters": {"document_id": doc_id}})
        assert created.status_code == 201, created.text
        run = created.json()

        def paused():
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=5).json()["state"]
            return state if state["type"] == "PAUSED" else None

        _wait(paused, 180, "the served review run to pause")
        resumed = _post(f"{api}/flow_runs/{run['id']}/resume",
                        {"run_input": {"decision": "approve", "reviewer": "serve-test"}})
        assert resumed.status_code in (200, 201), resumed.text
        assert resumed.json()["status"] == "ACCEPT", resumed.text

        def decided():
            with Session(engine) as session:
                return session.get(Document, doc_id).status is Status.APPROVED

        _wait(decided, 120, "the document to be approved")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/health", timeout=2)
    assert "Prefect server stopped" in (tmp_path / "serve.log").read_text()


@pytest.mark.postgres
def test_prefect_server_on_postgresql(tmp_path, monkeypatch):
    """The README's at-scale path: Prefect's own server database on PostgreSQL."""
    import uuid

    import psycopg
    from conftest import PG_ADMIN_URL

    from backoffice.server import free_port, start_prefect_server

    name = f"prefect_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL",
                       f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}")
    server = start_prefect_server(port=free_port(), home=tmp_path / "prefect")
    try:
        assert server.healthy()
        made = httpx.post(f"{server.api_url}/flows/", json={"name": "pg-check"}, timeout=10)
        assert made.status_code in (200, 201), made.text
        with psycopg.connect(f"{base}/{name}") as conn:
            assert conn.execute("SELECT name FROM flow").fetchall() == [("pg-check",)]
    finally:
        server.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert not server.healthy()


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_the_prefect_server_never_outlives_the_process_that_started_it():
    """A `backoffice serve` killed by SIGKILL runs no `finally`: the server it started (in
    its own session, out of reach of a killpg on serve) is SIGTERMed by the kernel.

    The mechanism is checked on a stand-in command started exactly as the server is."""
    script = (
        "import subprocess, sys, time\n"
        "from backoffice.server import _stopped_with_parent\n"
        "cmd = _stopped_with_parent([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "child = subprocess.Popen(cmd, start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                              stdout=subprocess.PIPE, start_new_session=True)
    child = int(parent.stdout.readline())
    try:
        # Let the child reach the server's command (the guard has exec'd it).
        def started() -> bool:
            cmdline = Path(f"/proc/{child}/cmdline").read_text()
            return "time.sleep(120)" in cmdline and "prctl" not in cmdline

        _wait(started, 30, "the stand-in to start")
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        _wait(lambda: not _alive(child), 30, "the orphan to be stopped")
    finally:
        parent.kill()
        parent.stdout.close()
        if _alive(child):
            os.kill(child, signal.SIGKILL)
