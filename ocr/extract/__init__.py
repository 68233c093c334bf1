"""Field extractors, one per document type: OCR lines in, typed fields out."""

from __future__ import annotations

from collections.abc import Callable

from domain.fields import FIELDS
from domain.models import DocType, ExtractedField, OcrLine

from .claim import extract_claim_form
from .idcard import extract_id_card_back, extract_id_card_front, extract_id_card_temporary

Extractor = Callable[[list[OcrLine]], dict[str, ExtractedField]]

EXTRACTORS: dict[DocType, Extractor] = {
    DocType.ID_CARD_FRONT: extract_id_card_front,
    DocType.ID_CARD_BACK: extract_id_card_back,
    DocType.ID_CARD_TEMPORARY: extract_id_card_temporary,
    DocType.CLAIM_FORM: extract_claim_form,
}

def extract(doc_type: DocType, lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """Every field of the document type, present or not (missing: value None)."""
    extractor = EXTRACTORS.get(doc_type)
    found = extractor(lines) if extractor else {}
    return {name: found.get(name, ExtractedField(value=None)) for name in FIELDS[doc_type]}
