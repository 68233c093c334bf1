"""Routing: straight through when the machine is sure, to a person otherwise."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backoffice.models import CheckResult, DocType, ExtractedField, QualityReport, Severity

_ID_FIELDS = {"id_number", "insured_id_number"}


class RouteDecision(BaseModel):
    status: str  # approved | in_review | rejected
    reasons: list[str] = Field(default_factory=list)


def route(
    doc_type: DocType,
    fields: dict[str, ExtractedField],
    checks: list[CheckResult],
    quality: QualityReport | None,
    *,
    min_confidence: float,
    min_id_confidence: float,
) -> RouteDecision:
    """Decide where a processed document goes; every reason is safe to show (no values)."""
    if doc_type is DocType.UNKNOWN:
        return RouteDecision(
            status="rejected",
            reasons=["not a recognised document: no ID-card or claim-form text was found"],
        )
    reasons: list[str] = []
    for name, f in fields.items():
        if f.value is None:
            reasons.append(f"{name}: not found")
            continue
        threshold = min_id_confidence if name in _ID_FIELDS else min_confidence
        if f.confidence < threshold:
            reasons.append(f"{name}: confidence {f.confidence:.2f} below {threshold:.2f}")
    for check in checks:
        if not check.passed and check.severity >= Severity.WARNING:
            reasons.append(f"{check.rule} ({check.severity.value}): {check.message}")
    if quality is not None:
        for metric_name, metric in quality.metrics.items():
            if metric.verdict == "fail":
                reasons.append(f"image quality: {metric_name} ({metric.value})")
    return RouteDecision(status="in_review" if reasons else "approved", reasons=reasons)
