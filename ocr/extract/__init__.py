"""Field extractors, one per document type: OCR lines in, typed fields out."""

from __future__ import annotations

from collections.abc import Callable

from domain.fields import FIELDS
from domain.models import DocType, ExtractedField, OcrLine

from .bankcard import extract_bank_card
from .claim import extract_claim_form
from .idcard import extract_id_card_back, extract_id_card_front, extract_id_card_temporary
from .invoice import extract_medical_invoice

Extractor = Callable[[list[OcrLine]], dict[str, ExtractedField]]

EXTRACTORS: dict[DocType, Extractor] = {
    DocType.ID_CARD_FRONT: extract_id_card_front,
    DocType.ID_CARD_BACK: extract_id_card_back,
    DocType.ID_CARD_TEMPORARY: extract_id_card_temporary,
    DocType.CLAIM_FORM: extract_claim_form,
    DocType.MEDICAL_INVOICE: extract_medical_invoice,
    DocType.BANK_CARD: extract_bank_card,
}

def extract(doc_type: DocType, lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """Every field of the document type, present or not (missing: value None)."""
    extractor = EXTRACTORS.get(doc_type)
    found = extractor(lines) if extractor else {}
    return {name: found.get(name, ExtractedField(value=None)) for name in FIELDS[doc_type]}
