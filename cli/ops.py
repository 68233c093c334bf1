"""Operator commands: `backoffice serve`, `backoffice review list|show|decide|confirm`,
`backoffice kpi`, and the progress display of `backoffice process`. Mounted by the main CLI.

`review decide|confirm` and `review show --reveal/--portrait` act for a reviewer:
`--reviewer ID` and the personal key (``BACKOFFICE_REVIEWER_KEY`` or a hidden prompt; see
``cli/reviewers.py``). Every reveal is audited."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from backoffice.settings import apply_environment

review_app = typer.Typer(help="The review queue: documents waiting for a person.",
                         no_args_is_help=True)
err = Console(stderr=True)


# --- serve ---------------------------------------------------------------------------


def serve(
    port: int | None = typer.Option(None, help="Port of the local Prefect server "
                                    "(default BACKOFFICE_PREFECT_PORT, 4200)."),
    pause_schedules: bool = typer.Option(False, "--pause-schedules", help="Create every "
                                         "schedule paused: runs only when triggered."),
    limit: int | None = typer.Option(None, help="At most this many flow runs at once."),
    requeue_reviews: bool = typer.Option(
        False, "--requeue-reviews", help="Once served, give every document waiting for "
        "review a fresh review run (runs paused under a previous `serve` have no process "
        "behind them any more). Only when this is the one process serving reviews."),
) -> None:
    """Start a local Prefect server on 127.0.0.1 and serve all deployments (Ctrl-C stops).

    With BACKOFFICE_PREFECT_API_URL set, serve the deployments against that server instead.
    """
    settings = apply_environment()
    server = None
    if settings.prefect_api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect_api_url
        err.print(f"serving deployments against {settings.prefect_api_url}")
    else:
        from backoffice.server import start_prefect_server

        err.print(f"starting the Prefect server on 127.0.0.1:{port or settings.prefect_port} "
                  f"(home {settings.prefect_home})…")
        server = start_prefect_server(port=port, home=settings.prefect_home)
        os.environ["PREFECT_API_URL"] = server.api_url
        err.print(f"[bold]Prefect UI[/]: {server.url}  (log {server.log_path})")

    def _terminate(signum, frame):  # SIGTERM stops like Ctrl-C: the finally below runs
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    if requeue_reviews:
        threading.Thread(target=_requeue_when_served, args=(settings,), daemon=True,
                         name="requeue-reviews").start()
    try:
        # Imported only now: Prefect reads PREFECT_API_URL when it is first imported.
        from flows.deployments import serve_deployments

        err.print("serving: process-inbox, drain-outbox, reconcile-masters, kpi-report, "
                  "review-document, review-case, audit-checkpoint, apply-retention")
        serve_deployments(settings, pause_schedules=pause_schedules, limit=limit)
    except KeyboardInterrupt:
        err.print("stopping…")
    finally:
        if server is not None:
            server.stop()
            err.print("Prefect server stopped")


def _requeue_when_served(settings, timeout: float = 300.0) -> None:
    """Wait until the review-document deployment is registered, then requeue the queue."""
    from backoffice.review import review_queue
    from backoffice.runtime import get_db

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            from flows.review_document import requeue_reviews

            ids = [i.document_id for i in review_queue(get_db(settings), settings)]
            started = requeue_reviews(ids)
            err.print(f"review runs requeued for {len(started)} document(s)")
            return
        except Exception as exc:  # noqa: BLE001 - not served yet: try again
            last = exc
            time.sleep(3)
    err.print(f"[red]could not requeue reviews: {last}[/]")


# --- process with a progress bar ----------------------------------------------------


def run_with_progress(inbox: Path, batch: str | None, **params) -> dict:
    """Run the process-inbox flow in a thread while a rich progress bar follows the
    batch's documents in the store (taken in vs. finished)."""
    settings = apply_environment()
    from backoffice.batch import batch_progress
    from backoffice.runtime import get_db

    batch = batch or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"
    files = sum(1 for p in inbox.rglob("*") if p.is_file())
    outcome: dict = {}

    def _run() -> None:
        from flows.process_inbox import process_inbox

        try:
            outcome["result"] = process_inbox(inbox=str(inbox), batch=batch, **params)
        except Exception as exc:  # noqa: BLE001 - re-raised by the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=_run, name="process-inbox", daemon=True)
    engine = get_db(settings)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[statuses]}"), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        task = progress.add_task(f"batch {batch}", total=files or None, statuses="starting")
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            state = batch_progress(engine, batch)
            progress.update(task, total=max(state.total, files) or None,
                            completed=state.settled,
                            statuses=" ".join(f"{k}={v}" for k, v in state.by_status.items()))
        state = batch_progress(engine, batch)
        progress.update(task, total=state.total or 1, completed=state.settled or 1,
                        statuses=" ".join(f"{k}={v}" for k, v in state.by_status.items()))
    if "error" in outcome:
        raise outcome["error"]
    return {"batch": batch, **outcome["result"]}


# --- review --------------------------------------------------------------------------


def _item_table(item, reveal: set[str]) -> Table:
    table = Table(title=f"document {item.document_id} — {item.doc_type} — {item.file} "
                  f"p.{item.page}")
    table.add_column("field")
    table.add_column("value")
    table.add_column("conf.", justify="right")
    table.add_column("to check")
    for f in item.fields:
        shown = f.shown(reveal=f.name in reveal)
        table.add_row(f.name, "—" if shown is None else shown, f"{f.confidence:.2f}",
                      "; ".join(f.why))
    return table


@review_app.command("list")
def review_list(
    batch: str | None = typer.Option(None, help="Only this batch."),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines (masked)."),
) -> None:
    """Documents waiting for review, oldest first (personal data masked)."""
    settings = apply_environment()
    from backoffice.review import review_queue
    from backoffice.runtime import get_db

    items = review_queue(get_db(settings), settings, batch=batch)
    if as_json:
        for i in items:
            sys.stdout.write(json.dumps({
                "document_id": i.document_id, "doc_type": i.doc_type, "file": i.file,
                "batch": i.batch, "waiting_since": i.waiting_since.isoformat(),
                "reasons": i.reasons, "to_correct": i.to_correct}, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Review queue: {len(items)} document(s)")
    for col in ("id", "type", "file", "batch", "waiting", "why"):
        table.add_column(col)
    now = datetime.now(UTC)
    for i in items:
        waited = now - i.waiting_since
        table.add_row(str(i.document_id), i.doc_type or "-", i.file, i.batch or "-",
                      str(timedelta(seconds=int(waited.total_seconds()))),
                      "; ".join(i.reasons)[:120])
    Console().print(table)


@review_app.command("show")
def review_show(
    document_id: int = typer.Argument(..., help="The document."),
    reveal: list[str] = typer.Option([], "--reveal", help="Show this personal field in clear "
                                     "(repeatable; needs --reviewer, audited); fields to "
                                     "check are always in clear."),
    portrait: Path | None = typer.Option(None, "--portrait", help="Write the portrait cropped "
                                         "from the ID front to this JPEG file (needs "
                                         "--reviewer, audited)."),
    reviewer: str | None = typer.Option(None, "--reviewer", "-r", help="Your reviewer id: "
                                        "needed to reveal (key: BACKOFFICE_REVIEWER_KEY or "
                                        "the prompt)."),
) -> None:
    """One document: its fields (masked unless revealed or to check), failed checks, risk
    signals, and the decision waiting for a second reviewer if any."""
    settings = apply_environment()
    from backoffice.review import (
        ReviewError,
        portrait_image,
        proposal_view,
        record_reveal,
        review_item,
    )
    from backoffice.runtime import get_db
    from cli.reviewers import acting

    engine = get_db(settings)
    try:
        item = review_item(engine, document_id, settings)
    except ReviewError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    names = {f.name for f in item.fields}
    unknown = sorted(set(reveal) - names)
    if unknown:
        err.print(f"[red]document {document_id} has no field(s) {', '.join(unknown)}[/]")
        raise typer.Exit(2)
    revealed = sorted(f.name for f in item.fields if f.name in reveal and f.personal
                      and not f.needs_correction)
    if revealed or portrait is not None:
        who = acting(engine, settings, reviewer, "revealing personal data")
        if revealed:
            record_reveal(engine, who, document_id, revealed)
    out = Console()
    out.print(f"status [bold]{item.status}[/], batch {item.batch or '-'}, waiting since "
              f"{item.waiting_since:%Y-%m-%d %H:%M:%S} UTC")
    for r in item.reasons:
        out.print(f"  • {r}")
    out.print(_item_table(item, set(revealed)))
    for c in item.failed_checks:
        out.print(f"[yellow]{c.rule}[/] ({c.severity}) {c.explanation}")
    for r in item.risks:
        out.print(f"[red]risk {r.signal}[/] (score {r.score:.2f}) {r.reason}")
    view = proposal_view(engine, document_id)
    if view is not None:
        out.print(f"[yellow]proposal {view.id} of {view.maker} waits for a second reviewer "
                  f"({', '.join(view.needs)}): backoffice review confirm {document_id}[/]")
    if portrait is not None:
        data = portrait_image(item, settings)
        if data is None:
            err.print("[red]no portrait is kept for this document[/]")
            raise typer.Exit(1)
        record_reveal(engine, who, document_id, ["portrait"], what="portrait")
        portrait.write_bytes(data)
        out.print(f"portrait written to {portrait} ({len(data)} bytes)")


@review_app.command("decide")
def review_decide(
    document_id: int = typer.Argument(..., help="The document."),
    decision: str = typer.Option(..., "--decision", "-d",
                                 help="approve | correct | reject"),
    reviewer: str = typer.Option(..., "--reviewer", "-r", help="Your reviewer id (audited; "
                                 "key: BACKOFFICE_REVIEWER_KEY or the prompt)."),
    set_: list[str] = typer.Option([], "--set", help="FIELD=VALUE correction (repeatable)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (required to reject)."),
    override: bool = typer.Option(False, "--override", help="Approve although a rule still "
                                  "fails with an error (audited; needs a second reviewer)."),
) -> None:
    """Approve, correct or reject a document waiting for review.

    Exit 0: decided; 1: not in review (or unknown field); 2: invalid input or the reviewer
    cannot act; 3: corrected values still fail a rule, the document stays in review with
    the new reasons; 4: the decision needs a second reviewer (four eyes) and waits for
    `backoffice review confirm`.
    """
    settings = apply_environment()
    from pydantic import ValidationError

    from backoffice.review import ReviewDecision, ReviewError, apply_review
    from backoffice.reviewers import IdentityError
    from backoffice.runtime import get_db
    from cli.reviewers import acting

    corrections = {}
    for item in set_:
        name, sep, value = item.partition("=")
        if not sep:
            err.print(f"[red]--set needs FIELD=VALUE, got {item!r}[/]")
            raise typer.Exit(2)
        corrections[name.strip()] = value
    engine = get_db(settings)
    try:
        chosen = ReviewDecision(decision=decision, reviewer=reviewer, corrections=corrections,
                                reject_reason=reason, override=override)
    except ValidationError as exc:
        err.print("[red]" + "; ".join(e["msg"] for e in exc.errors()) + "[/]")
        raise typer.Exit(2) from None
    who = acting(engine, settings, reviewer, "deciding")
    try:
        outcome = apply_review(engine, document_id, chosen, identity=who, settings=settings)
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except ReviewError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    if outcome.pending is not None:
        Console(highlight=False).print(f"document {document_id}: {outcome.message}",
                                       style="yellow", markup=False)
        raise typer.Exit(4)
    colour = "yellow" if outcome.status == "in_review" else "green"
    Console().print(f"[{colour}]document {document_id}: {outcome.status}[/] — "
                    f"{outcome.message}; corrected {outcome.corrected or 'nothing'}; "
                    f"{outcome.outbox_messages} outbox message(s)")
    if outcome.status == "in_review":
        raise typer.Exit(3)


@review_app.command("confirm")
def review_confirm(
    document_id: int = typer.Argument(..., help="The document whose decision waits for a "
                                      "second reviewer."),
    reviewer: str = typer.Option(..., "--reviewer", "-r", help="Your reviewer id: a checker, "
                                 "not the maker (key: BACKOFFICE_REVIEWER_KEY or the prompt)."),
    refuse: bool = typer.Option(False, "--refuse", help="Refuse the proposal (give --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why you refuse."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm without asking."),
) -> None:
    """Confirm (or --refuse) the decision another reviewer proposed on a document under
    four eyes: an override, or a change of an ID, account or card number.

    Exit 0: applied or refused; 1: nothing to confirm (or it is void); 2: you cannot check
    it (role, key, you are the maker); 3: applied but a rule still fails.
    """
    settings = apply_environment()
    from backoffice.review import ReviewError, decide_proposal, proposal_view
    from backoffice.reviewers import IdentityError
    from backoffice.runtime import get_db
    from cli.reviewers import acting, show_proposal

    engine = get_db(settings)
    view = proposal_view(engine, document_id)
    if view is None:
        err.print(f"[red]document {document_id} has no decision waiting for a second "
                  "reviewer[/]")
        raise typer.Exit(1)
    who = acting(engine, settings, reviewer, "checking")
    out = Console(highlight=False)
    show_proposal(out, view, yes=yes, refuse=refuse)
    try:
        outcome = decide_proposal(engine, document_id, who, confirm=not refuse,
                                  reason=reason, settings=settings)
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except ReviewError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    out.print(f"document {document_id}: {outcome.status} — {outcome.message}; "
              f"{outcome.outbox_messages} outbox message(s)", markup=False)
    if not refuse and outcome.status == "in_review":
        raise typer.Exit(3)


@review_app.command("requeue")
def review_requeue(
    document_ids: list[int] = typer.Argument(None, help="Documents (default: the whole queue)."),
) -> None:
    """Give documents waiting for review a fresh review run in the Prefect UI (after a
    timeout, or when `backoffice serve` restarted under a paused run)."""
    settings = apply_environment()
    os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url or
                          f"http://127.0.0.1:{settings.prefect_port}/api")
    from backoffice.review import review_queue
    from backoffice.runtime import get_db

    ids = document_ids or [i.document_id for i in review_queue(get_db(settings), settings)]
    from flows.review_document import requeue_reviews

    started = requeue_reviews(ids)
    for doc_id, run_id in started.items():
        Console().print(f"document {doc_id}: review run {run_id}")
    skipped = sorted(set(ids) - set(started))
    if skipped:
        err.print(f"not in review (skipped): {skipped}")


# --- kpi -----------------------------------------------------------------------------


def kpi(
    days: int | None = typer.Option(None, help="Documents received in the last N days "
                                    "(default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """KPIs from the store: straight-through and manual-touch rates, handling time,
    error rate per rule, documents per status."""
    settings = apply_environment()
    from backoffice.kpi import compute_kpis, kpi_markdown, rule_table
    from backoffice.runtime import get_db

    since = datetime.now(UTC) - timedelta(days=days) if days else None
    report = compute_kpis(get_db(settings), since=since)
    if as_json:
        sys.stdout.write(json.dumps({
            **report.model_dump(mode="json", exclude={"rules"}),
            "straight_through_rate": report.straight_through_rate,
            "manual_touch_rate": report.manual_touch_rate, "rules": rule_table(report)}) + "\n")
        return
    Console().print(Markdown(kpi_markdown(report)))


def mount(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("kpi")(kpi)
    app.add_typer(review_app, name="review")

