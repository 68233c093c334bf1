"""`backoffice reconcile run`: the customer-master reconciliation job from the command line
(the job itself is :mod:`backoffice.reconcile_job`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from backoffice.reconcile_job import (
    CLAIMS_SCHEMA,
    CORE_SCHEMA,
    masked_sample,
    read_master_csv,
    read_master_sql,
    run_job,
    safe_url,
)
from validators.reconcile import CLASSES

# ----------------------------------------------------------------------------

reconcile_app = typer.Typer(help="Reconcile the core system's customer master with the "
                            "claims system's.", no_args_is_help=True,
                            pretty_exceptions_show_locals=False)


@reconcile_app.callback()
def _group() -> None:
    """Reconcile the core system's customer master with the claims system's."""


@reconcile_app.command("run")
def run(
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for summary.json and exceptions.csv (exceptions.csv holds "
        "personal data: encrypted when BACKOFFICE_ENCRYPTION_KEY is set, read it with "
        "backoffice keys decrypt-file; keep it under the bank's controls).")],
    core: Annotated[Path | None, typer.Option(
        "--core", help="Core master CSV (id_number,name,birth_date,phone).")] = None,
    claims: Annotated[Path | None, typer.Option(
        "--claims", help="Claims master CSV (insured_id,name,birth_date,phone,"
        "policy_count).")] = None,
    core_url: Annotated[str | None, typer.Option(
        "--core-url", help="SQLAlchemy URL to read the core master from, instead of "
        "--core.")] = None,
    core_table: Annotated[str, typer.Option("--core-table")] = "core_customers",
    claims_url: Annotated[str | None, typer.Option(
        "--claims-url", help="SQLAlchemy URL of the claims master (default: "
        "--core-url).")] = None,
    claims_table: Annotated[str, typer.Option("--claims-table")] = "claims_insured",
    show: Annotated[int, typer.Option(
        "--show", help="Print this many exceptions per class, masked.")] = 0,
    encoding: Annotated[str, typer.Option(
        "--encoding", help="Encoding of the CSV files (e.g. gb18030).")] = "utf-8",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Class every record as matched, mismatch, missing on either side, ambiguous or
    matched with a typo, and write the report."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    if (core is None) == (core_url is None):
        raise typer.BadParameter("give exactly one of --core and --core-url")
    claims_url = claims_url or core_url
    if (claims is None) == (claims_url is None):
        raise typer.BadParameter("give --claims (or --claims-url / --core-url)")
    load_core = ((lambda: read_master_csv(core, CORE_SCHEMA, encoding=encoding))
                 if core is not None
                 else (lambda: read_master_sql(core_url, core_table, CORE_SCHEMA)))
    load_claims = ((lambda: read_master_csv(claims, CLAIMS_SCHEMA, encoding=encoding))
                   if claims is not None
                   else (lambda: read_master_sql(claims_url, claims_table, CLAIMS_SCHEMA)))
    sources = {"core": str(core) if core else f"{safe_url(core_url)} table {core_table}",
               "claims": str(claims) if claims else
               f"{safe_url(claims_url)} table {claims_table}"}
    report = run_job(load_core, load_claims, out, sources=sources)
    summary = report.summary
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        table = Table(title=f"reconciliation: {summary['core_rows']:,} core × "
                      f"{summary['claims_rows']:,} claims records "
                      f"in {summary['timings']['total']:.1f} s")
        for col in ("class", "outcomes", "core rows", "claims rows"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name in CLASSES:
            row = summary["classes"][name]
            table.add_row(name, f"{row['outcomes']:,}", f"{row['core_rows']:,}",
                          f"{row['claims_rows']:,}")
        console.print(table)
        console.print(f"mismatched fields: {summary['mismatch_fields']}")
        console.print(f"invalid claims numbers: {summary['invalid_claims_numbers']}")
    if show:
        rows = masked_sample(report.sample, show)
        if rows:
            t = Table(title="exceptions (masked)")
            cols = ["class", "reason", "core_id_number", "core_name", "claims_insured_id",
                    "claims_name", "core_birth_date", "claims_birth_date"]
            for col in cols:
                t.add_column(col)
            for row in rows:
                t.add_row(*(str(row.get(c, "")) for c in cols))
            console.print(t)
    console.print(f"report: {report.summary_path} and {report.exceptions_path} "
                  "(the latter holds personal data: encrypted when a key is set)")


if __name__ == "__main__":
    reconcile_app()
