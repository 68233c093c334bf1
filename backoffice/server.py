"""A local Prefect server for operators: start it on 127.0.0.1, wait until healthy, stop it.

``backoffice serve`` uses :func:`start_prefect_server` then
:func:`flows.deployments.serve_deployments`; a test can do the same::

    server = start_prefect_server(port=free_port(), home=tmp / "prefect")
    try:
        ...  # PREFECT_API_URL=server.api_url for the processes that talk to it
    finally:
        server.stop()

Prefect's own database is SQLite under ``home`` unless
``PREFECT_SERVER_DATABASE_CONNECTION_URL`` (``postgresql+asyncpg://...``) is set in the
environment, which the server process inherits.

The server lives in its own session (Ctrl-C in a terminal reaches only its parent, which
stops it in order), yet it never outlives that parent: on Linux it is asked to stop
(SIGTERM) when the thread that started it dies, even by SIGKILL. Start it from a thread
that lives as long as the server should (``backoffice serve``: the main thread).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from backoffice.settings import apply_environment

# Run before `prefect server start`, in the process that becomes it: ask Linux for SIGTERM
# when the parent dies (prctl PR_SET_PDEATHSIG, kept across exec), then exec the server.
# A launcher rather than a preexec_fn, which is unsafe when the parent has threads.
_STOP_WITH_PARENT = """\
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit("backoffice: the process that started the Prefect server is gone")
os.execv(sys.argv[2], sys.argv[2:])
"""


def _stopped_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` run so that it is SIGTERMed when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-c", _STOP_WITH_PARENT, str(os.getpid()), *cmd]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class PrefectServer:
    """A running ``prefect server start`` process."""

    url: str
    process: subprocess.Popen
    home: Path
    log_path: Path
    _log: object = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    def healthy(self) -> bool:
        try:
            return httpx.get(self.api_url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server and everything it started (its process group)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def server_environment(home: Path, api_url: str | None = None) -> dict[str, str]:
    """The environment of a server process (and of processes that talk to it): offline
    switches on, Prefect's home inside the data folder."""
    apply_environment()
    env = dict(os.environ)
    env["PREFECT_HOME"] = str(home)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _masked_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def ensure_postgres_database(url: str) -> None:
    """Create the database of a ``postgresql+asyncpg://`` URL if it does not exist (the
    server creates its tables itself, but not the database)."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (parsed.database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')


def start_prefect_server(port: int | None = None, home: Path | None = None, *,
                         host: str = "127.0.0.1", timeout: float = 180.0,
                         database_url: str | None = None,
                         extra_env: dict[str, str] | None = None) -> PrefectServer:
    """Start ``prefect server start`` on ``host:port`` and wait until it answers.

    ``home``: Prefect's home (logs; its SQLite database unless ``database_url``); default
    the data folder's ``prefect/``. ``database_url`` (default
    ``BACKOFFICE_PREFECT_DATABASE_URL``): Prefect's own database on PostgreSQL,
    ``postgresql+asyncpg://user@host:5432/prefect``; the database is created if missing.
    Raises ``RuntimeError`` with the end of the server's log if it dies or does not become
    healthy within ``timeout`` seconds.
    """
    settings = apply_environment()
    port = port or settings.prefect_port
    home = Path(home or settings.prefect_home)
    home.mkdir(parents=True, exist_ok=True)
    database_url = database_url or settings.prefect_database_url
    log_path = home / "server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed by PrefectServer.stop
    # With its services: the scheduler creates the deployments' scheduled runs.
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", host,
           "--port", str(port)]
    env = server_environment(home)
    if database_url:
        if not database_url.startswith("postgresql+asyncpg://"):
            log.close()
            raise ValueError("Prefect's database URL must be postgresql+asyncpg://...; got "
                             + _masked_url(database_url))
        ensure_postgres_database(database_url)
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    env.update(extra_env or {})
    # The UI asks its browser to call this URL; by default it would say port 4200.
    env.update(PREFECT_SERVER_API_HOST=host, PREFECT_SERVER_API_PORT=str(port),
               PREFECT_UI_API_URL=f"http://{host}:{port}/api")
    process = subprocess.Popen(_stopped_with_parent(cmd), env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = PrefectServer(url=f"http://{host}:{port}", process=process, home=home,
                           log_path=log_path, _log=log)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                server.stop()
                raise RuntimeError(f"prefect server exited ({process.returncode}):\n"
                                   + _tail(log_path))
            if server.healthy():
                return server
            time.sleep(0.5)
    except BaseException:
        server.stop()  # interrupted while starting (Ctrl-C, SIGTERM): no orphan server
        raise
    server.stop()
    raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s:\n" + _tail(log_path))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
