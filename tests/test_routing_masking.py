"""Routing decisions and the masking function."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from backoffice.assess import route
from domain import masking
from domain.models import CheckResult, DocType, ExtractedField, Severity


def test_masking_doctests():
    assert doctest.testmod(masking).failed == 0


@given(st.text())
def test_mask_text_never_leaks_an_id_number(noise):
    number = "11010519491231002X"
    masked = masking.mask_text(f"{noise} {number} {noise}")
    assert number not in masked or number in noise


def _fields(conf=0.99):
    return {"name": ExtractedField(value="王**", confidence=conf),
            "id_number": ExtractedField(value="x", confidence=0.99)}


def test_route_straight_through_and_review():
    kw = {"min_confidence": 0.9, "min_id_confidence": 0.95}
    assert route(DocType.ID_CARD_FRONT, _fields(), [], None, **kw).status == "approved"
    low = route(DocType.ID_CARD_FRONT, _fields(0.5), [], None, **kw)
    assert low.status == "in_review" and "name: confidence" in low.reasons[0].text
    assert low.reasons[0].field == "name"
    failed = CheckResult(rule="id_number.checksum", severity=Severity.ERROR, passed=False,
                         message="check digit wrong")
    assert route(DocType.ID_CARD_FRONT, _fields(), [failed], None, **kw).status == "in_review"
    info = CheckResult(rule="x", severity=Severity.INFO, passed=False, message="skipped")
    assert route(DocType.ID_CARD_FRONT, _fields(), [info], None, **kw).status == "approved"
    assert route(DocType.UNKNOWN, {}, [], None, **kw).status == "rejected"


def test_a_field_vouched_for_by_a_passed_rule_skips_the_confidence_bar():
    kw = {"min_confidence": 0.9, "min_id_confidence": 0.95}
    fields = {"sex": ExtractedField(value="女", confidence=0.6),
              "id_number": ExtractedField(value="x", confidence=0.99)}
    agree = CheckResult(rule="id_card.sex_matches", severity=Severity.ERROR, passed=True)
    assert route(DocType.ID_CARD_FRONT, fields, [agree], None, **kw).status == "approved"
    assert route(DocType.ID_CARD_FRONT, fields, [], None, **kw).status == "in_review"
