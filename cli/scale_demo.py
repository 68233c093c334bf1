"""`backoffice scale-demo`: the many-machines path on one machine, end to end.

Starts what a bank runs on several hosts, each as separate processes with their own
working folder and data folder (no local path shared for documents):

- a Prefect server on PostgreSQL (its own database);
- the store on PostgreSQL (another database), originals kept in it
  (``BACKOFFICE_DOCUMENT_STORAGE=store``);
- the deployments in the work pool, and one ``prefect worker start --pool`` (the intake
  host) that runs the ``process-inbox`` flow runs;
- N readers (``backoffice reader``: Prefect task workers with the OCR models loaded).

Then it runs the bundled fixtures through the ``process-inbox`` deployment and reports,
from the store: documents per reader, documents per minute, and whether each document
was processed exactly once. :class:`Cluster` is what the tests and ``bench/bench_scale.py``
drive too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Self

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg_admin() -> str:
    return os.environ.get("BACKOFFICE_TEST_PG", DEFAULT_PG)


def _create_db(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_db(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "BACKOFFICE_"))}


@dataclass
class Cluster:
    """Prefect server + store on PostgreSQL, a work-pool worker and readers, as processes."""

    root: Path
    readers: int = 2
    cpu_threads: int | None = None
    lease_seconds: float = 600.0
    pg_admin: str = field(default_factory=_pg_admin)
    keep: bool = False
    recognizer_env: dict[str, str] = field(default_factory=dict)
    #: Log every API request in the server's log (uvicorn's access log), to count them.
    access_log: bool = False
    #: The address the Prefect server listens on (the other hosts reach it there).
    server_host: str = "127.0.0.1"
    #: A command prefix per reader, e.g. ``["ip", "netns", "exec", "host-1"]``: readers on
    #: other (network) hosts.
    reader_prefix: Callable[[int], list[str]] | None = None

    def __post_init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.store_db = f"bo_scale_store_{self.tag}"
        self.prefect_db = f"bo_scale_prefect_{self.tag}"
        base = self.pg_admin.rsplit("/", 1)[0]
        self.store_url = base.replace("postgresql://", "postgresql+psycopg://") + "/" + self.store_db
        self.prefect_url = base.replace("postgresql://", "postgresql+asyncpg://") + "/" + self.prefect_db
        self.server = None
        self.worker: subprocess.Popen | None = None
        self.reader_procs: list[subprocess.Popen] = []
        self.intake_dir = self.root / "intake"
        self.inbox = self.intake_dir / "inbox"

    # --- processes ---------------------------------------------------------------------

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        threads = self.cpu_threads or max(1, (os.cpu_count() or 2) // max(self.readers, 1))
        env = _clean_env()
        env.update({
            "PREFECT_API_URL": self.server.api_url,
            "PREFECT_HOME": str(data_dir / "prefect"),
            "BACKOFFICE_DATA_DIR": str(data_dir),
            "BACKOFFICE_DATABASE_URL": self.store_url,
            "BACKOFFICE_DOCUMENT_STORAGE": "store",
            "BACKOFFICE_DISPATCH": "readers",
            "BACKOFFICE_OCR_CPU_THREADS": str(threads),
            "BACKOFFICE_PROCESSING_LEASE_SECONDS": str(self.lease_seconds),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.recognizer_env)
        env.update(extra)
        return env

    def start(self) -> Cluster:
        from backoffice.server import free_port, start_prefect_server

        self.root.mkdir(parents=True, exist_ok=True)
        _create_db(self.pg_admin, self.store_db)
        self.server = start_prefect_server(
            port=free_port(self.server_host), host=self.server_host,
            home=self.root / "prefect-server", database_url=self.prefect_url,
            extra_env={"PREFECT_SERVER_LOGGING_LEVEL": "INFO"} if self.access_log else None)
        self.intake_dir.mkdir(parents=True, exist_ok=True)
        env = self.env(self.intake_dir / "data")
        subprocess.run([sys.executable, "-m", "cli", "deploy", "--pause-schedules"], env=env,
                       cwd=self.intake_dir, check=True, capture_output=True, timeout=300)
        self.worker = self._spawn(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "backoffice",
             "--type", "process", "--limit", "2"], self.intake_dir, env, "worker.log")
        for i in range(self.readers):
            self.add_reader(i)
        return self

    def _spawn(self, cmd: list[str], cwd: Path, env: dict[str, str], log: str) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        out = open(cwd / log, "ab")  # noqa: SIM115 - the child owns it
        try:
            return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            out.close()

    def add_reader(self, i: int) -> subprocess.Popen:
        home = self.root / f"reader-{i}"
        prefix = self.reader_prefix(i) if self.reader_prefix else []
        proc = self._spawn([*prefix, sys.executable, "-m", "cli", "reader"], home,
                           self.env(home / "data"), "reader.log")
        self.reader_procs.append(proc)
        return proc

    def connected_readers(self) -> set[str]:
        import httpx

        response = httpx.post(self.server.api_url + "/task_workers/filter", json={}, timeout=10)
        return {w["identifier"] for w in response.json()}

    def wait_for_readers(self, count: int | None = None, timeout: float = 300) -> None:
        count = self.readers if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.connected_readers()) >= count:
                return
            dead = [p for p in self.reader_procs if p.poll() is not None]
            if dead:
                raise RuntimeError("a reader exited:\n" + self.tail("reader-0/reader.log"))
            time.sleep(1)
        raise RuntimeError(f"{count} readers not connected after {timeout:.0f} s")

    def kill_a_reader_mid_document(self, timeout: float = 300) -> tuple[subprocess.Popen, int, str]:
        """Wait until a reader holds a document (its lease in the store), then SIGKILL it.
        Returns the reader's process, the document id and the Prefect task run id."""
        from backoffice import leases
        from backoffice.runtime import db_engine

        engine = db_engine(self.store_url)
        pids = {p.pid: p for p in self.reader_procs if p.poll() is None}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for doc_id, owner in leases.holders(engine).items():
                host, _, run_id = owner.partition("/")
                proc = pids.get(int(host.rsplit("-", 1)[1]))
                if proc is not None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                    return proc, doc_id, run_id
            time.sleep(0.05)
        raise TimeoutError(f"no reader held a document within {timeout:.0f} s")

    def api_calls(self) -> int:
        """API requests the server has answered so far (needs ``access_log``)."""
        text = self.server.log_path.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if '"' in line and " /api/" in line
                   and "HTTP/1.1" in line)

    def server_cpu_seconds(self) -> float:
        """CPU seconds the Prefect server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.server.process.pid}/stat").read_text().rsplit(")", 1)[1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def tail(self, rel: str, lines: int = 40) -> str:
        path = self.root / rel
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def run_inbox(self, timeout: float = 3600, **parameters) -> dict:
        """Start a process-inbox run of the deployment (through the work pool's worker) and
        wait for it; returns its state name and result summary."""
        import httpx

        api = self.server.api_url
        deployment = httpx.get(f"{api}/deployments/name/process-inbox/process-inbox",
                               timeout=10).json()
        params = {"inbox": str(self.inbox), "request_review": False, **parameters}
        run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run",
                         json={"parameters": params}, timeout=10).json()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=10).json()["state"]
            if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return {"flow_run": run["id"], "state": state["type"],
                        "message": state.get("message")}
            time.sleep(2)
        raise TimeoutError(f"process-inbox run {run['id']} not finished in {timeout:.0f} s")

    def stop(self) -> None:
        for proc in [*self.reader_procs, self.worker]:
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in [*self.reader_procs, self.worker]:
            if proc is None:
                continue
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self.server is not None:
            self.server.stop()
        if not self.keep:
            for name in (self.store_db, self.prefect_db):
                try:
                    _drop_db(self.pg_admin, name)
                except Exception as exc:  # noqa: BLE001 - best effort at teardown
                    err.print(f"could not drop database {name}: {exc}")

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# --- the store's account -----------------------------------------------------------------


def store_report(store_url: str) -> dict:
    """Per-reader counts, timing and the exactly-once check, from the store alone."""
    from sqlmodel import Session, select

    from backoffice.audit import AuditEvent
    from backoffice.runtime import db_engine
    from backoffice.store import Document, Status

    engine = db_engine(store_url)
    with Session(engine) as session:
        docs = session.exec(select(Document)).all()
        events = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
    top = [d for d in docs if d.page == 0]
    claims: dict[int, list[AuditEvent]] = {}
    outcomes: Counter = Counter()
    first = last = None
    for ev in events:
        data = ev.data or {}
        if ev.action == "status" and data.get("from") == "received" and data.get("to") == "processing":
            claims.setdefault(ev.document_id, []).append(ev)
            first = first or ev.at
        if ev.action == "processed" or (ev.action == "status" and data.get("from") == "processing"
                                        and data.get("to") == "quarantined"):
            outcomes[ev.document_id] += 1
            last = ev.at
    by_reader: Counter = Counter()
    for doc in top:
        if doc.id in claims:
            by_reader[claims[doc.id][-1].actor.split("/", 1)[0]] += 1
    active = [d.id for d in docs if Status(d.status) in (Status.RECEIVED, Status.PROCESSING)]
    read = [d for d in top if d.id in claims]
    # Each document read: one outcome for the document (pages: one each, never twice).
    twice = [i for i, n in outcomes.items() if n > 1]
    missing = [d.id for d in read if outcomes[d.id] == 0]
    seconds = (last - first).total_seconds() if first and last else 0.0
    return {
        "documents": len(top), "read": len(read), "by_reader": dict(by_reader),
        "statuses": dict(Counter(Status(d.status).value for d in docs)),
        "active": active, "recorded_twice": twice, "without_outcome": missing,
        "claims": sum(len(v) for v in claims.values()),
        "seconds": round(seconds, 1),
        "per_minute": round(60 * len(read) / seconds, 1) if seconds else 0.0,
        "exactly_once": not twice and not missing and not active,
    }


def scale_demo(
    readers: Annotated[int, typer.Option("--readers", "-n", help="Readers to start.")] = 2,
    fixtures: Annotated[Path, typer.Option(help="Fixtures folder (idcards/, claims/, bad/).")
                        ] = Path("fixtures"),
    root: Annotated[Path | None, typer.Option(
        help="Working folder of the hosts (default var/scale-demo).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the databases.")] = False,
) -> None:
    """Run the bundled fixtures through a PostgreSQL-backed Prefect server, the work pool
    and N readers (separate processes and folders), and report from the store."""
    from backoffice.demo import fixture_sets, stage_inbox

    fixtures = fixtures.expanduser().resolve()
    sets = fixture_sets(fixtures)
    root = (root or Path("var/scale-demo")).resolve()
    shutil.rmtree(root, ignore_errors=True)
    cluster = Cluster(root=root, readers=readers, keep=keep)
    err.print(f"[bold]scale-demo[/]: Prefect server and store on PostgreSQL, work pool "
              f"'backoffice', {readers} readers under {root}")
    with cluster:
        err.print(f"Prefect UI: {cluster.server.url}; waiting for the readers to load the "
                  "OCR models…")
        cluster.wait_for_readers()
        placed = stage_inbox(fixtures, sets, cluster.inbox, root / "outside-the-inbox.txt")
        err.print(f"{placed} files placed in the intake host's inbox; process-inbox run…")
        started = time.monotonic()
        run = cluster.run_inbox()
        wall = time.monotonic() - started
        report = store_report(cluster.store_url)
    table = Table(title="Documents per reader (from the store's claims)")
    table.add_column("reader (host-pid)")
    table.add_column("documents", justify="right")
    for name, n in sorted(report["by_reader"].items()):
        table.add_row(name, str(n))
    Console().print(table)
    out = Console()
    out.print(f"process-inbox run: {run['state']}")
    out.print(f"statuses: {json.dumps(report['statuses'])}")
    out.print(f"documents read: {report['read']} in {report['seconds']} s: "
              f"{report['per_minute']} documents/minute (run wall time {wall:.0f} s)")
    out.print("each document processed exactly once: "
              + ("yes" if report["exactly_once"] else
                 f"NO (twice: {report['recorded_twice']}, no outcome: "
                 f"{report['without_outcome']}, still active: {report['active']})"))
    if run["state"] != "COMPLETED" or not report["exactly_once"]:
        raise typer.Exit(1)
