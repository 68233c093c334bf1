"""The reading pipeline: decoded page -> prepared image -> OCR -> class -> fields.

Pure: no Prefect, no database. One `read_document` call per file.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

from backoffice.models import DocType, ExtractedField, OcrLine, QualityMetric, QualityReport

from .classify import classify_text
from .decode import DecodedPage, Limits, decode
from .extract import extract
from .preprocess import ID_CARD_ASPECT, Prepared, assess_quality, edge_text_cut, prepare, text_orientation


class Recognizer(Protocol):
    def recognize(self, image: np.ndarray) -> list[OcrLine]: ...


class PageReading(BaseModel):
    """What was read from one page, boxes in the original page's pixels."""

    page: int = 0
    doc_type: DocType = DocType.UNKNOWN
    type_scores: dict[str, float] = Field(default_factory=dict)
    fields: dict[str, ExtractedField] = Field(default_factory=dict)
    quality: QualityReport = Field(default_factory=QualityReport)
    lines: list[OcrLine] = Field(default_factory=list)
    ocr_passes: int = 1
    seconds: float = 0.0


def _confident(doc_type: DocType, scores: dict[str, float]) -> bool:
    return doc_type is not DocType.UNKNOWN and max(scores.values()) >= 0.5


def _attempt_key(doc_type: DocType, scores: dict[str, float], lines: list[OcrLine]):
    text_mass = sum(ln.confidence * len(ln.text) for ln in lines)
    return (doc_type is not DocType.UNKNOWN, round(max(scores.values()), 3), text_mass)


def read_page(image: np.ndarray, engine: Recognizer, page: int = 0) -> PageReading:
    """Read one upright-or-not page: try the likely orientation first, others only when
    the text does not look like a known document (so a straight scan costs one pass)."""
    start = time.perf_counter()
    prepared = prepare(image)
    h, w = prepared.image.shape[:2]
    if prepared.card_quad is not None and h > w and abs(h / w - ID_CARD_ASPECT) < 0.15:
        prepared = prepared.rotated(1)  # a card is printed landscape
    lines = engine.recognize(prepared.image)
    passes = 1
    if text_orientation([ln.polygon for ln in lines]) == "vertical":
        prepared = prepared.rotated(1)
        lines = engine.recognize(prepared.image)
        passes += 1
    doc_type, scores = classify_text(lines)
    best = (prepared, lines, doc_type, scores)
    if not _confident(doc_type, scores):
        flipped = prepared.rotated(2)
        f_lines = engine.recognize(flipped.image)
        passes += 1
        f_type, f_scores = classify_text(f_lines)
        if _attempt_key(f_type, f_scores, f_lines) > _attempt_key(doc_type, scores, lines):
            best = (flipped, f_lines, f_type, f_scores)
    prepared, lines, doc_type, scores = best
    fields = extract(doc_type, lines)
    quality = assess_quality(image, prepared)
    if prepared.card_quad is None:
        ph, pw = prepared.image.shape[:2]
        cut = edge_text_cut([ln.polygon for ln in lines], pw, ph)
        quality.metrics["border_cut_off"] = QualityMetric(
            value=float(cut), threshold=1.0, verdict="warn" if cut else "ok")
    return PageReading(
        page=page,
        doc_type=doc_type,
        type_scores={k: round(v, 3) for k, v in scores.items()},
        fields={name: _map_field(f, prepared) for name, f in fields.items()},
        quality=quality,
        lines=[
            OcrLine(text=ln.text, confidence=round(ln.confidence, 4),
                    polygon=prepared.map_polygon(ln.polygon), page=page)
            for ln in lines
        ],
        ocr_passes=passes,
        seconds=round(time.perf_counter() - start, 4),
    )


def _map_field(field: ExtractedField, prepared: Prepared) -> ExtractedField:
    return field.model_copy(update={"boxes": [prepared.map_polygon(b) for b in field.boxes]})


def read_document(data: bytes, engine: Recognizer, limits: Limits = Limits()) -> list[PageReading]:
    """Read every page of a file. Raises `DecodeError` for a file that is not a document."""
    pages: list[DecodedPage] = decode(data, limits)
    return [read_page(p.image, engine, page=p.index) for p in pages]
