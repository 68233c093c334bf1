"""The synthetic bank-card generator (fixtures/generator/bankcard.py) and the committed
set in fixtures/bankcards."""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pytest
from PIL import Image
from stdnum import luhn

from fixtures.generator.__main__ import main as cli_main
from fixtures.generator.bankcard import (
    BANK_NAMES,
    BANKS,
    BankCard,
    bank_card_outputs,
    make_bank_card,
    render_bank_card_file,
)
from fixtures.generator.claimdata import BANKS as CLAIM_BANKS
from ocr.extract.bankcard import find_bank

ROOT = pathlib.Path(__file__).resolve().parents[1]
SET_DIR = ROOT / "fixtures" / "bankcards"
SEED, COUNT = 2029, 8


def _truth() -> list[dict]:
    return [json.loads(x) for x in (SET_DIR / "truth.jsonl").read_text("utf-8").splitlines()
            if x.strip()]


def test_numbers_are_luhn_valid_with_the_bank_prefix():
    rng = np.random.default_rng(1)
    for _ in range(300):
        card = make_bank_card(rng)
        bank = next(b for b in BANKS if b.name == card.bank)
        assert 16 <= len(card.number) <= 19 and card.number.isdigit()
        assert luhn.is_valid(card.number)
        assert card.number.startswith(bank.prefixes)
        assert len(card.number) == bank.length
        f = card.fields()
        assert set(f) == {"card_number", "bank_name", "card_holder"}
        assert f["card_holder"] is None or f["card_holder"] == card.holder_name or \
            f["card_holder"] == card.holder_name.upper()


def test_the_case_generator_can_choose_number_bank_and_holder():
    rng = np.random.default_rng(2)
    for name, _prefixes, _length in CLAIM_BANKS:
        card = make_bank_card(rng, bank=name, number="6222021234567890128", holder="王秀英",
                              print_holder=True)
        assert card.fields() == {"card_number": "6222021234567890128", "bank_name": name,
                                 "card_holder": "王秀英"}
    hidden = make_bank_card(rng, holder="王秀英", print_holder=False)
    assert hidden.fields()["card_holder"] is None and hidden.holder_name == "王秀英"
    with pytest.raises(ValueError):
        make_bank_card(rng, number="6222021234567890129")
    data, ext, extra = render_bank_card_file(hidden, "photo", np.random.default_rng(3), fonts="alt")
    assert ext == "jpg" and Image.open(io.BytesIO(data)).size == tuple(extra["image_size"])
    assert {"rotation", "card_quad", "style", "render"} <= set(extra)


def test_every_bank_name_maps_to_itself_in_the_extractor_table():
    for bank in BANKS:
        for printed in bank.printed:
            assert find_bank([printed])[0] == bank.name, printed
        for english in bank.english:
            assert find_bank([english])[0] == bank.name, english
    assert set(BANK_NAMES) >= {name for name, _, _ in CLAIM_BANKS}


def test_deterministic_and_fonts_change_the_look_only():
    a = list(bank_card_outputs(77, 5, ["clean", "hard"]))
    b = list(bank_card_outputs(77, 5, ["hard"]))
    assert a[1][1] == b[0][1]  # a variant does not depend on the others asked for
    assert a[0][2]["fields"] == b[0][2]["fields"]
    alt = list(bank_card_outputs(77, 5, ["clean"], fonts="alt"))
    assert alt[0][2]["fields"] == a[0][2]["fields"] and alt[0][1] != a[0][1]
    assert alt[0][2]["style"]["fonts"] == "alt"


def test_committed_set_matches_the_generator():
    truth = _truth()
    assert len(truth) == COUNT * 3
    assert {t["variant"] for t in truth} == {"clean", "photo", "hard"}
    for t in truth:
        assert t["doc_type"] == "bank_card" and t["seed"] == SEED
        f = t["fields"]
        assert luhn.is_valid(f["card_number"]) and 16 <= len(f["card_number"]) <= 19
        assert f["bank_name"] in BANK_NAMES
        assert (SET_DIR / t["file"]).exists()
        assert t["printed"]["card_number"].replace(" ", "") == f["card_number"]
    assert sum(t["fields"]["card_holder"] is not None for t in truth) >= 6
    assert sum(p.stat().st_size for p in SET_DIR.rglob("*.jpg")) < 2.2e6
    # the first card regenerates byte for byte (same software versions)
    rel, data, t0 = next(bank_card_outputs(SEED, 0, ["clean"]))
    assert (SET_DIR / rel).read_bytes() == data
    assert t0["fields"] == next(t for t in truth if t["file"] == rel)["fields"]


def test_cli_writes_a_set_that_load_truth_reads(tmp_path):
    from backoffice.accuracy import load_truth

    assert cli_main(["bankcards", "--out", str(tmp_path), "--count", "2", "--seed", "9",
                     "--variants", "clean", "--fonts", "alt", "-q"]) == 0
    truth = load_truth(tmp_path / "truth.jsonl")
    assert sorted(truth) == ["clean/b9_0000.jpg", "clean/b9_0001.jpg"]
    for rel, t in truth.items():
        assert (tmp_path / rel).is_file()
        assert {"file", "variant", "doc_type", "id", "seed", "index", "fields"} <= set(t)
    with pytest.raises(SystemExit):
        cli_main(["bankcards", "--out", str(tmp_path), "--variants", "scan"])


def test_bankcard_dataclass_fields():
    c = BankCard("6222021234567890128", "中国工商银行", None)
    assert c.fields() == {"card_number": "6222021234567890128", "bank_name": "中国工商银行",
                          "card_holder": None}
