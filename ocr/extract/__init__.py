"""Field extractors, one per document type: OCR lines in, typed fields out."""

from __future__ import annotations

from collections.abc import Callable

from backoffice.models import DocType, ExtractedField, OcrLine

from .claim import extract_claim_form
from .idcard import extract_id_card_back, extract_id_card_front

Extractor = Callable[[list[OcrLine]], dict[str, ExtractedField]]

EXTRACTORS: dict[DocType, Extractor] = {
    DocType.ID_CARD_FRONT: extract_id_card_front,
    DocType.ID_CARD_BACK: extract_id_card_back,
    DocType.CLAIM_FORM: extract_claim_form,
}

FIELDS: dict[DocType, tuple[str, ...]] = {
    DocType.ID_CARD_FRONT: ("name", "sex", "ethnicity", "birth_date", "address", "id_number"),
    DocType.ID_CARD_BACK: ("issuing_authority", "valid_from", "valid_until"),
    DocType.CLAIM_FORM: (
        "policy_number", "insured_name", "insured_id_number", "claimant_name",
        "relationship", "phone", "accident_date", "hospital", "diagnosis", "claim_amount",
        "claim_amount_in_words", "bank_name", "account_name", "account_number",
        "application_date",
    ),
    DocType.UNKNOWN: (),
}


def extract(doc_type: DocType, lines: list[OcrLine]) -> dict[str, ExtractedField]:
    """Every field of the document type, present or not (missing: value None)."""
    extractor = EXTRACTORS.get(doc_type)
    found = extractor(lines) if extractor else {}
    return {name: found.get(name, ExtractedField(value=None)) for name in FIELDS[doc_type]}
