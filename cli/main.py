"""The `backoffice` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment
from cli.db import db_app
from cli.reviewers import reviewers_app

app = typer.Typer(help="On-premises reading, checking and posting of ID cards and claim forms.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(reviewers_app, name="reviewers")


def _mount_outbox() -> None:
    from cli.outbox import outbox_app

    app.add_typer(outbox_app, name="outbox", help="List, drain, re-drive, purge and "
                  "reconcile the outbox of messages to downstream systems.")


_mount_outbox()


def _mount_reconcile() -> None:
    from cli.reconcile import reconcile_app

    app.add_typer(reconcile_app, name="reconcile",
                  help="Reconcile the core and claims customer masters (set-based).")


_mount_reconcile()


def _mount_cases() -> None:
    from cli.cases import case_app

    app.add_typer(case_app, name="case", help="Claim cases: a claim form with its ID card, "
                  "invoices and bank card, checked, decided and posted together.")


_mount_cases()


def _mount_operations() -> None:
    from cli.ops import mount

    mount(app)  # serve, review list|show|decide, kpi


_mount_operations()
def _mount_scale() -> None:
    from cli.keys import keys_app
    from cli.scale import deploy, prefect_server, reader

    app.command("prefect-server")(prefect_server)
    app.command("deploy")(deploy)
    app.command("reader")(reader)
    from cli.scale_demo import scale_demo

    app.command("scale-demo")(scale_demo)
    app.add_typer(keys_app, name="keys")


_mount_scale()


def _mount_privacy() -> None:
    from cli.privacy import erase, retention_app

    app.command("erase")(erase)
    app.add_typer(retention_app, name="retention")


_mount_privacy()


def _mount_demo() -> None:
    from cli.demo import demo

    app.command("demo")(demo)


_mount_demo()
console = Console(stderr=True)


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
    from domain.masking import mask_value

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
                                       "id_card_temporary, "
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
        from cli.ops import run_with_progress

        result = run_with_progress(inbox, batch, **params)
    else:
        from flows.process_inbox import process_inbox

        result = process_inbox(inbox=str(inbox), batch=batch, **params)
    console.print_json(json.dumps(result))


@audit_app.command("verify")
def audit_verify(
    checkpoint_dir: Path | None = typer.Option(
        None, "--checkpoint-dir", help="The published checkpoints (default: "
        "BACKOFFICE_AUDIT_CHECKPOINT_DIR, or <data>/audit-checkpoints)."),
) -> None:
    """Check the audit trail: hashes, links, head, erasures and the published checkpoints;
    exit 1 naming any altered, removed or inserted event or any checkpoint it fails."""
    settings = apply_environment()
    from backoffice.audit import audit_report, snapshot_session
    from backoffice.crypto import KeyConfigError
    from backoffice.runtime import get_db

    out = Console(highlight=False)
    try:
        with snapshot_session(get_db(settings)) as session:
            report = audit_report(session, checkpoint_dir or settings.audit_checkpoints_dir)
    except KeyConfigError as exc:
        out.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    for p in report.problems:
        out.print(p, style="red", markup=False)
    for w in report.warnings:
        out.print(f"warning: {w}", style="yellow", markup=False)
    for n in report.notes:
        out.print(n, markup=False)
    if report.problems:
        raise typer.Exit(1)
    out.print(f"audit trail intact ({report.events} events, {report.checkpoints} "
              "checkpoints checked)", style="green", markup=False)


@audit_app.command("checkpoint")
def audit_checkpoint(
    checkpoint_dir: Path | None = typer.Option(
        None, "--checkpoint-dir", help="Where to publish (default: "
        "BACKOFFICE_AUDIT_CHECKPOINT_DIR, or <data>/audit-checkpoints)."),
) -> None:
    """Verify the audit trail and publish its head as a signed, read-only checkpoint file
    (never overwriting one); exit 1, publishing nothing, if the trail does not verify."""
    settings = apply_environment()
    from backoffice.audit import AuditCheckpointError, publish_checkpoint
    from backoffice.crypto import KeyConfigError

    out = Console(highlight=False)
    try:
        result = publish_checkpoint(directory=checkpoint_dir or settings.audit_checkpoints_dir)
    except AuditCheckpointError as exc:
        for p in exc.problems:
            out.print(p, style="red", markup=False)
        out.print("no checkpoint published", style="red", markup=False)
        raise typer.Exit(1) from None
    except KeyConfigError as exc:
        out.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    for w in result["warnings"]:
        out.print(f"warning: {w}", style="yellow", markup=False)
    if result["path"] is None:
        out.print("the audit trail is empty: nothing to publish", markup=False)
    elif result["written"]:
        out.print(f"published {result['path']} ({result['count']} events, up to event "
                  f"{result['last_id']}; signature {result['signature']})", markup=False)
    else:
        out.print(f"unchanged since {result['path']} ({result['count']} events)",
                  markup=False)


@audit_app.command("signing-key")
def audit_signing_key(
    path: Path = typer.Argument(..., help="The private key file to create (PEM, mode 0400); "
                                "its public key goes beside it as <name>.pub.pem."),
) -> None:
    """Create an Ed25519 key pair for signing checkpoints (BACKOFFICE_AUDIT_SIGNING_KEY_FILE;
    give the verifiers BACKOFFICE_AUDIT_VERIFY_KEY_FILE=<the .pub.pem>). Never overwrites."""
    from backoffice.audit import generate_signing_key

    try:
        private, public, key_id = generate_signing_key(path)
    except FileExistsError as exc:
        Console().print(f"{exc.filename} exists: not overwritten", style="red", markup=False)
        raise typer.Exit(1) from None
    Console(highlight=False).print(f"private key {private}\npublic key {public}\n"
                                   f"key id {key_id}", markup=False)


if __name__ == "__main__":
    app()
