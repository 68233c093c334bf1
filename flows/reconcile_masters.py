"""`reconcile-masters`: reconcile the core customer master with the claims system's.

A thin flow over :mod:`backoffice.reconcile_job`: one task runs the job (read both
masters from CSV files or SQL tables, reconcile, write ``summary.json`` and
``exceptions.csv`` into the output folder), then the flow publishes two artifacts: a
markdown summary (counts only) and a table of sample exceptions with every personal
value masked. The full values stay in ``exceptions.csv``, under the bank's controls.
"""

from __future__ import annotations

import datetime
from typing import Annotated

from backoffice.settings import apply_environment

apply_environment()

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from backoffice.reconcile_job import (
    masked_sample,
    reconcile_files,
    reconcile_tables,
)
from backoffice.settings import get_settings
from validators.reconcile import CLASSES


@task(name="reconcile-masters-job")
def run_reconciliation(core_csv: str | None, claims_csv: str | None, out_dir: str,
                       core_url: str | None, core_table: str, claims_url: str | None,
                       claims_table: str, sample_rows: int) -> dict:
    """Run the job; return its summary and a masked sample (nothing in clear)."""
    if core_csv and claims_csv:
        report = reconcile_files(core_csv, claims_csv, out_dir)
    elif core_url:
        report = reconcile_tables(core_url, core_table, claims_url or core_url, claims_table,
                                  out_dir)
    else:
        raise ValueError("give core_csv and claims_csv, or core_url (and claims_url)")
    return {"summary": report.summary, "sample": masked_sample(report.sample, sample_rows),
            "exceptions_path": str(report.exceptions_path)}


def summary_markdown(summary: dict, exceptions_path: str) -> str:
    """The run's counts as markdown (no personal data)."""
    lines = ["## Customer-master reconciliation", "",
             (f"{summary['core_rows']:,} core records × {summary['claims_rows']:,} claims "
              f"records in {summary['timings']['total']:.1f} s"), "",
             "| class | outcomes | core rows | claims rows |", "|---|---:|---:|---:|"]
    for name in CLASSES:
        row = summary["classes"][name]
        lines.append(f"| {name} | {row['outcomes']:,} | {row['core_rows']:,} | "
                     f"{row['claims_rows']:,} |")
    lines += ["", "| mismatched field | pairs |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in summary["mismatch_fields"].items()]
    invalid = ", ".join(f"{k} {v:,}" for k, v in summary["invalid_claims_numbers"].items())
    lines += ["", f"Invalid claims numbers: {invalid or 'none'}.",
              f"Claims number forms: {summary['claims_number_forms']}.", "",
              (f"Full details ({summary['exception_lines']:,} lines, personal data, encrypted when a key is set) "
               f"are in `{exceptions_path}`, kept under the bank's controls.")]
    return "\n".join(lines)


@flow(name="reconcile-masters")
def reconcile_masters(
    core_csv: str | None = None,
    claims_csv: str | None = None,
    out_dir: str | None = None,
    core_url: str | None = None,
    core_table: str = "core_customers",
    claims_url: str | None = None,
    claims_table: str = "claims_insured",
    sample_rows: Annotated[int, Field(ge=0, le=1000)] = 10,
) -> dict:
    """Class every core and claims record as matched, mismatch, missing or ambiguous.

    Inputs: two CSV files (``core_csv``, ``claims_csv``) or two SQL tables
    (``core_url`` + ``core_table``, ``claims_url`` (default ``core_url``) +
    ``claims_table``).

    Args:
        core_csv: The core system's customer master as CSV (with claims_csv).
        claims_csv: The claims system's insured master as CSV (with core_csv).
        out_dir: Where summary.json and exceptions.csv go; empty means
            data folder/reconcile/UTC time.
        core_url: SQLAlchemy URL of the core database (instead of CSV files).
        core_table: The core customer table.
        claims_url: SQLAlchemy URL of the claims database; empty means core_url.
        claims_table: The claims insured table.
        sample_rows: Masked sample exceptions per class in the table artifact (0 to 1000).
    """
    logger = get_run_logger()
    if out_dir is None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        out_dir = str(get_settings().data_dir / "reconcile" / stamp)
    done = run_reconciliation(core_csv, claims_csv, out_dir, core_url, core_table, claims_url,
                              claims_table, sample_rows)
    summary = done["summary"]
    create_markdown_artifact(key="reconcile-masters-summary",
                             markdown=summary_markdown(summary, done["exceptions_path"]),
                             description="Counts only: no personal data")
    if done["sample"]:
        create_table_artifact(key="reconcile-masters-exceptions", table=done["sample"],
                              description="Sample exceptions per class, personal data masked")
    logger.info("reconciliation: %s", {k: v["outcomes"] for k, v in summary["classes"].items()})
    return summary
