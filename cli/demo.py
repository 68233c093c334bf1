"""`backoffice demo`: the whole path on a folder of fixtures, with embedded defaults."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment, get_settings

err = Console(stderr=True)


def demo(
    fixtures: Path = typer.Option(
        Path("fixtures"), "--fixtures", help="The fixtures folder: idcards/, claims/ and "
        "bad/ with their truth.jsonl / expected.jsonl (default: ./fixtures)."),
    keep: bool = typer.Option(False, help="Keep the previous demo data instead of starting "
                              "fresh."),
) -> None:
    """Run the process-inbox and drain-outbox flows on the bundled fixtures (sandbox downstream
    systems, Prefect's temporary local server) and report status, accuracy and posting."""
    from backoffice.demo import FixturesNotFound, fixture_sets

    fixtures = fixtures.expanduser().resolve()
    try:
        sets = fixture_sets(fixtures)
    except FixturesNotFound as exc:
        err.print(f"[red]demo: {exc}[/]")
        raise typer.Exit(2) from None
    demo_dir = get_settings().data_dir / "demo"
    if demo_dir.exists() and not keep:
        shutil.rmtree(demo_dir)
    os.environ["BACKOFFICE_DATA_DIR"] = str(demo_dir)
    os.environ.pop("BACKOFFICE_DATABASE_URL", None)
    # Every page of a demo case is in the inbox at once: a case missing a document need
    # not wait for it (BACKOFFICE_CASE_WAIT_SECONDS, an hour by default).
    os.environ.setdefault("BACKOFFICE_CASE_WAIT_SECONDS", "0")
    get_settings.cache_clear()
    settings = apply_environment()

    from backoffice.demo import stage_inbox
    from backoffice.sandbox.runner import start_sandbox

    inbox = demo_dir / "inbox"
    placed = stage_inbox(fixtures, sets, inbox, demo_dir / "outside-the-inbox.txt")
    err.print(f"[bold]demo[/]: {placed} fixture files from {fixtures} placed in {inbox}; "
              "starting the sandbox core and claims systems on 127.0.0.1…")
    sandbox = start_sandbox(demo_dir / "sandbox", export_env=True, fixtures=fixtures)
    # The settings read again: they now name the sandbox (BACKOFFICE_CORE_URL ...), so
    # the cross-system rules ask it.
    get_settings.cache_clear()
    settings = apply_environment()
    try:
        err.print(f"  core system {sandbox.core.url}, claims system {sandbox.claims.url}")
        err.print("[bold]process-inbox[/] flow (Prefect, temporary local server)…")
        from flows.drain_outbox import drain_outbox
        from flows.process_inbox import process_inbox

        result = process_inbox(inbox=str(inbox), batch="demo")
        err.print("[bold]drain-outbox[/] flow: posting approved documents…")
        drained = drain_outbox(until_empty=True, max_seconds=300.0)
        _print_outcome(settings, fixtures, sets, result)
        _print_posting(settings, sandbox, drained)
    finally:
        sandbox.stop()


def _print_outcome(settings, fixtures: Path, sets: list[str], result: dict) -> None:
    from backoffice.accuracy import pct
    from backoffice.demo import demo_outcome
    from backoffice.runtime import get_db

    out = Console()
    outcome = demo_outcome(get_db(settings), fixtures, sets, batch="demo")
    table = Table(title="Documents by status (after posting)")
    table.add_column("status")
    table.add_column("documents", justify="right")
    for status, n in outcome.by_status.items():
        # Only a claim case's pages stay processed: they wait for the case's decision.
        table.add_row("processed (pages waiting for their case)" if status == "processed"
                      else status, str(n))
    table.add_row("(duplicate files skipped)", str(result["duplicates"]))
    out.print(table)
    acc = outcome.accuracy
    t2 = Table(title="Field accuracy against ground truth (exact match)")
    t2.add_column("variant")
    t2.add_column("fields right", justify="right")
    t2.add_column("accuracy", justify="right")
    t2.add_column("doc type right", justify="right")
    for group, (hits, total) in acc.by_group().items():
        t2.add_row(group, f"{hits}/{total}", pct(hits, total),
                   f"{acc.type_hits[group]}/{acc.type_total[group]}")
    hits, total = acc.overall()
    t2.add_row("all", f"{hits}/{total}", pct(hits, total), "")
    out.print(t2)
    out.print(f"Data folder: {settings.data_dir} (store: {settings.database_url})")
    if outcome.identities:
        out.print("ID cards whose front and back are named as one card's two sides "
                  "(s2026_0001_front/_back) are one identity (the back's validity checked "
                  "against the front's birth date, and posted with it): "
                  + ", ".join(f"{n} {status}" for status, n in outcome.identities.items()))
    if outcome.cases:
        t4 = Table(title="Claim cases (fixtures/cases): one decision per case")
        for col in ("case", "expected", "got", "failed checks", "first reason"):
            t4.add_column(col)
        for row in outcome.cases:
            want = row["expected"] + (f" ({row['expected_rule']})" if row["expected_rule"] else "")
            colour = "green" if row["status"] in (row["expected"], "posted") and (
                row["expected_rule"] is None or row["expected_rule"] in row["failed_checks"]) \
                else "yellow"
            t4.add_row(row["case"], want, f"[{colour}]{row['status']}[/]",
                       ", ".join(row["failed_checks"]) or "-",
                       (row["reasons"][:1] or ["-"])[0][:90])
        out.print(t4)
        out.print("A case in review: backoffice case show CASE; decide it with "
                  "backoffice case decide CASE -d approve|reject -r NAME")
    if "bad" in sets:
        t3 = Table(title="Bad input (fixtures/bad): outcome and reason")
        for col in ("file", "outcome", "reason"):
            t3.add_column(col)
        for row in outcome.bad_inputs:
            t3.add_row(*row)
        out.print(t3)


def _print_posting(settings, sandbox, drained: dict) -> None:
    from sqlmodel import Session

    from backoffice.connectors import build_connectors
    from backoffice.outbox import counts, reconcile
    from backoffice.runtime import get_db

    out = Console()
    with Session(get_db(settings)) as session:
        by_target = counts(session)
    table = Table(title="Outbox: messages to downstream systems")
    table.add_column("target")
    for status in ("pending", "in_flight", "posted", "dead"):
        table.add_column(status, justify="right")
    for target, n in sorted(by_target.items()):
        table.add_row(target, *(str(n.get(s, 0)) for s in ("pending", "in_flight", "posted",
                                                            "dead")))
    out.print(table)
    report = reconcile(get_db(settings), build_connectors(sandbox.targets_config()))
    verdict = "[green]no difference[/]" if report.ok else "[red]differences found[/]"
    out.print(f"Posting: {drained.get('posted', 0)} posted in {drained.get('seconds', 0):.1f} s; "
              f"reconciliation of outbox against the downstream systems: {verdict}")
