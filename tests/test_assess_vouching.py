"""Identity numbers vouched for by independent evidence (backoffice.assess.numbers_vouched):
the route lets such a number through below its confidence threshold, never one whose
digit only the check digit chose."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

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


# --- names vouched for by the systems of record ---------------------------------------

def _claim_route(values: dict[str, str], lookup, low: tuple[str, ...]):
    """The route of a claim form whose fields in ``low`` were read at confidence 0.5."""
    from validators.rules._samples import CLAIM

    values = {**CLAIM, **values}
    checks = validate_fields(DocType.CLAIM_FORM, values, today=date(2025, 6, 1), lookup=lookup)
    fields = {k: ExtractedField(value=v, confidence=0.5 if k in low else 0.99)
              for k, v in values.items()}
    return route(DocType.CLAIM_FORM, fields, checks, None, **KW)


def test_the_insureds_name_on_record_vouches_for_it_and_for_the_same_persons_names():
    from validators.rules._samples import LOOKUP

    names = ("insured_name", "claimant_name", "account_name")
    decision = _claim_route({"account_name": "李秀英"}, LOOKUP, names)
    assert not [r for r in decision.reasons if r.field in names], decision.reasons


def test_a_name_of_another_person_is_not_vouched_by_the_insureds_record():
    from validators.rules._samples import LOOKUP

    decision = _claim_route({"claimant_name": "王芳", "relationship": "配偶",
                             "account_name": "王芳"}, LOOKUP,
                            ("insured_name", "claimant_name", "account_name"))
    assert {r.field for r in decision.reasons if r.field} == {"claimant_name", "account_name"}


def test_a_record_without_a_name_or_no_systems_vouch_for_nothing():
    from validators.lookup import InMemoryLookup
    from validators.rules._samples import LOOKUP

    nameless = InMemoryLookup(insured=[{**r, "name": ""} for r in LOOKUP.insured],
                              policies=LOOKUP.policies)
    for lookup in (nameless, None):
        decision = _claim_route({}, lookup, ("insured_name",))
        assert [r.field for r in decision.reasons if r.field] == ["insured_name"]


def test_a_name_the_records_contradict_goes_to_a_person():
    from validators.rules._samples import LOOKUP

    decision = _claim_route({"insured_name": "李秀", "claimant_name": "李秀",
                             "account_name": "李秀"}, LOOKUP, ())
    assert decision.status == "in_review"
    assert any(r.rule == "crossref.insured_identity_agrees" for r in decision.reasons)


def test_a_cards_name_on_the_core_systems_record_is_vouched_for():
    from validators.rules._samples import LOOKUP

    values = {**FRONT, "id_number": "11010519491231002X"}
    checks = validate_fields(DocType.ID_CARD_FRONT, values, today=date(2025, 6, 1),
                             lookup=LOOKUP)
    fields = {k: ExtractedField(value=v, confidence=0.5 if k == "name" else 0.99)
              for k, v in values.items()}
    assert route(DocType.ID_CARD_FRONT, fields, checks, None, **KW).status == "approved"
    alone = validate_fields(DocType.ID_CARD_FRONT, values, today=date(2025, 6, 1))
    assert route(DocType.ID_CARD_FRONT, fields, alone, None, **KW).status == "in_review"


# --- a name read alike on two lines -----------------------------------------------------

def _line(row: int) -> list[list[float]]:
    return [[10.0, row], [200.0, row], [200.0, row + 20.0], [10.0, row + 20.0]]


def _names_route(names: dict[str, tuple[str, float, int]], target_error=None):
    """The route of a claim form whose names are (value, confidence, line) and whose
    other fields are sure; no systems of record."""
    from validators.rules._samples import CLAIM

    values = {**CLAIM, **{k: v for k, (v, _, _) in names.items()}}
    checks = validate_fields(DocType.CLAIM_FORM, values, today=date(2025, 6, 1))
    fields = {k: ExtractedField(value=v, confidence=0.999, boxes=[_line(900)])
              for k, v in values.items()}
    for k, (v, conf, row) in names.items():
        fields[k] = ExtractedField(value=v, confidence=conf, boxes=[_line(row)])
    return route(DocType.CLAIM_FORM, fields, checks, None, **KW, target_error=target_error)


def test_a_doubted_name_read_alike_on_a_surer_line_takes_its_confidence():
    """The account holder read at 0.56, the claimant on another line at 0.996: the same
    name twice (牛平, wide forms seed 717), so both go through."""
    names = {"claimant_name": ("王芳", 0.996, 100), "account_name": ("王芳", 0.56, 500)}
    for target in (None, 0.005):
        decision = _names_route({**names, "relationship": ("配偶", 0.999, 300)}, target)
        assert not [r for r in decision.reasons if r.field], decision.reasons
    # either way round
    names = {"claimant_name": ("王芳", 0.56, 100), "account_name": ("王芳", 0.996, 500)}
    decision = _names_route({**names, "relationship": ("配偶", 0.999, 300)})
    assert not [r for r in decision.reasons if r.field], decision.reasons


def test_one_line_read_for_two_names_or_two_doubted_readings_vouch_for_nothing():
    same_line = {"claimant_name": ("王芳", 0.996, 100), "account_name": ("王芳", 0.56, 100),
                 "relationship": ("配偶", 0.999, 300)}
    decision = _names_route(same_line)
    assert {r.field for r in decision.reasons if r.field} == {"account_name"}
    doubted = {"claimant_name": ("王芳", 0.6, 100), "account_name": ("王芳", 0.56, 500),
               "relationship": ("配偶", 0.999, 300)}
    decision = _names_route(doubted)
    assert {r.field for r in decision.reasons if r.field} == {"claimant_name", "account_name"}
    other = {"claimant_name": ("王芳", 0.996, 100), "account_name": ("王方", 0.56, 500),
             "relationship": ("配偶", 0.999, 300)}
    assert "account_name" in {r.field for r in _names_route(other).reasons}


NAMES = ("insured_name", "claimant_name", "account_name")


@given(st.lists(st.tuples(st.sampled_from(["王芳", "李秀英", "张伟"]),
                          st.floats(0.0, 1.0), st.integers(0, 3)), min_size=3, max_size=3))
def test_agreeing_confidence_only_raises_a_name_to_a_surer_reading_of_it(readings):
    from backoffice.assess import agreeing_confidence

    fields = {name: ExtractedField(value=v, confidence=c, boxes=[_line(100 * row)])
              for name, (v, c, row) in zip(NAMES, readings, strict=True)}
    out = agreeing_confidence(fields)
    for name, f in fields.items():
        assert out[name] >= f.confidence
        if out[name] > f.confidence:  # raised to another line's reading of the same name
            assert any(o.value == f.value and o.boxes != f.boxes and o.confidence == out[name]
                       for o in fields.values())


def test_one_lines_reading_taken_for_two_fields_goes_to_a_person():
    """A two-column form: the right column's 申请日期 value sits on the row of the left
    column's 事故发生日期 label, and both dates were read from it (seed 876)."""
    from validators.rules._samples import CLAIM

    values = {**CLAIM, "accident_date": "2025-05-22", "application_date": "2025-05-22"}
    checks = validate_fields(DocType.CLAIM_FORM, values, today=date(2025, 6, 1))
    fields = {k: ExtractedField(value=v, confidence=0.999, boxes=[_line(100 + 40 * i)])
              for i, (k, v) in enumerate(values.items())}
    assert route(DocType.CLAIM_FORM, fields, checks, None, **KW).status == "approved"
    fields["application_date"] = fields["application_date"].model_copy(
        update={"boxes": fields["accident_date"].boxes})
    decision = route(DocType.CLAIM_FORM, fields, checks, None, **KW)
    assert decision.status == "in_review"
    assert [r.text for r in decision.reasons] == [
        "accident_date, application_date: one line's reading taken for both"]
    # The same line holding two values (a label between them) is no such thing.
    fields["application_date"] = fields["application_date"].model_copy(
        update={"value": "2025-05-30"})
    assert route(DocType.CLAIM_FORM, fields, checks, None, **KW).status == "approved"
