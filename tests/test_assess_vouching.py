"""Identity numbers vouched for by independent evidence (backoffice.assess.numbers_vouched):
the route lets such a number through below its confidence threshold, never one whose
digit only the check digit chose."""

from __future__ import annotations

from datetime import date

from backoffice.assess import route, validate_fields
from domain.models import DocType, ExtractedField

KW = {"min_confidence": 0.85, "min_id_confidence": 0.90}
FRONT = {"name": "李秀英", "sex": "女", "ethnicity": "汉", "birth_date": "1949-12-31",
         "address": "北京市朝阳区建国路1号", "id_number": "11010519491231002X"}


def _fields(values: dict[str, str], number_field: str, confidence: float,
            corrections: list[str] | None = None) -> dict[str, ExtractedField]:
    out = {k: ExtractedField(value=v, confidence=0.99) for k, v in values.items()}
    out[number_field] = ExtractedField(value=values[number_field], confidence=confidence,
                                       corrections=corrections or [])
    return out


def _route(doc_type, values, number_field, confidence, corrections=None):
    checks = validate_fields(doc_type, values, today=date(2025, 6, 1))
    return route(doc_type, _fields(values, number_field, confidence, corrections), checks,
                 None, **KW)


def test_a_card_number_agreeing_with_the_cards_birth_date_and_sex_goes_through():
    assert _route(DocType.ID_CARD_FRONT, FRONT, "id_number", 0.71).status == "approved"


def test_a_card_number_whose_sex_disagrees_is_not_vouched_for():
    values = {**FRONT, "sex": "男"}
    decision = _route(DocType.ID_CARD_FRONT, values, "id_number", 0.71)
    assert decision.status == "in_review"
    assert any(r.field == "id_number" for r in decision.reasons)


def test_a_number_whose_digit_only_the_check_digit_chose_is_never_vouched_for():
    decision = _route(DocType.ID_CARD_FRONT, FRONT, "id_number", 0.71,
                      ["8->X at 18 (by check digit)"])
    assert decision.status == "in_review"
    assert [r.field for r in decision.reasons] == ["id_number"]


def _claim_number_route(number: str):
    values = {"insured_id_number": number}
    checks = validate_fields(DocType.CLAIM_FORM, values, today=date(2025, 6, 1))
    fields = {"insured_id_number": ExtractedField(value=number, confidence=0.75)}
    return route(DocType.CLAIM_FORM, fields, checks, None, **KW)


def test_a_claim_forms_18_digit_number_with_its_check_digit_goes_through():
    decision = _claim_number_route("11010519491231002X")
    assert not any(r.field == "insured_id_number" for r in decision.reasons)


def test_a_claim_forms_15_digit_number_has_no_check_digit_to_vouch():
    decision = _claim_number_route("110105491231002")
    assert any(r.field == "insured_id_number" for r in decision.reasons)
