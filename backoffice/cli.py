"""The `backoffice` command line."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment, get_settings

app = typer.Typer(help="On-premises reading, checking and posting of ID cards and claim forms.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _mount_outbox() -> None:
    from backoffice.cli_outbox import outbox_app

    app.add_typer(outbox_app, name="outbox", help="List, drain, re-drive, purge and "
                  "reconcile the outbox of messages to downstream systems.")


_mount_outbox()


def _mount_reconcile() -> None:
    from backoffice.reconcile_job import reconcile_app

    app.add_typer(reconcile_app, name="reconcile",
                  help="Reconcile the core and claims customer masters (set-based).")


_mount_reconcile()


def _mount_operations() -> None:
    from backoffice.cli_ops import mount

    mount(app)  # serve, review list|show|decide, kpi


_mount_operations()
console = Console(stderr=True)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_ROOT / "fixtures"


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and not q.name.endswith(".jsonl")
                              and not q.name.endswith(".md")))
        else:
            out.append(p)
    return out


@app.command()
def extract(
    paths: list[Path] = typer.Argument(..., help="Image or PDF files, or folders of them."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON Lines (one object per page)."),
) -> None:
    """Read documents and print their fields, quality and checks."""
    settings = apply_environment()
    from backoffice.processing import extract_file
    from backoffice.runtime import get_recognizer

    files = _expand(paths)
    recognizer = get_recognizer(settings)
    for path in files:
        for record in extract_file(path, recognizer, settings):
            if as_json:
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                _print_record(record)


def _print_record(record: dict) -> None:
    from backoffice.masking import mask_value

    table = Table(title=f"{record['source']} — {record['doc_type']}", show_lines=False)
    table.add_column("field")
    table.add_column("value")
    table.add_column("confidence", justify="right")
    for name, f in record["fields"].items():
        table.add_row(name, str(mask_value(name, f["value"])), f"{f['confidence']:.3f}")
    if record["error"]:
        table.add_row("error", record["error"], "")
    for check in record["checks"]:
        if not check["passed"]:
            table.add_row(f"check {check['rule']}", f"{check['severity']}: {check['message']}", "")
    Console().print(table)


@app.command("id-number")
def id_number(
    numbers: list[str] = typer.Argument(..., help="ID numbers, 15 or 18 characters."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON Lines."),
) -> None:
    """Check and describe resident identity numbers (GB 11643, 15 and 18 digits)."""
    from validators.cli_support import describe_id_number

    for number in numbers:
        info = describe_id_number(number)
        if as_json:
            sys.stdout.write(json.dumps(info, ensure_ascii=False, default=str) + "\n")
        else:
            status = "[green]valid[/]" if info["valid"] else "[red]invalid[/]"
            Console().print(f"{number}: {status} kind={info['kind']} "
                            f"normalized={info['normalized']} birth={info['birth_date']} "
                            f"sex={info['sex']} region={info['region']}")
            for check in info["checks"]:
                if not check["passed"]:
                    Console().print(f"  {check['severity']}: {check['message']}")


@app.command()
def process(
    inbox: Path = typer.Argument(..., help="Folder to take documents from."),
    batch: str | None = typer.Option(None, help="A batch label stored with each document "
                                     "(default: a new cli-<time> label)."),
    doc_type: list[str] = typer.Option([], "--doc-type", help="Route only this document "
                                       "type (repeatable): id_card_front, id_card_back, "
                                       "claim_form, unknown."),
    confidence_threshold: float | None = typer.Option(None, min=0.0, max=1.0,
                                                      help="Review below this confidence."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Read and validate only."),
    max_documents: int | None = typer.Option(None, min=1, help="At most N documents."),
    progress: bool = typer.Option(True, help="Show a progress bar (stderr)."),
) -> None:
    """Run the process-inbox flow once on a folder (Prefect, temporary or configured server)."""
    apply_environment()
    params = {"doc_types": doc_type or None, "confidence_threshold": confidence_threshold,
              "dry_run": dry_run, "max_documents": max_documents}
    if progress and not dry_run:
        from backoffice.cli_ops import run_with_progress

        result = run_with_progress(inbox, batch, **params)
    else:
        from flows.process_inbox import process_inbox

        result = process_inbox(inbox=str(inbox), batch=batch, **params)
    console.print_json(json.dumps(result))


@app.command()
def demo(
    keep: bool = typer.Option(False, help="Keep the previous demo data instead of starting fresh."),
) -> None:
    """Run the process-inbox flow on the bundled fixtures and report status and accuracy."""
    base = get_settings().data_dir
    demo_dir = base / "demo"
    if demo_dir.exists() and not keep:
        shutil.rmtree(demo_dir)
    os.environ["BACKOFFICE_DATA_DIR"] = str(demo_dir)
    os.environ.pop("BACKOFFICE_DATABASE_URL", None)
    get_settings.cache_clear()
    settings = apply_environment()
    from backoffice.intake import copy_tree

    inbox = demo_dir / "inbox"
    sources = [d for d in ("idcards", "claims", "bad") if (FIXTURES / d).is_dir()]
    copied = 0
    for name in sources:
        copied += copy_tree(FIXTURES / name, inbox / name)
    for truth in inbox.rglob("truth.jsonl"):
        truth.unlink()
    for readme in inbox.rglob("*.md"):
        readme.unlink()
    from backoffice.sandbox.runner import start_sandbox

    console.print(f"[bold]demo[/]: {copied} fixture files copied to {inbox}; starting the "
                  "sandbox core and claims systems on 127.0.0.1…")
    sandbox = start_sandbox(demo_dir / "sandbox", export_env=True)
    try:
        console.print(f"  core system {sandbox.core.url}, claims system {sandbox.claims.url}")
        console.print("[bold]process-inbox[/] flow (Prefect, temporary local server)…")
        from flows.drain_outbox import drain_outbox
        from flows.process_inbox import process_inbox

        result = process_inbox(inbox=str(inbox), batch="demo")
        console.print("[bold]drain-outbox[/] flow: posting approved documents…")
        drained = drain_outbox(until_empty=True, max_seconds=300.0)
        _demo_summary(settings, result, sources)
        _demo_posting(settings, sandbox, drained)
    finally:
        sandbox.stop()


def _demo_summary(settings, result: dict, sources: list[str]) -> None:
    from collections import Counter

    from sqlmodel import Session, select

    from backoffice.accuracy import AccuracyTable, load_truth, pct, split_key
    from backoffice.runtime import get_db
    from backoffice.store import Document, FieldValue

    out = Console()
    acc = AccuracyTable()
    with Session(get_db(settings)) as session:
        docs = session.exec(select(Document).where(Document.batch == "demo")).all()
        table = Table(title="Documents by status (after posting)")
        table.add_column("status")
        table.add_column("documents", justify="right")
        for status, n in sorted(Counter(d.status.value for d in docs).items()):
            table.add_row(status, str(n))
        table.add_row("(duplicate files skipped)", str(result["duplicates"]))
        out.print(table)
        by_name = {(d.original_name, d.page): d for d in docs}
        for source in sources:
            truth_path = FIXTURES / source / "truth.jsonl"
            if not truth_path.exists():
                continue
            for key, truth in load_truth(truth_path).items():
                rel, page = split_key(key)
                doc = by_name.get((f"{source}/{rel}", page))
                if doc is None:
                    continue
                values = {f.name: f.value for f in session.exec(
                    select(FieldValue).where(FieldValue.document_id == doc.id))}
                acc.add({**truth, "variant": f"{source}/{truth.get('variant', 'all')}"},
                        doc.doc_type, values)
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


def _demo_posting(settings, sandbox, drained: dict) -> None:
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


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chain; exit 1 naming any altered, removed or inserted event."""
    settings = apply_environment()
    from sqlmodel import Session

    from backoffice.runtime import get_db
    from backoffice.store import verify_audit_chain

    with Session(get_db(settings)) as session:
        problems = verify_audit_chain(session)
    for p in problems:
        Console().print(f"[red]{p}[/]")
    if problems:
        raise typer.Exit(1)
    Console().print("[green]audit trail intact[/]")


if __name__ == "__main__":
    app()
