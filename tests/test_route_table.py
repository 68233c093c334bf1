"""The benchmark's straight-through and reliability figures (backoffice.accuracy.RouteTable)."""

from __future__ import annotations

import pytest

from backoffice.accuracy import RouteTable


def _truth(file, tier="clean", **fields):
    return {"file": file, "doc_type": "claim_form", "variant": tier, "fields": fields}


def test_straight_through_share_and_the_error_among_them():
    t = RouteTable()
    t.add(_truth("a", a="1", b="2"), "claim_form", "approved", {"a": ("1", 0.99), "b": ("2", 0.99)})
    t.add(_truth("b", a="1", b="2"), "claim_form", "approved", {"a": ("1", 0.99), "b": ("x", 0.97)})
    t.add(_truth("c", a="1", b="2"), "claim_form", "in_review", {"a": (None, 0.0), "b": ("2", 0.6)})
    # A straight-through page of the wrong type: every true field counts as wrong.
    t.add(_truth("d", a="1", b="2"), "id_card_front", "approved", {"a": ("1", 0.99)})
    clean = next(r for r in t.by_type_and_tier() if r["tier"] == "clean")
    assert clean["documents"] == 4
    assert clean["straight_through"] == pytest.approx(3 / 4)
    assert (clean["st_fields"], clean["st_wrong"]) == (6, 3)
    assert clean["st_field_error"] == pytest.approx(0.5)
    assert clean["field_accuracy"] == pytest.approx(4 / 8)


def test_reliability_bins_and_expected_calibration_error():
    t = RouteTable()
    for i in range(10):
        t.add(_truth(f"f{i}", a="1"), "claim_form", "approved", {"a": ("1" if i < 9 else "2", 0.9)})
    bins, ece = t.reliability()
    assert [(b["count"], round(b["accuracy"], 2)) for b in bins] == [(10, 0.9)]
    assert ece == pytest.approx(0.0, abs=1e-9)
    t2 = RouteTable()
    t2.add(_truth("g", a="1"), "claim_form", "approved", {"a": ("2", 0.999)})
    assert t2.reliability()[1] == pytest.approx(0.999)
