"""`backoffice case …`: claim cases (a claim form with its ID card, invoices and bank card).

Mounted by the main CLI with ``app.add_typer(case_app, name="case")``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from backoffice.settings import apply_environment

case_app = typer.Typer(help="Claim cases: documents decided and posted together.",
                       no_args_is_help=True)
err = Console(stderr=True)


@case_app.command("add")
def case_add(
    case: str = typer.Argument(..., help="The case id (created if new)."),
    files: list[Path] = typer.Argument(..., help="Files of the case (PNG, JPEG, TIFF, PDF)."),
    batch: str | None = typer.Option(None, help="A batch label stored with each document."),
) -> None:
    """Take files into the store as documents of one case; `backoffice process` (or the
    next scheduled run) reads them. Pages may be added in several goes: the case waits
    for its missing documents (BACKOFFICE_CASE_WAIT_SECONDS)."""
    settings = apply_environment()
    from sqlmodel import Session

    from backoffice.blobs import storage_for
    from backoffice.intake import IntakeResult, ingest_bytes
    from backoffice.runtime import get_db

    result = IntakeResult()
    with Session(get_db(settings)) as session:
        for path in files:
            if not path.is_file():
                err.print(f"[red]{path}: not a file[/]")
                raise typer.Exit(2)
            ingest_bytes(session, path.read_bytes(), path.name,
                         documents_dir=storage_for(settings),
                         quarantine_dir=settings.quarantine_dir,
                         max_bytes=settings.max_file_bytes, source="cli", batch=batch,
                         result=result, case=case)
            session.commit()
    sys.stdout.write(json.dumps({"case": case, "received": result.received,
                                 "duplicates": [d for _, d in result.duplicates],
                                 "quarantined": result.quarantined}) + "\n")


@case_app.command("list")
def case_list(
    status: str | None = typer.Option(None, help="open | in_review | approved | posted | "
                                      "rejected"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON Lines."),
) -> None:
    """The cases, with their status and why."""
    settings = apply_environment()
    from backoffice.cases import list_cases
    from backoffice.runtime import get_db

    rows = list_cases(get_db(settings), status)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"{len(rows)} case(s)")
    for col in ("id", "case", "status", "documents", "types", "why"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["case"], r["status"], str(r["documents"]), r["types"],
                      r["reason"][:120])
    Console().print(table)


@case_app.command("show")
def case_show(
    case: str = typer.Argument(..., help="The case id (or its number)."),
    reveal: bool = typer.Option(False, "--reveal", help="Show personal values in clear "
                                "(needs --reviewer; audited per page)."),
    reviewer: str | None = typer.Option(None, "--reviewer", "-r", help="Your reviewer id: "
                                        "needed to reveal (key: BACKOFFICE_REVIEWER_KEY or "
                                        "the prompt)."),
) -> None:
    """A case as JSON: its documents with their fields (masked), its cross-document
    checks and its decision, and its times."""
    settings = apply_environment()
    from backoffice.cases import case_view
    from backoffice.runtime import get_db
    from cli.reviewers import acting

    engine = get_db(settings)
    who = acting(engine, settings, reviewer, "revealing personal data") if reveal else None
    view = case_view(engine, case, reveal=reveal, reviewer=who)
    if view is None:
        err.print("[red]no such case[/]")
        raise typer.Exit(1)
    sys.stdout.write(json.dumps(view, ensure_ascii=False, indent=2) + "\n")


@case_app.command("decide")
def case_decide(
    case: str = typer.Argument(..., help="The case id (or its number)."),
    decision: str = typer.Option(..., "--decision", "-d", help="approve | reject"),
    reviewer: str = typer.Option(..., "--reviewer", "-r", help="Your reviewer id (audited; "
                                 "key: BACKOFFICE_REVIEWER_KEY or the prompt)."),
    set_: list[str] = typer.Option([], "--set", help="DOCUMENT.FIELD=VALUE correction "
                                   "(repeatable), e.g. 12.card_number=6222…"),
    reason: str | None = typer.Option(None, "--reason", help="Why (required to reject)."),
    override: bool = typer.Option(False, "--override", help="Approve although a check "
                                  "still fails (audited; needs a second reviewer)."),
) -> None:
    """Decide a case in review as a whole. Exit 0: decided; 1: not in review or unknown
    field; 2: invalid input or the reviewer cannot act; 3: checks still fail, the case
    stays in review; 4: the decision needs a second reviewer (`backoffice case confirm`)."""
    settings = apply_environment()
    from pydantic import ValidationError

    from backoffice.cases import CaseError, CaseReview, apply_case_review
    from backoffice.reviewers import IdentityError
    from backoffice.runtime import get_db
    from cli.reviewers import acting

    corrections = {}
    for item in set_:
        name, sep, value = item.partition("=")
        if not sep or "." not in name:
            err.print(f"[red]--set needs DOCUMENT.FIELD=VALUE, got {name!r}[/]")
            raise typer.Exit(2)
        corrections[name.strip()] = value
    try:
        review = CaseReview(decision=decision, reviewer=reviewer, corrections=corrections,
                            reject_reason=reason, override=override)
    except ValidationError as exc:
        err.print("[red]" + "; ".join(e["msg"] for e in exc.errors()) + "[/]")
        raise typer.Exit(2) from None
    engine = get_db(settings)
    who = acting(engine, settings, reviewer, "deciding")
    try:
        outcome = apply_case_review(engine, case, review, settings, identity=who)
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except CaseError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    sys.stdout.write(json.dumps(outcome, ensure_ascii=False) + "\n")
    if outcome.get("pending") is not None:
        err.print(outcome["message"], style="yellow", markup=False)
        raise typer.Exit(4)
    if outcome["status"] == "in_review":
        raise typer.Exit(3)


@case_app.command("confirm")
def case_confirm(
    case: str = typer.Argument(..., help="The case id (or its number)."),
    reviewer: str = typer.Option(..., "--reviewer", "-r", help="Your reviewer id: a checker, "
                                 "not the maker (key: BACKOFFICE_REVIEWER_KEY or the prompt)."),
    refuse: bool = typer.Option(False, "--refuse", help="Refuse the proposal (give --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why you refuse."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm without asking."),
) -> None:
    """Confirm (or --refuse) the decision another reviewer proposed on a case under four
    eyes. Exit 0: applied or refused; 1: nothing to confirm (or void); 2: you cannot check
    it; 3: applied but a check still fails."""
    settings = apply_environment()
    from backoffice.cases import CaseError, case_proposal_view, decide_case_proposal
    from backoffice.reviewers import IdentityError
    from backoffice.runtime import get_db
    from cli.reviewers import acting, show_proposal

    engine = get_db(settings)
    try:
        view = case_proposal_view(engine, case)
    except CaseError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    if view is None:
        err.print(f"[red]case {case} has no decision waiting for a second reviewer[/]")
        raise typer.Exit(1)
    who = acting(engine, settings, reviewer, "checking")
    out = Console(highlight=False, stderr=True)
    show_proposal(out, view, yes=yes, refuse=refuse)
    try:
        outcome = decide_case_proposal(engine, case, who, confirm=not refuse, reason=reason,
                                       settings=settings)
    except IdentityError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except CaseError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    sys.stdout.write(json.dumps(outcome, ensure_ascii=False) + "\n")
    if not refuse and outcome["status"] == "in_review":
        raise typer.Exit(3)


@case_app.command("kpi")
def case_kpi() -> None:
    """Per case: straight-through rate, handling time from first page to posting, and
    the reasons for review."""
    settings = apply_environment()
    from backoffice.cases import case_kpis
    from backoffice.runtime import get_db

    sys.stdout.write(json.dumps(case_kpis(get_db(settings)), ensure_ascii=False) + "\n")
