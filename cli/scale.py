"""`backoffice prefect-server`, `deploy` and `reader`: running on many machines.

One Prefect server (on PostgreSQL), the deployments in a work pool that hosts join with
``prefect worker start --pool backoffice``, and readers (Prefect task workers keeping the
OCR models loaded) on as many hosts as the documents need. README: "Run it on many
machines".
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Annotated

import typer
from rich.console import Console

from backoffice.settings import apply_environment

err = Console(stderr=True)
log = logging.getLogger("backoffice.reader")


def prefect_server(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every host "
                                      "of the network).")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(
        help="Port (default BACKOFFICE_PREFECT_PORT, 4200).")] = None,
    database_url: Annotated[str | None, typer.Option(
        help="Prefect's database, postgresql+asyncpg://user@host:5432/prefect (default "
        "BACKOFFICE_PREFECT_DATABASE_URL; none: SQLite in the data folder).")] = None,
) -> None:
    """Run the Prefect server (API and UI) until stopped; on PostgreSQL for the at-scale
    path. Other hosts set PREFECT_API_URL=http://<this host>:<port>/api."""
    settings = apply_environment()
    from backoffice.server import _masked_url, start_prefect_server

    url = database_url or settings.prefect_database_url
    where = _masked_url(url) if url else f"SQLite ({settings.prefect_home})"
    err.print(f"starting the Prefect server on {host}:{port or settings.prefect_port}, "
              f"database {where}…")

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    # Before the server starts: a SIGTERM that comes as soon as it answers (a supervisor,
    # a test) stops it like Ctrl-C, instead of killing this process and orphaning it.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        server = start_prefect_server(port=port, host=host, database_url=url)
    except KeyboardInterrupt:
        err.print("stopped while starting")
        return
    except Exception as exc:  # noqa: BLE001 - a bad URL, an unreachable database: said, not a traceback
        err.print(f"[red]the Prefect server did not start: {type(exc).__name__}: "
                  f"{str(exc).strip()}[/]")
        raise typer.Exit(2) from None
    err.print(f"[bold]Prefect API[/]: {server.api_url}  UI: {server.url}  "
              f"(log {server.log_path})")
    try:
        while server.process.poll() is None:
            time.sleep(1)
        err.print(f"[red]the Prefect server exited ({server.process.returncode}); "
                  f"see {server.log_path}[/]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("stopping…")
    finally:
        server.stop()


def deploy(
    pool: Annotated[str | None, typer.Option(
        help="Work pool (default BACKOFFICE_WORK_POOL, backoffice); created if missing.")] = None,
    kind: Annotated[str, typer.Option(
        help="Pool type when it is created: process, docker or kubernetes (templates in "
        "flows/work_pools/).")] = "process",
    pause_schedules: Annotated[bool, typer.Option(
        "--pause-schedules", help="Create every schedule paused.")] = False,
) -> None:
    """Register the deployments with the Prefect server at PREFECT_API_URL, in a work pool.

    Then, on each host: `prefect worker start --pool backoffice` runs the flows and
    `backoffice reader` reads the documents."""
    settings = apply_environment()
    if not os.environ.get("PREFECT_API_URL"):
        err.print("[red]PREFECT_API_URL (or BACKOFFICE_PREFECT_API_URL) must point at the "
                  "Prefect server: http://host:4200/api[/]")
        raise typer.Exit(2)
    from flows.deployments import deploy_to_pool

    names = deploy_to_pool(settings, pool=pool, kind=kind, pause_schedules=pause_schedules)
    pool = pool or settings.work_pool
    for name in names:
        err.print(f"deployed {name} → pool {pool}")
    err.print(f"next, on each host: [bold]prefect worker start --pool {pool}[/] and "
              "[bold]backoffice reader[/]")


def _reachable(api_url: str) -> str | None:
    """None when the Prefect API answers its health check; else why not."""
    import httpx

    try:
        response = httpx.get(api_url.rstrip("/") + "/health", timeout=5)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


def _store_reachable(settings) -> str | None:
    from sqlalchemy import text

    from backoffice.runtime import get_db
    from domain.masking import mask_text

    try:
        with get_db(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported and retried
        return mask_text(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return None


def reader(
    limit: Annotated[int, typer.Option(
        help="Documents at once in this reader (one per CPU core the OCR may use).")] = 1,
    max_seconds: Annotated[float | None, typer.Option(
        help="Stop after this long (tests, benchmarks).")] = None,
    retry_max_seconds: Annotated[float, typer.Option(
        help="Longest wait between attempts to reach the server or the store.")] = 30.0,
) -> None:
    """Read documents on this host: a Prefect task worker serving `process-document`, with
    the OCR models loaded once. Needs PREFECT_API_URL and the shared store
    (BACKOFFICE_DATABASE_URL, BACKOFFICE_DOCUMENT_STORAGE=store or a shared URL).
    Run one per core; SIGTERM stops it after the document in hand."""
    settings = apply_environment()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s", stream=sys.stderr)
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        err.print("[red]PREFECT_API_URL (or BACKOFFICE_PREFECT_API_URL) must point at the "
                  "Prefect server: http://host:4200/api[/]")
        raise typer.Exit(2)
    from backoffice.blobs import StorageConfigError, storage_for

    try:
        storage_for(settings)
    except StorageConfigError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if settings.document_storage == "local":
        log.warning("BACKOFFICE_DOCUMENT_STORAGE=local: documents are read from this host's "
                    "data folder (%s); readers on other hosts need `store` or a shared URL",
                    settings.data_dir)
    from domain.masking import mask_text
    from flows.read_document import host_id, serve_readers

    started = time.monotonic()
    attempt = 0
    while True:
        problem = _reachable(api_url)
        what = f"the Prefect server at {api_url}"
        if problem is None:
            problem, what = _store_reachable(settings), "the store's database"
        if problem is not None:
            attempt += 1
            wait = min(retry_max_seconds, 2.0 ** min(attempt, 6))
            log.warning("reader %s cannot reach %s (attempt %d): %s; retrying in %.0f s",
                        host_id(), what, attempt, problem, wait)
            if max_seconds is not None and time.monotonic() - started + wait > max_seconds:
                raise typer.Exit(1)
            time.sleep(wait)
            continue
        if attempt:
            log.info("reader %s reached the Prefect server and the store after %d attempts",
                     host_id(), attempt)
        attempt = 0
        left = None if max_seconds is None else max(1.0, max_seconds - (time.monotonic() - started))
        log.info("reader %s: loading the OCR models, then serving process-document "
                 "(%d at a time)", host_id(), limit)
        try:
            serve_readers(settings, limit=limit, timeout=left)
            return
        except (TimeoutError, KeyboardInterrupt):
            return
        except Exception as exc:  # noqa: BLE001 - a lost server is retried, not fatal
            lost = _reachable(api_url) is not None
            if lost:
                log.warning("reader %s lost the Prefect server at %s (%s); reconnecting",
                            host_id(), api_url, mask_text(f"{type(exc).__name__}: {exc}"))
            else:
                log.error("reader %s stopped on an error: %s; starting again in %.0f s",
                          host_id(), mask_text(f"{type(exc).__name__}: {exc}"),
                          retry_max_seconds)
            time.sleep(2 if lost else retry_max_seconds)
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            return
