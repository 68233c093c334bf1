"""Shared pydantic models: the values that travel between stages.

This module imports nothing of ours, so `ocr/` and `validators/` may use it without
pulling in Prefect, SQL or each other.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

Point = tuple[float, float]
Polygon = list[Point]


class DocType(StrEnum):
    ID_CARD_FRONT = "id_card_front"
    ID_CARD_BACK = "id_card_back"
    CLAIM_FORM = "claim_form"
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
    """One recognised text line; the polygon is in the original image's pixels."""

    text: str
    confidence: float
    polygon: Polygon
    page: int = 0


class ExtractedField(BaseModel):
    """A typed field read from a document, in its normal form."""

    value: str | None
    confidence: float = 0.0
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
