"""Tests for the synthetic claim-form fixtures (fixtures/generator claims) and the
committed set in fixtures/claims."""

from __future__ import annotations

import datetime as dt
import io
import json
import pathlib
import re
from decimal import Decimal

import numpy as np
import pypdfium2
import pytest
from PIL import Image
from stdnum import luhn
from stdnum.cn import ric

from domain import cn_amount
from fixtures.generator import claimdata, claimform
from fixtures.generator.__main__ import main as cli_main
from fixtures.generator.build import PDF_FIRST_INDEX, claim_outputs, claims_pdf
from fixtures.generator.claimdata import FIELDS, LABELS, MOBILE_PREFIXES, RELATIONSHIPS, make_claim
from fixtures.generator.fonts import CJK_FONTS, has_glyph
from fixtures.generator.identity import REFERENCE_DATE, person_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
SET_DIR = ROOT / "fixtures" / "claims"
SEED, FORMS, PDF_PAGES = 2026, 6, 3
FORM = 1  # the form regenerated in full


def _load_truth() -> list[dict]:
    with open(SET_DIR / "truth.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def truth() -> list[dict]:
    return _load_truth()


@pytest.fixture(scope="module")
def regenerated():
    return list(claim_outputs(SEED, FORM))


def _approx_equal(a, b, tol=0.2) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_approx_equal(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_approx_equal(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol
    return a == b


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _parse_printed_date(text: str) -> dt.date:
    m = re.fullmatch(r"(\d{4})(?:年|-|\.|/)(\d{1,2})(?:月|-|\.|/)(\d{1,2})日?", text)
    assert m, text
    return dt.date(*map(int, m.groups()))


def _check_fields(f: dict, seed: int, index: int) -> None:
    assert tuple(f) == FIELDS
    assert all(isinstance(v, str) and v and v == v.strip() for v in f.values()), f
    # the insured is the synthetic ID-card person with the same seed and index
    person = person_for(seed, index)
    assert f["insured_name"] == person.name
    num = f["insured_id_number"]
    assert num == person.id_number and ric.is_valid(num)
    assert len(num) == 18 and ric.calc_check_digit(num) == num[17]
    assert f["relationship"] in RELATIONSHIPS
    if f["relationship"] == "本人":
        assert f["claimant_name"] == f["insured_name"]
    else:
        assert f["claimant_name"] != f["insured_name"]
    assert re.fullmatch(r"1\d{10}", f["phone"]) and f["phone"][:3] in MOBILE_PREFIXES
    assert re.fullmatch(r"\d{16,19}", f["account_number"]) and luhn.is_valid(f["account_number"])
    assert f["account_name"] in (f["claimant_name"], f["insured_name"])
    assert re.fullmatch(r"[A-Z0-9]{12,22}", f["policy_number"])
    # the amount: normal form, and the words are the same amount
    amount = cn_amount.parse_figures(f["claim_amount"])
    assert re.fullmatch(r"\d+\.\d\d", f["claim_amount"]) and amount > 0
    assert cn_amount.parse(f["claim_amount_in_words"]) == amount
    assert cn_amount.format(amount) == f["claim_amount_in_words"]
    # dates: ISO, born before the accident, accident before the application
    accident = dt.date.fromisoformat(f["accident_date"])
    applied = dt.date.fromisoformat(f["application_date"])
    assert person.birth_date < accident < applied < REFERENCE_DATE
    assert f["bank_name"].endswith(("分行", "支行", "营业部"))
    assert f["hospital"].endswith(("医院", "保健院"))


# --------------------------------------------------------------------------- committed set


def test_committed_set_is_complete_and_small(truth):
    images = [t for t in truth if t["file"] != "multi.pdf"]
    pages = [t for t in truth if t["file"] == "multi.pdf"]
    assert len(images) == FORMS * 2 and len(pages) == PDF_PAGES
    files = {t["file"] for t in images}
    for i in range(FORMS):
        for variant in ("clean", "photo"):
            assert f"{variant}/c{SEED}_{i:04d}.jpg" in files
    total = (SET_DIR / "multi.pdf").stat().st_size + (SET_DIR / "truth.jsonl").stat().st_size
    for t in images:
        path = SET_DIR / t["file"]
        total += path.stat().st_size
        with Image.open(path) as im:
            assert list(im.size) == t["image_size"]
        assert t["variant"] == t["file"].split("/")[0]
    assert total < 6_000_000
    for t in truth:
        assert t["doc_type"] == "claim_form"
        assert set(t["labels"]) == set(FIELDS) == set(t["printed"])


def test_layouts_are_covered(truth):
    for variant in ("clean", "photo", "pdf"):
        layouts = [t["layout"] for t in truth if t["variant"] == variant]
        assert set(layouts) == set(claimform.LAYOUTS), variant
    clean = [t for t in truth if t["variant"] == "clean"]
    assert sorted(t["layout"] for t in clean) == sorted(claimform.LAYOUTS * 2)
    # both table kinds and both box grids, and more than one of most choices
    assert {t["render"]["table_cols"] for t in clean if t["layout"] == "table"} == {2, 4}
    assert {t["render"]["box_cols"] for t in clean if t["layout"] == "boxes"} == {2, 3}
    assert len({t["title"] for t in truth}) >= 4
    assert len({t["insurer"] for t in truth}) >= 4
    assert len({t["render"]["value_font"] for t in clean}) >= 2
    assert len({t["render"]["date_style"] for t in clean}) >= 3
    for field in ("policy_number", "insured_id_number", "claim_amount", "account_number"):
        assert len({t["labels"][field] for t in truth}) >= 2, field


def test_truth_fields_are_consistent(truth):
    for t in truth:
        _check_fields(t["fields"], t["seed"], t["index"])
        for field, label in t["labels"].items():
            assert label in LABELS[field], (field, label)
    # the same form has the same truth in both variants
    by_id: dict[str, list[dict]] = {}
    for t in truth:
        by_id.setdefault(t["id"], []).append(t)
    for ts in by_id.values():
        assert all(x["fields"] == ts[0]["fields"] and x["labels"] == ts[0]["labels"] for x in ts)


def test_printed_values_match_the_normal_forms(truth):
    for t in truth:
        f, p = t["fields"], t["printed"]
        assert _digits(p["phone"]) == f["phone"]
        assert _digits(p["account_number"]) == f["account_number"]
        assert p["account_number"].replace(" ", "") == f["account_number"]
        assert _parse_printed_date(p["accident_date"]).isoformat() == f["accident_date"]
        assert _parse_printed_date(p["application_date"]).isoformat() == f["application_date"]
        figures = re.sub(r"^(人民币|¥|￥)|元$|,", "", p["claim_amount"])
        assert Decimal(figures) == Decimal(f["claim_amount"]), p["claim_amount"]
        for k in ("policy_number", "insured_name", "insured_id_number", "claimant_name",
                  "relationship", "hospital", "diagnosis", "claim_amount_in_words", "bank_name",
                  "account_name"):
            assert p[k] == f[k], k


def test_page_quad_and_value_boxes(truth):
    for t in truth:
        w, h = t["image_size"]
        quad = np.array(t["page_quad"], dtype=float)
        assert quad.shape == (4, 2)
        assert (quad[:, 0] >= 0).all() and (quad[:, 0] <= w - 1).all(), t["file"]
        assert (quad[:, 1] >= 0).all() and (quad[:, 1] <= h - 1).all(), t["file"]
        x, y = quad[:, 0], quad[:, 1]
        assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0  # clockwise
        pw, ph = t["page_size"]
        assert (pw, ph) == claimform.page_size(t["dpi"])
        if t["variant"] == "photo":
            r = t["rotation"]
            assert min(r, 360 - r) <= 10.01
            assert 0.6 <= (y.max() - y.min()) / h <= 0.9 + 1e-6
            assert "value_boxes" not in t
        else:
            assert t["rotation"] == 0 and [w, h] == [pw, ph]
            assert set(t["value_boxes"]) == set(FIELDS)
            for x0, y0, x1, y1 in t["value_boxes"].values():
                assert 0 <= x0 < x1 < w and 0 <= y0 < y1 < h
                assert y1 - y0 >= 18 * t["dpi"] / 150  # legible: text at least ~20 px tall


def test_pdf_has_three_a4_pages(truth):
    pages = [t for t in truth if t["file"] == "multi.pdf"]
    assert [t["page"] for t in pages] == [1, 2, 3]
    assert [t["index"] for t in pages] == [PDF_FIRST_INDEX + k for k in range(3)]
    pdf = pypdfium2.PdfDocument(str(SET_DIR / "multi.pdf"))
    try:
        assert len(pdf) == 3
        for i in range(3):
            w, h = pdf[i].get_size()
            assert abs(w - 595.3) < 2 and abs(h - 841.9) < 2  # A4 in points
        bitmap = pdf[0].render(scale=150 / 72).to_pil().convert("L")
        assert abs(bitmap.size[0] - 1240) <= 2 and abs(bitmap.size[1] - 1754) <= 2
        assert np.asarray(bitmap).min() < 80  # dark ink on the page
    finally:
        pdf.close()


# --------------------------------------------------------------------------- determinism


def test_regenerating_one_form_reproduces_committed_truth(truth, regenerated):
    committed = {t["file"]: t for t in truth if t["index"] == FORM and t["file"] != "multi.pdf"}
    assert [o.relpath for o in regenerated] == [f"clean/c{SEED}_{FORM:04d}.jpg",
                                                f"photo/c{SEED}_{FORM:04d}.jpg"]
    for out in regenerated:
        got = json.loads(json.dumps(out.truth, ensure_ascii=False))
        assert _approx_equal(got, committed[out.relpath]), out.relpath
        a = np.asarray(Image.open(io.BytesIO(out.data)).convert("RGB"), dtype=np.int16)
        b = np.asarray(Image.open(SET_DIR / out.relpath).convert("RGB"), dtype=np.int16)
        assert a.shape == b.shape
        assert np.abs(a - b).mean() < 1.0, out.relpath  # JPEG codecs may differ by a level


def test_same_seed_same_bytes(regenerated, tmp_path):
    clean_only = list(claim_outputs(SEED, FORM, ["clean"]))
    assert len(clean_only) == 1
    assert clean_only[0].data == regenerated[0].data
    assert clean_only[0].truth == regenerated[0].truth
    rc = cli_main(["claims", "--out", str(tmp_path), "--count", "1", "--seed", str(SEED),
                   "--start", str(FORM), "--variants", "clean", "--pdf-pages", "0", "-q"])
    assert rc == 0
    lines = [json.loads(x) for x in (tmp_path / "truth.jsonl").read_text("utf-8").splitlines()]
    assert len(lines) == 1
    assert (tmp_path / clean_only[0].relpath).read_bytes() == clean_only[0].data
    assert lines[0] == json.loads(json.dumps(clean_only[0].truth, ensure_ascii=False))
    assert not (tmp_path / "multi.pdf").exists()


def test_pdf_is_deterministic(truth):
    a, b = claims_pdf(SEED, 1), claims_pdf(SEED, 1)
    assert a.data == b.data and a.data.startswith(b"%PDF")
    committed = next(t for t in truth if t["file"] == "multi.pdf")
    assert _approx_equal(json.loads(json.dumps(a.truth[0], ensure_ascii=False)), committed)


def test_other_seed_other_form():
    assert make_claim(SEED, 0).fields() == make_claim(SEED, 0).fields()
    assert make_claim(SEED, 0).fields() != make_claim(SEED + 1, 0).fields()


# --------------------------------------------------------------------------- data quality


def test_many_claims_are_valid_and_varied():
    claims = [make_claim(7, i) for i in range(150)]
    for c in claims:
        _check_fields(c.fields(), 7, c.index)
        age = c.extra["age_at_accident"]
        if age < 18:
            assert c.relationship in ("父母", "其他")
        if c.relationship == "子女":
            assert age >= 45
        if c.claimant_id is not None:
            assert ric.is_valid(c.claimant_id) and c.claimant_id != c.insured.id_number
    assert {c.relationship for c in claims} == set(RELATIONSHIPS)
    assert {len(c.account_number) for c in claims} == {16, 17, 18, 19}
    amounts = [c.amount_words for c in claims]
    assert any(w.endswith("整") for w in amounts) and any("零" in w for w in amounts)
    assert any(w.endswith("分") for w in amounts) and any(w.endswith("角") for w in amounts)
    assert len({c.title for c in claims}) >= 10
    assert len({c.hospital for c in claims}) >= 60


def test_styles_vary():
    styles = [claimform.form_style(np.random.default_rng(i), claimform.LAYOUTS[i % 3])
              for i in range(60)]
    assert {s["dpi"] for s in styles} == {150, 180, 200}
    for key in ("label_font", "value_font", "title_font", "date_style", "amount_style",
                "phone_style", "policy_pos", "app_date_pos", "colon"):
        assert len({s[key] for s in styles}) >= 3, key
    for s in styles:
        assert s["label_size"] >= claimform.MIN_BODY_PX * s["s"] - 1
        assert s["value_size"] >= claimform.MIN_BODY_PX * s["s"] - 1
    margins = [s["ml"] / s["s"] for s in styles]
    assert max(margins) - min(margins) > 50


def test_all_printed_characters_exist_in_all_fonts(truth):
    text = set()
    for t in truth:
        for d in (t["fields"], t["printed"], t["labels"]):
            for v in d.values():
                text.update(v)
        text.update(t["title"] + t["insurer"])
    for labels in LABELS.values():
        for label in labels:
            text.update(label)
    for seq in (claimform.DECLARATIONS, claimform.DECL_HEADINGS, claimform.NOTES,
                claimform.FILLERS, claimdata.INSURER_STEMS, claimdata.INJURY_STORIES,
                claimdata.ILLNESS_STORIES, claimdata.BODY_PARTS,
                *claimdata.TITLES.values(), *claimdata.INSURER_KINDS.values(),
                *claimform.HEADINGS.values()):
        for v in seq:
            text.update(v)
    for rows in (claimdata.INJURIES, claimdata.ILLNESSES, claimdata.BANKS):
        for row in rows:
            text.update(row[0])
    text.update("申请人签名签字签章日期年月日被保险人非本人申请时客服电话第页共全国统一热线编号■□"
                "（）：性别报案号出险经过事故理赔类型申请项目医疗费用住院津贴伤残身故重大疾病")
    cjk = sorted(c for c in text if ord(c) > 0x2E80 or c in "■□¥")
    for key in CJK_FONTS:
        missing = [c for c in cjk if not has_glyph(key, c)]
        assert not missing, (key, missing)


@pytest.mark.parametrize("seed,index", [(2, 41), (1, 23)])
def test_crowded_forms_still_fit(seed, index):
    """Two-column box forms with many items: optional parts go, the fields stay legible."""
    from fixtures.generator.build import render_claim

    _, form = render_claim(seed, index)
    st = form.style
    assert st["relief"]  # these needed some room
    assert min(st["label_size"], st["value_size"]) >= claimform.MIN_BODY_PX * st["s"] - 1
    bottom = st["H"] - st["mb"] - claimform.footer_height(st)
    assert set(form.value_boxes) == set(FIELDS)
    assert max(b[3] for b in form.value_boxes.values()) < bottom


def test_held_out_grid_layout_only_on_request(tmp_path):
    """`--layouts grid` draws the held-out layout (labels over values in a ruled grid):
    every field on the page, inside the page; the default sets never draw it."""
    from fixtures.generator.build import render_claim

    assert "grid" not in claimform.LAYOUTS
    for index in range(4):
        _, form = render_claim(5, index, layouts=("grid",))
        assert form.layout == "grid" and form.style["grid_cols"] in (3, 4)
        assert set(form.value_boxes) == set(FIELDS)
        assert max(b[3] for b in form.value_boxes.values()) < form.style["H"]
    out = tmp_path / "grid"
    assert cli_main(["claims", "--layouts", "grid", "--out", str(out), "--count", "2",
                     "--variants", "clean", "--pdf-pages", "0", "-q"]) == 0
    rows = [json.loads(x) for x in (out / "truth.jsonl").read_text().splitlines()]
    assert [r["layout"] for r in rows] == ["grid", "grid"]
    with pytest.raises(SystemExit):
        cli_main(["claims", "--layouts", "spiral", "--out", str(out)])
