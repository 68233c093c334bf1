"""`backoffice erase --customer ID` (a data subject's request) and `backoffice retention
apply` (the retention periods, also run daily by the `apply-retention` deployment)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from backoffice.settings import apply_environment

retention_app = typer.Typer(help="Retention periods of personal data (BACKOFFICE_RETAIN_*_DAYS).",
                            no_args_is_help=True)
err = Console(stderr=True)


def erase(
    customer: str = typer.Option(..., "--customer", help="The data subject's resident ID "
                                 "number (18 digits, or the old 15-digit form)."),
    actor: str = typer.Option(..., "--actor", "-r", help="Who carries out the request "
                              "(audited)."),
    request: str | None = typer.Option(None, "--request", help="The request's reference "
                                       "(e.g. the ticket number); generated if not given."),
    include_open: bool = typer.Option(False, "--include-open", help="Reject as erased the "
                                      "customer's documents still waiting for a person."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be erased, "
                                 "erase nothing."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase one customer's personal data: originals, fields, portraits, payloads and the
    audit events' data of every document holding the ID number (and the rest of their
    cases). Prints the report as JSON: documents, counts, and the postings already made
    downstream (to be erased there too). The ID number is never printed."""
    settings = apply_environment()
    from backoffice.retention import ErasureError, erase_customer
    from backoffice.runtime import get_db

    engine = get_db(settings)
    try:
        preview = erase_customer(engine, settings, customer, actor=actor, request=request,
                                 include_open=include_open, dry_run=True)
        if dry_run:
            print(json.dumps(preview.as_dict(), ensure_ascii=False, indent=2))
            return
        if not preview.documents:
            err.print("no document holds that ID number: nothing to erase")
            print(json.dumps(preview.as_dict(), ensure_ascii=False, indent=2))
            return
        if not yes and not typer.confirm(
                f"Erase the personal data of {len(preview.documents)} document(s)? "
                "This cannot be undone", err=True):
            raise typer.Exit(1)
        report = erase_customer(engine, settings, customer, actor=actor,
                                request=preview.request, include_open=include_open)
    except ErasureError as exc:
        err.print(f"[red]erase: {exc}[/]")
        raise typer.Exit(2) from None
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))


@retention_app.command("apply")
def retention_apply(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count, erase nothing."),
) -> None:
    """Erase what has outlived its retention period, now (the `apply-retention`
    deployment does it daily). Prints the counts as JSON."""
    settings = apply_environment()
    from backoffice.retention import apply_retention, periods
    from backoffice.runtime import get_db

    report = apply_retention(get_db(settings), settings, dry_run=dry_run)
    print(json.dumps({**report.as_dict(), "periods_days": periods(settings)},
                     ensure_ascii=False, indent=2))


@retention_app.command("show")
def retention_show() -> None:
    """The retention period of each kind of data (days; null: kept)."""
    settings = apply_environment()
    from backoffice.retention import periods

    print(json.dumps(periods(settings), indent=2))
