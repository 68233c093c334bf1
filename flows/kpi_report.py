"""`kpi-report`: publish the back-office KPIs (markdown and table artifacts), daily."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from backoffice.settings import apply_environment

apply_environment()

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from backoffice.cases import case_kpis, case_kpis_markdown
from backoffice.kpi import compute_kpis, kpi_markdown, rule_table
from backoffice.runtime import get_db
from backoffice.settings import get_settings


@flow(name="kpi-report")
def kpi_report(
    days: Annotated[int | None, Field(ge=1, le=3660)] = 1,
) -> dict:
    """Straight-through and manual-touch rates, handling times, error rate per rule; and
    per claim case: straight-through rate, handling time to posting, reasons for review.

    Args:
        days: Documents received in the last N days (1 to 3660); empty means all.
    """
    until = datetime.now(UTC)
    since = until - timedelta(days=days) if days else None
    engine = get_db(get_settings())
    report = compute_kpis(engine, since=since, until=until)
    cases = case_kpis(engine, since=since)
    create_markdown_artifact(key="kpi-cases", markdown=case_kpis_markdown(cases),
                             description="Claim cases: counts, durations and rule names only")
    create_markdown_artifact(key="kpi-report", markdown=kpi_markdown(report),
                             description="Counts and durations only: no personal data")
    create_table_artifact(key="kpi-rule-errors", table=rule_table(report) or
                          [{"rule": "-", "failed": 0, "checked": 0, "error_rate": 0.0}],
                          description="Error rate per validation rule")
    get_run_logger().info("KPIs: %d documents, straight-through %.1f%%", report.documents,
                          100 * report.straight_through_rate)
    return {**report.model_dump(mode="json", exclude={"rules"}),
            "straight_through_rate": report.straight_through_rate,
            "manual_touch_rate": report.manual_touch_rate,
            "rules": rule_table(report), "cases": cases}
