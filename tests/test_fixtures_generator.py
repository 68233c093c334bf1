"""Tests for the synthetic ID-card fixture generator (fixtures/generator) and the
committed set in fixtures/idcards."""

from __future__ import annotations

import datetime as dt
import io
import json
import pathlib

import numpy as np
import pytest
from PIL import Image
from stdnum.cn import ric

from fixtures.generator import identity
from fixtures.generator.__main__ import main as cli_main
from fixtures.generator.build import person_outputs
from fixtures.generator.fonts import CJK_FONTS, has_glyph
from fixtures.generator.identity import (
    REFERENCE_DATE,
    age_on,
    person_for,
    validity_years,
    wrap_address,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SET_DIR = ROOT / "fixtures" / "idcards"
SEED, PEOPLE = 2026, 8
PERSON = 3  # the person regenerated in full


def _load_truth() -> list[dict]:
    with open(SET_DIR / "truth.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def truth() -> list[dict]:
    return _load_truth()


@pytest.fixture(scope="module")
def regenerated():
    """All outputs of one committed person, generated once for the module."""
    return list(person_outputs(SEED, PERSON))


def _approx_equal(a, b, tol=0.2) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_approx_equal(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_approx_equal(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol
    return a == b


def _check_front(fields: dict) -> None:
    num = fields["id_number"]
    assert len(num) == 18 and num[:17].isdigit() and num[17] in "0123456789X"
    assert ric.is_valid(num), num
    assert ric.calc_check_digit(num) == num[17]
    birth = dt.date.fromisoformat(fields["birth_date"])
    assert ric.get_birth_date(num) == birth
    assert fields["sex"] == ("男" if int(num[16]) % 2 else "女")
    assert 2 <= len(fields["name"]) <= 4
    assert not fields["ethnicity"].endswith("族")
    assert " " not in fields["address"]
    assert 1 <= len(wrap_address(fields["address"])) <= 3
    # the address starts with the province of the region code
    assert fields["address"].startswith(ric.get_birth_place(num)["province"][:2])


def _check_back(fields: dict, birth: dt.date) -> None:
    start = dt.date.fromisoformat(fields["valid_from"])
    assert start > birth
    assert start <= REFERENCE_DATE
    years = validity_years(age_on(birth, start))
    if years is None:
        assert fields["valid_until"] == "长期"
    else:
        end = dt.date.fromisoformat(fields["valid_until"])
        assert (end.year - start.year, end.month) == (years, start.month)
    assert fields["issuing_authority"].endswith(("公安局", "分局"))


# --------------------------------------------------------------------------- committed set


def test_committed_set_is_complete_and_small(truth):
    assert len(truth) == PEOPLE * 3 * 2
    files = {t["file"] for t in truth}
    for i in range(PEOPLE):
        pid = f"s{SEED}_{i:04d}"
        for variant in ("clean", "photo", "hard"):
            for side in ("front", "back"):
                assert f"{variant}/{pid}_{side}.jpg" in files
    total = 0
    for t in truth:
        path = SET_DIR / t["file"]
        assert path.is_file(), path
        total += path.stat().st_size
        with Image.open(path) as im:
            assert list(im.size) == t["image_size"]
        assert t["doc_type"] in ("id_card_front", "id_card_back")
        assert t["variant"] == t["file"].split("/")[0]
    assert total < 8_000_000


def test_truth_numbers_and_dates_are_consistent(truth):
    fronts = {t["id"]: t["fields"] for t in truth if t["doc_type"] == "id_card_front"}
    assert len(fronts) == PEOPLE
    for t in truth:
        if t["doc_type"] == "id_card_front":
            _check_front(t["fields"])
            assert "".join(t["address_lines"]) == t["fields"]["address"]
            assert set(t["fields"]) == {"name", "sex", "ethnicity", "birth_date", "address",
                                        "id_number"}
        else:
            assert set(t["fields"]) == {"issuing_authority", "valid_from", "valid_until"}
            _check_back(t["fields"], dt.date.fromisoformat(fronts[t["id"]]["birth_date"]))
    # the same person has the same fields in every variant
    for pid in fronts:
        sides = [t["fields"] for t in truth if t["id"] == pid and t["doc_type"] == "id_card_back"]
        assert len(sides) == 3 and sides[0] == sides[1] == sides[2]


def test_card_quad_inside_image_and_rotation(truth):
    exact_turns = 0
    for t in truth:
        w, h = t["image_size"]
        quad = np.array(t["card_quad"], dtype=float)
        assert quad.shape == (4, 2)
        assert (quad[:, 0] >= 0).all() and (quad[:, 0] <= w - 1).all(), t["file"]
        assert (quad[:, 1] >= 0).all() and (quad[:, 1] <= h - 1).all(), t["file"]
        r = t["rotation"]
        assert 0 <= r < 360
        # the card's top edge points along the stated clockwise rotation
        dx, dy = quad[1] - quad[0]
        edge_angle = np.degrees(np.arctan2(dy, dx)) % 360
        diff = (edge_angle - r + 180) % 360 - 180
        assert abs(diff) < 12, (t["file"], edge_angle, r)
        # clockwise corner order: positive signed area in image coordinates (y down)
        x, y = quad[:, 0], quad[:, 1]
        assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0
        if t["variant"] == "clean":
            assert r == 0
        elif t["variant"] == "photo":
            assert min(r, 360 - r) <= 15.01
        elif r in (90.0, 180.0, 270.0):
            exact_turns += 1
    assert exact_turns >= 2


def test_committed_fields_are_reproduced(truth):
    for t in truth:
        p = person_for(t["seed"], t["index"])
        expected = p.front_fields() if t["doc_type"] == "id_card_front" else p.back_fields()
        assert t["fields"] == expected, t["file"]


def test_regenerating_one_person_reproduces_committed_truth(truth, regenerated):
    committed = {t["file"]: t for t in truth if t["index"] == PERSON}
    assert len(regenerated) == len(committed) == 6
    for out in regenerated:
        expected = committed[out.relpath]
        got = json.loads(json.dumps(out.truth, ensure_ascii=False))
        assert _approx_equal(got, expected), out.relpath
    # and the clean pixels match the committed files (JPEG decoders may differ by a level)
    for out in regenerated:
        if out.truth["variant"] != "clean":
            continue
        a = np.asarray(Image.open(io.BytesIO(out.data)).convert("RGB"), dtype=np.int16)
        b = np.asarray(Image.open(SET_DIR / out.relpath).convert("RGB"), dtype=np.int16)
        assert a.shape == b.shape
        assert np.abs(a - b).mean() < 1.0, out.relpath


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes(regenerated, tmp_path):
    clean_only = list(person_outputs(SEED, PERSON, ["clean"]))
    full_clean = [o for o in regenerated if o.truth["variant"] == "clean"]
    assert [o.relpath for o in clean_only] == [o.relpath for o in full_clean]
    for a, b in zip(clean_only, full_clean):
        assert a.data == b.data  # same seed -> same bytes, whatever variants are requested
        assert a.truth == b.truth
    # the CLI writes the same bytes and truth lines
    rc = cli_main(["idcards", "--out", str(tmp_path), "--count", "1", "--seed", str(SEED),
                   "--start", str(PERSON), "--variants", "clean", "-q"])
    assert rc == 0
    lines = [json.loads(x) for x in (tmp_path / "truth.jsonl").read_text("utf-8").splitlines()]
    assert [x["file"] for x in lines] == [o.relpath for o in clean_only]
    for line, o in zip(lines, clean_only):
        assert (tmp_path / o.relpath).read_bytes() == o.data
        assert line == json.loads(json.dumps(o.truth, ensure_ascii=False))


def test_other_seed_other_person():
    a, b = person_for(SEED, 0), person_for(SEED + 1, 0)
    assert a.front_fields() != b.front_fields()
    assert person_for(SEED, 0).front_fields() == a.front_fields()


# --------------------------------------------------------------------------- data quality


def test_many_people_are_valid_and_varied():
    people = [person_for(7, i) for i in range(160)]
    for p in people:
        _check_front(p.front_fields())
        _check_back(p.back_fields(), p.birth_date)
        assert 1940 <= p.birth_date.year <= 2015
        assert p.id_number[:6] == p.region.code
    assert {len(p.name) for p in people} == {2, 3, 4}
    assert {len(wrap_address(p.address)) for p in people} == {1, 2, 3}
    assert {p.sex for p in people} == {"男", "女"}
    assert any(p.id_number.endswith("X") for p in people)
    assert len({p.ethnicity for p in people}) >= 6
    assert any(p.valid_until is None for p in people)
    expired = sum(p.valid_until is not None and p.valid_until <= REFERENCE_DATE for p in people)
    assert 0 < expired < len(people) * 0.35


def test_all_printed_characters_exist_in_all_fonts(truth):
    text = set("姓名性别民族出生住址公民身份号码中华人民共和国居民身份证签发机关有效期限年月日长期男女")
    for t in truth:
        for v in t["fields"].values():
            text.update(v)
    for s in (identity.SURNAMES, identity.RARE_SURNAMES, identity.GIVEN_COMMON,
              identity.GIVEN_RARE, *identity.COMPOUND_SURNAMES, *identity.ROADS,
              *identity.COMMUNITIES, *identity.TOWNS, *identity.VILLAGES):
        text.update(s)
    for names in identity.MINORITY_NAMES.values():
        for group in names:
            for n in group:
                text.update(n)
    cjk = sorted(c for c in text if ord(c) > 0x2E80)
    for key in CJK_FONTS:
        missing = [c for c in cjk if not has_glyph(key, c)]
        assert not missing, (key, missing)
