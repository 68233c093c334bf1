"""`backoffice outbox`: list, re-drive, purge and reconcile the outbox; drain it once.

Mounted by the main CLI with ``app.add_typer(outbox_app, name="outbox")``.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment

outbox_app = typer.Typer(help="The outbox of messages to the downstream systems.",
                         no_args_is_help=True)
err = Console(stderr=True)
TargetsFile = Annotated[Path | None, typer.Option(help="Targets configuration file.")]


def _engine():
    settings = apply_environment()
    from backoffice.outbox import ensure_schema
    from backoffice.runtime import get_db

    engine = get_db(settings)
    ensure_schema(engine)
    return engine


def _status(value: str | None):
    from backoffice.outbox import OutboxStatus

    if value is None:
        return None
    try:
        return OutboxStatus(value)
    except ValueError:
        raise typer.BadParameter(f"one of {[s.value for s in OutboxStatus]}") from None


@outbox_app.command("list")
def list_cmd(
    status: str | None = typer.Option(None, help="pending, in_flight, posted or dead."),
    target: str | None = typer.Option(None, help="Only this target."),
    document: int | None = typer.Option(None, help="Only this document id."),
    limit: int = typer.Option(50, help="At most this many messages."),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines, one message a line."),
) -> None:
    """Messages with their status, attempts and errors (never their payloads), and counts."""
    from sqlmodel import Session

    from backoffice.outbox import counts, list_messages

    with Session(_engine()) as session:
        messages = list_messages(session, status=_status(status), target=target,
                                 document_id=document, limit=limit)
        summary = counts(session)
    rows = [{"id": m.id, "document_id": m.document_id, "target": m.target,
             "key": m.idempotency_key, "status": m.status.value, "attempts": m.attempts,
             "next_attempt_at": m.next_attempt_at.isoformat() if m.next_attempt_at else None,
             "remote_id": m.remote_id, "replayed": m.replayed,
             "error": m.dead_reason or m.last_error} for m in messages]
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    table = Table(title="Outbox messages")
    for col in ("id", "doc", "target", "status", "tries", "remote id", "error / reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), str(r["document_id"]), r["target"], r["status"],
                      str(r["attempts"]), r["remote_id"] or "", (r["error"] or "")[:80])
    console = Console()
    console.print(table)
    totals = Table(title="By target and status")
    totals.add_column("target")
    for s in ("pending", "in_flight", "posted", "dead"):
        totals.add_column(s, justify="right")
    for name, by_status in sorted(summary.items()):
        totals.add_row(name, *(str(by_status.get(s, 0)) for s in
                               ("pending", "in_flight", "posted", "dead")))
    console.print(totals)


@outbox_app.command()
def redrive(
    ids: Annotated[list[int] | None, typer.Argument(
        help="Message ids; default: every dead message.")] = None,
    target: str | None = typer.Option(None, help="Only this target."),
    pending: bool = typer.Option(False, help="Also make pending messages due now."),
) -> None:
    """Send dead messages again (safe: the same idempotency key creates nothing twice)."""
    from sqlmodel import Session

    from backoffice.outbox import OutboxStatus
    from backoffice.outbox import redrive as do_redrive

    statuses = [OutboxStatus.DEAD] + ([OutboxStatus.PENDING] if pending else [])
    with Session(_engine()) as session:
        n = do_redrive(session, ids=ids or None, target=target, statuses=statuses)
    err.print(f"re-driven: {n} message(s); run `backoffice outbox drain` to post them")


@outbox_app.command()
def purge(
    older_than_days: float = typer.Option(30.0, help="Only messages settled before this."),
    dead: bool = typer.Option(False, help="Purge dead messages too (their reasons go)."),
    target: str | None = typer.Option(None, help="Only this target."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
) -> None:
    """Delete posted (and with --dead, dead) messages settled long ago."""
    from sqlmodel import Session

    from backoffice.outbox import OutboxStatus
    from backoffice.outbox import purge as do_purge

    statuses = [OutboxStatus.POSTED] + ([OutboxStatus.DEAD] if dead else [])
    if not yes:
        typer.confirm(f"Delete {'/'.join(s.value for s in statuses)} messages older than "
                      f"{older_than_days:g} days?", abort=True)
    with Session(_engine()) as session:
        n = do_purge(session, older_than=timedelta(days=older_than_days), statuses=statuses,
                     target=target)
    err.print(f"purged: {n} message(s)")


@outbox_app.command()
def reconcile(
    target: Annotated[list[str] | None, typer.Option(
        help="Only these targets (repeatable).")] = None,
    targets_file: TargetsFile = None,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Compare what the outbox says was posted with what the targets hold (exit 1: differ)."""
    from backoffice.connectors import build_connectors, load_targets
    from backoffice.outbox import reconcile as do_reconcile

    engine = _engine()
    config = load_targets(targets_file)
    with build_connectors(config, target or None) as connectors:
        report = do_reconcile(engine, connectors)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
    else:
        table = Table(title="Reconciliation: outbox against downstream")
        for col in ("target", "posted", "held", "missing", "duplicates", "other id",
                    "dead but held", "broken", "in progress", "not in outbox", "ok"):
            table.add_column(col)
        for name, t in report.targets.items():
            table.add_row(name, str(t.posted), str(t.held), str(len(t.missing)),
                          str(len(t.duplicates)), str(len(t.mismatched)),
                          str(len(t.dead_but_held)), str(len(t.broken)),
                          str(len(t.in_progress_held)), str(len(t.not_in_outbox)),
                          "[green]yes[/]" if t.ok else f"[red]no[/] {t.error or ''}")
        Console().print(table)
    if not report.ok:
        raise typer.Exit(1)


@outbox_app.command()
def drain(
    prefect: bool = typer.Option(True, help="Run the drain-outbox flow (rate limits); "
                                 "--no-prefect drains in this process without them."),
    max_seconds: float = typer.Option(600.0, help="Stop after this long."),
    targets_file: TargetsFile = None,
) -> None:
    """Post the pending messages now, until none is left."""
    if prefect:
        apply_environment()
        from flows.drain_outbox import drain_outbox

        result = drain_outbox(max_seconds=max_seconds,
                              targets_file=str(targets_file) if targets_file else None)
    else:
        from backoffice.connectors import build_connectors, load_targets
        from backoffice.outbox import run_drain

        engine = _engine()
        with build_connectors(load_targets(targets_file)) as connectors:
            result = run_drain(engine, connectors, max_seconds=max_seconds).as_dict()
    err.print_json(json.dumps(result))
