"""Routing: straight through when the machine is sure, to a person otherwise."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backoffice.models import CheckResult, DocType, ExtractedField, QualityReport, Severity

_ID_FIELDS = {"id_number", "insured_id_number"}
NOT_A_DOCUMENT = "not a recognised document: no ID-card or claim-form text was found"
# A passed rule that ties a field to independent evidence (the number's own check
# digit, the amount written twice) vouches for that field even when the OCR engine
# was unsure of it; the confidence threshold then does not send it to a person.
CORROBORATED_BY: dict[str, tuple[str, ...]] = {
    "id_card.birth_date_matches": ("birth_date",),
    "id_card.sex_matches": ("sex",),
    "id_card.ethnicity_known": ("ethnicity",),
    "claim.amount_in_words_matches": ("claim_amount", "claim_amount_in_words"),
}


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
            reasons=[NOT_A_DOCUMENT],
        )
    reasons: list[str] = []
    vouched = {field for check in checks if check.passed
               for field in CORROBORATED_BY.get(check.rule, ())}
    for name, f in fields.items():
        if f.value is None:
            reasons.append(f"{name}: not found")
            continue
        if name in vouched:
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
