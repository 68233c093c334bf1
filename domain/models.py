"""Shared pydantic models: the values that travel between stages.

This module imports nothing of ours, so `ocr/` and `validators/` may use it without
pulling in Prefect, SQL or each other.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

Point = tuple[float, float]
Polygon = list[Point]


class DocType(StrEnum):
    ID_CARD_FRONT = "id_card_front"
    ID_CARD_BACK = "id_card_back"
    #: 临时居民身份证: one side with the front's fields, the portrait and the validity.
    ID_CARD_TEMPORARY = "id_card_temporary"
    CLAIM_FORM = "claim_form"
    #: 医疗收费票据 (outpatient or inpatient): a claim case's receipts.
    MEDICAL_INVOICE = "medical_invoice"
    #: A bank card (借记卡 / 信用卡): where a claim's payout goes.
    BANK_CARD = "bank_card"
    #: Not a page: a claim case (a claim form with its ID card, invoices and bank card),
    #: the subject of the cross-document rules (``validators.rules.case``).
    CLAIM_CASE = "claim_case"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    """How much a failed check matters. Ordered: info < warning < error."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class OcrLine(BaseModel):
    """One recognised text line; the polygon is in the original image's pixels.

    ``alternatives``: per character of ``text``, the recogniser's best candidates with
    their probabilities, the chosen one first (empty when the engine gives none). Decoders
    that know a value's constraints choose among them; they are not stored.
    """

    text: str
    confidence: float
    polygon: Polygon
    page: int = 0
    alternatives: list[list[tuple[str, float]]] = Field(default_factory=list, exclude=True)
    #: Per character of ``text``, the probability the recogniser gave it (empty when the
    #: engine gives none); ``confidence`` is their mean. Not stored.
    char_probs: list[float] = Field(default_factory=list, exclude=True)


class ExtractedField(BaseModel):
    """A typed field read from a document, in its normal form.

    ``confidence``: the estimated probability that the value is right (the reading
    pipeline calibrates it, ``ocr.calibration``); ``ocr_confidence``: the score it was
    calibrated from (the recogniser's, over the field's lines), None when not calibrated.
    """

    value: str | None
    confidence: float = 0.0
    ocr_confidence: float | None = None
    boxes: list[Polygon] = Field(default_factory=list)
    raw: str | None = None
    corrections: list[str] = Field(default_factory=list)


class CheckResult(BaseModel):
    """The outcome of one rule on one document. Rules return these; they never raise."""

    rule: str
    fields: list[str] = Field(default_factory=list)
    severity: Severity = Severity.ERROR
    passed: bool
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class QualityMetric(BaseModel):
    value: float
    threshold: float | None = None
    verdict: str = "ok"  # ok | warn | fail


class QualityReport(BaseModel):
    metrics: dict[str, QualityMetric] = Field(default_factory=dict)
    card_found: bool = False
    rotation: int = 0  # degrees clockwise applied to make the text upright
    width: int = 0
    height: int = 0

    @property
    def ok(self) -> bool:
        return all(m.verdict != "fail" for m in self.metrics.values())


class RiskSignal(BaseModel):
    """One fraud or risk signal of a page: a score in 0..1, the verdict and why.

    The reason names figures and never values; ``region``: where on the page (original
    pixels) the signal is strongest, when it points somewhere.
    """

    score: float = Field(ge=0.0, le=1.0)
    flagged: bool = False
    reason: str = ""
    region: Polygon | None = None


class RiskReport(BaseModel):
    """The risk signals of a page (photocopy, recapture, tampering, portrait,
    temporary_id), and what computing them cost."""

    signals: dict[str, RiskSignal] = Field(default_factory=dict)
    seconds: float = 0.0

    @property
    def flagged(self) -> list[str]:
        return [name for name, s in self.signals.items() if s.flagged]


class RouteReason(BaseModel):
    """Why a document goes to a person (or is rejected), with the field or rule it is about.

    The text is safe to show: it names fields, rules and figures, never values.
    """

    text: str
    field: str | None = None
    rule: str | None = None

    def __str__(self) -> str:
        return self.text


class RouteDecision(BaseModel):
    """Where a read document goes: straight through, to a person, or rejected, and why."""

    status: Literal["approved", "in_review", "rejected"]
    reasons: list[RouteReason] = Field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.reasons]

    def reason_text(self) -> str | None:
        """The reasons as one line, as stored with the document's status."""
        return "; ".join(self.texts) or None

    def for_field(self, name: str) -> list[str]:
        """What the reasons say of one field (without the field's name)."""
        prefix = f"{name}: "
        return [r.text.removeprefix(prefix) for r in self.reasons if r.field == name]


class Assessment(BaseModel):
    """The rules' verdicts on a reading and the route they and the reading give."""

    checks: list[CheckResult]
    decision: RouteDecision
