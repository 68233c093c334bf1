"""The medical-invoice generator: deterministic, and its truth consistent (the items add
up to the total, the capitals say the total, the payments stay within it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import numpy as np
import pytest

from domain import cn_amount
from domain.fields import FIELDS
from domain.models import DocType
from fixtures.generator.invoice import (
    LAYOUTS,
    Invoice,
    invoice_for,
    make_invoice,
    render_invoice_file,
    write_invoice_set,
)


def _rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_truth(fields: dict) -> None:
    assert list(fields) == list(FIELDS[DocType.MEDICAL_INVOICE])
    assert fields["invoice_kind"] in ("门诊", "住院")
    assert fields["invoice_code"].isdigit() and fields["invoice_number"].isdigit()
    dt.date.fromisoformat(fields["invoice_date"])
    items = [part.split(":") for part in fields["items"].split(";")]
    assert all(len(p) == 2 and p[1] == f"{Decimal(p[1]):.2f}" for p in items)
    total = Decimal(fields["total_amount"])
    assert sum(Decimal(a) for _, a in items) == total
    assert cn_amount.parse(fields["total_amount_in_words"]) == total
    assert fields["total_amount_in_words"] == cn_amount.format(total)
    paid = [Decimal(fields[k]) for k in ("insurance_paid", "self_paid") if fields[k] is not None]
    assert sum(paid, Decimal(0)) <= total and all(p >= 0 for p in paid)


@pytest.mark.parametrize("seed", range(40))
def test_truth_is_consistent(seed):
    _check_truth(invoice_for(2028, seed).fields())


def test_make_invoice_contract():
    earliest, latest = dt.date(2024, 3, 1), dt.date(2024, 3, 9)
    for k in range(30):
        inv = make_invoice(_rng(k), patient_name="王小明", hospital="北京市朝阳区人民医院",
                           earliest=earliest, latest=latest, total_at_least=Decimal(5000),
                           kind="住院" if k % 2 else None)
        assert isinstance(inv, Invoice)
        f = inv.fields()
        _check_truth(f)
        assert earliest <= dt.date.fromisoformat(f["invoice_date"]) <= latest
        assert Decimal(f["total_amount"]) >= 5000
        assert f["patient_name"] == "王小明" and f["hospital"] == "北京市朝阳区人民医院"
        if k % 2:
            assert f["invoice_kind"] == "住院"
    with pytest.raises(ValueError):
        make_invoice(_rng(), patient_name="王小明", hospital="x医院", earliest=latest,
                     latest=earliest)


def test_same_seed_same_invoice_and_image():
    a, b = invoice_for(2028, 3), invoice_for(2028, 3)
    assert a.fields() == b.fields()
    data_a, ext, info = render_invoice_file(a, "clean", _rng(5))
    data_b, _, _ = render_invoice_file(b, "clean", _rng(5))
    assert ext == "jpg" and data_a == data_b
    assert info["layout"] in LAYOUTS and info["rotation"] == 0.0
    assert invoice_for(2028, 4).fields() != a.fields()


@pytest.mark.parametrize("variant", ["clean", "photo", "hard"])
def test_render_variants(variant):
    inv = invoice_for(7, 1)
    data, ext, info = render_invoice_file(inv, variant, _rng(3), fonts="alt")
    assert ext == "jpg" and data[:2] == b"\xff\xd8"
    assert len(info["page_quad"]) == 4 and info["render"]["fonts"] == "alt"
    assert info["image_size"][0] > 0 and 0 <= info["rotation"] < 360


def test_set_is_reproducible_and_readable(tmp_path):
    from backoffice.accuracy import load_truth

    a = write_invoice_set(str(tmp_path / "a"), 3, 11, ["clean", "photo"])
    write_invoice_set(str(tmp_path / "b"), 3, 11, ["clean", "photo"])
    assert a["images"] == 6
    for name in ("truth.jsonl", "clean/m11_0000.jpg", "photo/m11_0002.jpg"):
        assert hashlib.sha256((tmp_path / "a" / name).read_bytes()).digest() == \
            hashlib.sha256((tmp_path / "b" / name).read_bytes()).digest()
    truth = load_truth(tmp_path / "a" / "truth.jsonl")
    assert len(truth) == 6
    layouts = set()
    for key, item in truth.items():
        assert (tmp_path / "a" / key).exists()
        assert item["doc_type"] == "medical_invoice" and item["variant"] in ("clean", "photo")
        assert {"file", "id", "seed", "index", "fields", "layout"} <= set(item)
        _check_truth(item["fields"])
        layouts.add(item["layout"])
    assert layouts == set(LAYOUTS)  # three consecutive invoices cover every layout
    # a subset of the variants reproduces the same images
    write_invoice_set(str(tmp_path / "c"), 1, 11, ["photo"], start=2)
    assert (tmp_path / "c" / "photo/m11_0002.jpg").read_bytes() == \
        (tmp_path / "a" / "photo/m11_0002.jpg").read_bytes()
    line = json.loads((tmp_path / "c" / "truth.jsonl").read_text("utf-8"))
    assert line["index"] == 2


def test_cli_writes_a_set(tmp_path):
    from fixtures.generator.__main__ import main

    assert main(["invoices", "--out", str(tmp_path), "--count", "1", "--seed", "5",
                 "--variants", "clean", "--fonts", "alt", "-q"]) == 0
    assert (tmp_path / "clean" / "m5_0000.jpg").exists()
