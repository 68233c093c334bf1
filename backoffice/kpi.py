"""Operational KPIs computed from the store: how much goes straight through, how long
documents wait, which rules fail. Counts and durations only: no personal data.

Definitions (over documents received in the window, pages counted as documents,
quarantined files excluded from the rates):

- **decided**: documents that reached ``approved``, ``posted`` or ``rejected``.
- **straight-through rate**: decided documents that never went to review ÷ decided.
- **manual-touch rate**: decided documents that went to review (a person decided) ÷ decided.
- **handling time**: from ``created_at`` (received) to the first audit event that moved the
  document to ``approved`` or ``rejected`` (its decision); median and p95, in seconds,
  overall and for reviewed documents.
- **time to post**: received → ``posted``, for posted documents.
- **error rate per rule**: documents whose latest check of that rule failed (not skipped)
  ÷ documents the rule ran on.
- **documents per status**: all documents in the window, by current status.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from statistics import median
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backoffice.audit import AuditEvent, as_utc
from backoffice.store import CheckRow, Document, Status


class RuleRate(BaseModel):
    rule: str
    failed: int
    checked: int

    @property
    def rate(self) -> float:
        return self.failed / self.checked if self.checked else 0.0


class KpiReport(BaseModel):
    since: datetime | None
    until: datetime
    documents: int
    by_status: dict[str, int]
    decided: int
    straight_through: int
    manual_touch: int
    handling_seconds_median: float | None
    handling_seconds_p95: float | None
    reviewed_handling_seconds_median: float | None
    reviewed_handling_seconds_p95: float | None
    post_seconds_median: float | None
    rules: list[RuleRate] = Field(default_factory=list)

    @property
    def straight_through_rate(self) -> float:
        return self.straight_through / self.decided if self.decided else 0.0

    @property
    def manual_touch_rate(self) -> float:
        return self.manual_touch / self.decided if self.decided else 0.0


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    >>> percentile([1, 2, 3, 4, 5], 50), percentile([1, 2, 3, 4, 5], 95)
    (3.0, 4.8)
    """
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (k - lo))


def compute_kpis(engine: Engine, since: datetime | None = None,
                 until: datetime | None = None) -> KpiReport:
    """The KPIs of documents received in ``[since, until)`` (default: all)."""
    until = until or datetime.now(UTC)
    with Session(engine) as session:
        query = select(Document)
        if since is not None:
            query = query.where(Document.created_at >= since)
        query = query.where(Document.created_at < until)
        docs = session.exec(query).all()
        ids = [d.id for d in docs]
        moves: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        checks: list[CheckRow] = []
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for ev in session.exec(select(AuditEvent).where(
                    AuditEvent.document_id.in_(part), AuditEvent.action == "status")
                    .order_by(AuditEvent.id)):
                moves[ev.document_id].append((as_utc(ev.at), (ev.data or {}).get("to", "")))
            checks.extend(session.exec(select(CheckRow).where(CheckRow.document_id.in_(part))))
    by_status = Counter(d.status.value for d in docs)
    decided = straight = manual = 0
    handling: list[float] = []
    reviewed_handling: list[float] = []
    to_post: list[float] = []
    for d in docs:
        if d.status is Status.QUARANTINED:
            continue
        history = moves.get(d.id, [])
        reviewed = any(to == Status.IN_REVIEW.value for _, to in history)
        decision = next((at for at, to in history
                         if to in (Status.APPROVED.value, Status.REJECTED.value)), None)
        if decision is None:
            continue
        decided += 1
        seconds = (decision - as_utc(d.created_at)).total_seconds()
        handling.append(seconds)
        if reviewed:
            manual += 1
            reviewed_handling.append(seconds)
        else:
            straight += 1
        posted = next((at for at, to in history if to == Status.POSTED.value), None)
        if posted is not None:
            to_post.append((posted - as_utc(d.created_at)).total_seconds())
    failed: Counter[str] = Counter()
    checked: Counter[str] = Counter()
    for c in checks:
        if (c.details or {}).get("skipped"):
            continue
        checked[c.rule] += 1
        if not c.passed:
            failed[c.rule] += 1
    rules = sorted((RuleRate(rule=r, failed=failed[r], checked=n) for r, n in checked.items()),
                   key=lambda r: (-r.rate, r.rule))
    return KpiReport(
        since=since, until=until, documents=len(docs), by_status=dict(sorted(by_status.items())),
        decided=decided, straight_through=straight, manual_touch=manual,
        handling_seconds_median=median(handling) if handling else None,
        handling_seconds_p95=percentile(handling, 95),
        reviewed_handling_seconds_median=median(reviewed_handling) if reviewed_handling
        else None,
        reviewed_handling_seconds_p95=percentile(reviewed_handling, 95),
        post_seconds_median=median(to_post) if to_post else None,
        rules=rules)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def kpi_markdown(report: KpiReport) -> str:
    """The report as markdown for a Prefect artifact or a terminal."""
    window = (f"{report.since:%Y-%m-%d %H:%M} – {report.until:%Y-%m-%d %H:%M} UTC"
              if report.since else f"all documents until {report.until:%Y-%m-%d %H:%M} UTC")
    lines = ["# Back-office KPIs", "", (f"Window: {window}. {report.documents} documents, "
             f"{report.decided} decided."), "",
             "| KPI | value |", "|---|---:|",
             (f"| straight-through rate | {report.straight_through_rate:.1%} "
             f"({report.straight_through}/{report.decided}) |"),
             (f"| manual-touch rate | {report.manual_touch_rate:.1%} "
             f"({report.manual_touch}/{report.decided}) |"),
             f"| handling time, median | {_duration(report.handling_seconds_median)} |",
             f"| handling time, p95 | {_duration(report.handling_seconds_p95)} |",
             (f"| reviewed: handling time, median | "
             f"{_duration(report.reviewed_handling_seconds_median)} |"),
             f"| reviewed: handling time, p95 | {_duration(report.reviewed_handling_seconds_p95)} |",
             f"| received → posted, median | {_duration(report.post_seconds_median)} |",
             "", "| status | documents |", "|---|---:|"]
    lines += [f"| {s} | {n} |" for s, n in report.by_status.items()]
    if report.rules:
        lines += ["", "| rule | failed | checked | error rate |", "|---|---:|---:|---:|"]
        lines += [f"| `{r.rule}` | {r.failed} | {r.checked} | {r.rate:.1%} |"
                  for r in report.rules]
    return "\n".join(lines)


def rule_table(report: KpiReport) -> list[dict[str, Any]]:
    return [{"rule": r.rule, "failed": r.failed, "checked": r.checked,
             "error_rate": round(r.rate, 4)} for r in report.rules]
