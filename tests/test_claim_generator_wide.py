"""The claim-form generator's held-out layouts and wide options (fixtures/generator:
cornerbox, twocol, Kai values, 出险经过 narrative, check boxes, wide labels, the hard
photo tier and ``--wide``).  No OCR: these check what is drawn and written."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from fixtures.generator import claimdata, claimform, fonts, pagedegrade
from fixtures.generator.__main__ import main as cli_main
from fixtures.generator.build import (
    WIDE,
    WIDE_LAYOUTS,
    claim_outputs,
    render_claim,
)
from fixtures.generator.claimdata import FIELDS, LABELS, WIDE_LABELS, make_claim
from fixtures.generator.claimform import WideOptions
from fixtures.generator.identity import (
    COMPOUND_SURNAMES,
    GIVEN_COMMON,
    GIVEN_RARE,
    MINORITY_NAMES,
    RARE_SURNAMES,
    SURNAMES,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALL_ON = WideOptions(value_hand=1.0, narrative=1.0, checkboxes=1.0, wide_labels=True)
KAI_PACKAGES = "fonts-arphic-ukai fonts-arphic-gkai00mp fonts-lxgw-wenkai"


def _kai_fonts_installed() -> None:
    missing = [k for k in fonts.KAI_FONTS if not fonts.available(k)]
    assert not missing, f"Kai fonts missing: {missing}; apt-get install {KAI_PACKAGES}"


def _parse_date(text: str) -> dt.date:
    m = re.fullmatch(r"(\d{4})(?:年|-|\.|/)(\d{1,2})(?:月|-|\.|/)(\d{1,2})日?", text)
    assert m, text
    return dt.date(*map(int, m.groups()))


def _marked(printed: str) -> list[str]:
    """The ticked options of a check-box value as printed (☑本人 ☐配偶 ...)."""
    return [o[1:] for o in printed.split() if o[0] in "☑■"]


def _inside_page(form) -> None:
    st = form.style
    bottom = st["H"] - st["mb"] - claimform.footer_height(st)
    assert set(form.value_boxes) == set(FIELDS)
    for x0, y0, x1, y1 in form.value_boxes.values():
        assert 0 <= x0 < x1 < st["W"] and 0 <= y0 < y1 < bottom


def _check_printed(fields: dict, printed: dict) -> None:
    """Printed values are the truth's normal forms, as in test_claim_fixtures."""
    assert re.sub(r"\D", "", printed["phone"]) == fields["phone"]
    assert printed["account_number"].replace(" ", "") == fields["account_number"]
    assert _parse_date(printed["accident_date"]).isoformat() == fields["accident_date"]
    assert _parse_date(printed["application_date"]).isoformat() == fields["application_date"]
    figures = re.sub(r"^(人民币|¥|￥)|元$|,", "", printed["claim_amount"])
    assert Decimal(figures) == Decimal(fields["claim_amount"])
    rel = printed["relationship"]
    if rel[0] in "☑☐■□":
        assert _marked(rel) == [fields["relationship"]], rel
        assert sorted(o[1:] for o in rel.split()) == sorted(claimdata.RELATIONSHIPS)
    else:
        assert rel == fields["relationship"]
    for k in ("policy_number", "insured_name", "insured_id_number", "claimant_name",
              "hospital", "diagnosis", "claim_amount_in_words", "bank_name", "account_name"):
        assert printed[k] == fields[k], k


# --------------------------------------------------------------------------- defaults


def test_defaults_are_unchanged():
    assert claimform.LAYOUTS == ("table", "inline", "boxes")
    assert pagedegrade.PAGE_VARIANTS == ("clean", "photo")
    assert set(claimform.HOLDOUT_LAYOUTS) >= {"grid", "cornerbox", "twocol"}
    assert not set(claimform.HOLDOUT_LAYOUTS) & set(claimform.LAYOUTS)
    assert not WideOptions().active
    # options that are all off draw exactly the default form
    _, a = render_claim(2026, 1)
    _, b = render_claim(2026, 1, wide=WideOptions())
    assert a.image.tobytes() == b.image.tobytes() and a.style == b.style
    assert "wide" not in a.style and not a.extras


def test_default_truth_matches_the_committed_set():
    committed = {}
    for line in (ROOT / "fixtures" / "claims" / "truth.jsonl").read_text("utf-8").splitlines():
        t = json.loads(line)
        committed[t["file"]] = t
    for index in (0, 2):  # a table and a boxes form, clean only (cheap)
        (out,) = claim_outputs(2026, index, ["clean"])
        got = json.loads(json.dumps(out.truth, ensure_ascii=False))
        want = committed[out.relpath]
        assert "style" not in got and "narrative" not in got and "checks" not in got
        assert got.keys() == want.keys()
        for k in got:
            if k != "render":
                assert got[k] == want[k], k
        assert got["render"].keys() == want["render"].keys()


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("layout", ["cornerbox", "twocol"])
def test_held_out_layouts_render_every_field(layout):
    for index in range(3):
        for wide in (None, ALL_ON):
            claim, form = render_claim(11, index, layouts=(layout,), wide=wide)
            assert form.layout == layout
            _inside_page(form)
            _check_printed(claim.fields(), form.printed)
            summary = claimform.style_summary(form.style)
            assert ("cb_max_cols" in summary) == (layout == "cornerbox")
            assert ("tc_mode" in summary) == (layout == "twocol")


def _border_above(a: np.ndarray, x: int, y: int, reach: int) -> int | None:
    """Distance up from (x, y) to a dark horizontal rule at least 50 px long to the right
    (longer than any stroke of a label character)."""
    for d in range(2, reach):
        row = a[y - d, x:x + 50]
        if row.size and (row < 110).all():
            return d
    return None


def test_cornerbox_label_sits_inside_the_box_above_the_value():
    seen_rows = set()
    for index in range(4):
        _, form = render_claim(23, index, layouts=("cornerbox",))
        a = np.asarray(form.image)
        st = form.style
        for key, (x0, y0, x1, y1) in form.value_boxes.items():
            if key == "policy_number" and st["policy_pos"] == "header":
                continue
            reach = round(st["small_size"] * 3.2 + st["value_size"])
            d = _border_above(a, x0 + 4, y0, reach)
            assert d is not None, (index, key)
            # the label's ink lies between the box's top border and the value
            band = a[y0 - d + st["cb_line_w"] + 1:y0 - 2, x0 - 20:x0 + 120]
            assert (band < 128).sum() > 20, (index, key)
        tops = [b[1] for b in form.value_boxes.values()]
        seen_rows.update(sum(abs(t - u) <= 12 for u in tops) for t in tops)
    assert max(seen_rows) >= 2  # some rows hold two or three boxes


def test_twocol_rows_do_not_line_up():
    misaligned = 0
    for index in range(6):
        _, form = render_claim(31, index, layouts=("twocol",))
        st = form.style
        mid = st["ml"] + (st["W"] - st["ml"] - st["mr"]) * st["tc_split"]
        tops = {"L": [], "R": []}
        for x0, y0, x1, y1 in form.value_boxes.values():
            tops["L" if x0 < mid else "R"].append(y0)
        if tops["L"] and tops["R"]:
            for y in tops["R"]:
                misaligned += all(abs(y - z) > 4 for z in tops["L"])
    assert misaligned >= 10


# --------------------------------------------------------------------------- options


def test_wide_options_keep_the_truth_and_record_the_style():
    hands, narratives, checks = set(), set(), set()
    for index in range(8):
        claim, form = render_claim(5, index, layouts=WIDE_LAYOUTS, wide=WIDE)
        assert claim.fields() == make_claim(5, index).fields()  # content does not change
        _check_printed(claim.fields(), form.printed)
        _inside_page(form)
        s = claimform.wide_summary(form.style)
        assert set(s) == {"value_hand", "narrative", "checkboxes", "labels"}
        assert s["labels"] == "wide"
        hands.add(s["value_hand"])
        narratives.add(s["narrative"])
        checks.add(s["checkboxes"] != "none")
        for field, label in form.labels.items():
            assert label in WIDE_LABELS[field] or label in claimdata.WIDE_INSURED_ID_LABELS
    assert len(hands) >= 2 and narratives == {True, False} and checks == {True, False}


def test_wide_labels_are_a_superset_and_get_used():
    assert set(WIDE_LABELS) == set(FIELDS)
    for field in FIELDS:
        assert set(LABELS[field]) <= set(WIDE_LABELS[field])
        assert len(WIDE_LABELS[field]) > len(LABELS[field])
    new = 0
    for index in range(6):
        _, form = render_claim(9, index, wide=WideOptions(wide_labels=True))
        new += sum(form.labels[f] not in LABELS[f] for f in FIELDS)
    assert new >= 10


def test_narrative_repeats_the_date_and_names_the_hospital():
    for index in range(10):
        claim, form = render_claim(17, index, wide=WideOptions(narrative=1.0))
        nr = form.extras["narrative"]
        text = nr["text"]
        assert 2 <= text.count("。") <= 4, text
        assert claim.hospital in text and nr["hospitals"][0] == claim.hospital
        assert all(h != claim.hospital for h in nr["hospitals"][1:])
        assert nr["dates"][0] in text
        assert _parse_date(nr["dates"][0]) == claim.accident_date
        for d in nr["dates"][1:]:
            assert d in text
        # placed in the accident block, the section that holds the date and the hospital
        st = dict(form.style)
        sections, _, _ = claimform.build_sections(claim, st, np.random.default_rng(0))
        sec = next(s for s in sections if any(i.key == "story" for i in s.items))
        assert {"accident_date", "hospital"} <= {i.key for i in sec.items}
        assert nr["label"] in claimdata.NARRATIVE_LABELS
    # the same narrative with --narrative alone as in --wide
    _, alone = render_claim(17, 3, wide=WideOptions(narrative=1.0))
    _, wide = render_claim(17, 3, wide=ALL_ON)
    assert alone.extras["narrative"] == wide.extras["narrative"]


@pytest.mark.parametrize("style", claimform.CHECK_STYLES)
def test_check_boxes_tick_the_relationship(style):
    from fixtures.generator.build import _STREAM_CLAIM_STYLE, _STREAM_CLAIM_WIDE, claim_layout
    from fixtures.generator.identity import rng_for

    for index in (0, 1):
        claim = make_claim(41, index)
        st = claimform.form_style(rng_for(41, index, _STREAM_CLAIM_STYLE),
                                  claim_layout(index, WIDE_LAYOUTS))
        claimform.set_rotating_choices(st, index)
        claimform.apply_wide(st, rng_for(41, index, _STREAM_CLAIM_WIDE), claim,
                             WideOptions(checkboxes=1.0))
        st["checks"]["style"] = style
        form = claimform.render_form(claim, st, rng_for(41, index, 102))
        printed = form.printed["relationship"]
        assert _marked(printed) == [claim.relationship]
        assert claim.fields()["relationship"] == claim.relationship  # the normal form
        x0, y0, x1, y1 = form.value_boxes["relationship"]
        assert x1 - x0 < 0.3 * st["W"]  # the ticked option only
        assert form.extras["checks"]["relationship"]["checked"] == [claim.relationship]
        a = np.asarray(form.image)[y0:y1 + 1, x0:x1 + 1]
        assert (a < 128).sum() > 50  # a mark and a word are drawn there


def test_kai_glyphs_exist_for_everything_printed():
    _kai_fonts_installed()
    text = set()
    for index in range(6):
        _, form = render_claim(3, index, layouts=WIDE_LAYOUTS, wide=ALL_ON)
        for v in form.printed.values():
            text.update(v)
        text.update(form.extras.get("narrative", {}).get("text", ""))
    for s in (SURNAMES, RARE_SURNAMES, GIVEN_COMMON, GIVEN_RARE, "".join(COMPOUND_SURNAMES)):
        text.update(s)
    for pair in MINORITY_NAMES.values():
        for group in pair:
            for name in group:
                text.update(name)
    for c in (make_claim(13, i) for i in range(200)):
        text.update(c.hospital + c.bank_name + c.diagnosis + c.amount_words + c.story)
    text.update("0123456789年月日.-/¥￥,元整√")
    chars = sorted(c for c in text if not c.isspace())
    for key in fonts.KAI_FONTS:
        hf = claimform.HandFont((key,) + tuple(k for k in fonts.KAI_FALLBACK if k != key)
                                + ("sans", "symbol_dejavu"), 30, 1, 40, 0.04)
        for ch in chars:
            face = hf.face_key(ch)
            assert fonts.has_glyph(face, ch), (key, ch)
            if ord(ch) >= 0x3400:  # Chinese characters are always drawn in a Kai face
                assert face in fonts.KAI_FONTS, (key, ch, face)
    # UKai and WenKai cover every name, place and value character by themselves
    for key in ("kai_ukai", "kai_wenkai"):
        missing = [c for c in chars if ord(c) >= 0x3400 and not fonts.has_glyph(key, c)]
        assert not missing, (key, missing)


def test_new_strings_exist_in_the_printed_fonts():
    text = set()
    for labels in WIDE_LABELS.values():
        for label in labels:
            text.update(label)
    for seq in (claimdata.WIDE_INSURED_ID_LABELS, claimdata.NARRATIVE_LABELS,
                claimdata.RELATIONSHIPS, ("医疗费用住院津贴伤残身故重大疾病申请项目与出险人关系",)):
        for v in seq:
            text.update(v)
    for index in range(30):
        text.update(claimdata.narrative(make_claim(19, index), np.random.default_rng(index),
                                        "cn")["text"])
    cjk = sorted(c for c in text if ord(c) > 0x2E80)
    for key in fonts.CJK_FONTS:
        missing = [c for c in cjk if not fonts.has_glyph(key, c)]
        assert not missing, (key, missing)
    for mark in "☑☐":
        assert fonts.has_glyph("symbol_dejavu", mark)


def test_value_hand_draws_values_in_kai():
    _kai_fonts_installed()
    _, printed = render_claim(29, 0)
    _, hand = render_claim(29, 0, wide=WideOptions(value_hand=1.0))
    assert hand.style["value_hand"] in fonts.KAI_FONTS
    assert claimform.style_summary(hand.style)["value_hand"] == hand.style["value_hand"]
    assert isinstance(claimform._value_font(hand.style), claimform.HandFont)
    assert not isinstance(claimform._value_font(printed.style), claimform.HandFont)
    # the labels stay printed: same label font and size as the printed form
    for k in ("label_font", "label_size", "value_font", "layout"):
        assert hand.style[k] == printed.style[k]
    assert hand.image.tobytes() != printed.image.tobytes()


# --------------------------------------------------------------------------- hard tier


def test_hard_photos_are_small_turned_and_heavy():
    _, form = render_claim(3, 0, dpi=150)
    turns = set()
    for k in (0, 2, 4):
        r = pagedegrade.hard(form, np.random.default_rng(k))
        p = r.params
        assert r.ext == "jpg" and r.size in ((2304, 3072), (3072, 2304))
        assert 35 <= p["jpeg_quality"] <= 55 and p["glare"]
        assert 0.3 <= p["page_width_fraction"] <= 0.7001
        quad = np.array(r.card_quad)
        w, h = r.size
        assert (quad >= 0).all() and (quad[:, 0] <= w - 1).all() and (quad[:, 1] <= h - 1).all()
        off = (r.rotation - p["turn"] + 180) % 360 - 180
        assert abs(off) <= 15.01
        turns.add(p["turn"])
        with Image.open(__import__("io").BytesIO(r.data)) as im:
            assert im.size == r.size
    assert 0 in turns and len(turns) >= 2


def test_cli_wide_writes_every_variant(tmp_path):
    out = tmp_path / "wide"
    assert cli_main(["claims", "--wide", "--out", str(out), "--count", "2", "--seed", "101",
                     "--pdf-pages", "1", "-q"]) == 0
    rows = [json.loads(x) for x in (out / "truth.jsonl").read_text("utf-8").splitlines()]
    assert [(r["variant"], r["index"]) for r in rows] == [
        ("clean", 0), ("photo", 0), ("hard", 0), ("clean", 1), ("photo", 1), ("hard", 1),
        ("pdf", 9000)]
    assert [r["layout"] for r in rows[:6]] == [WIDE_LAYOUTS[0]] * 3 + [WIDE_LAYOUTS[1]] * 3
    for r in rows:
        assert (out / r["file"]).exists()
        assert set(r["style"]) == {"value_hand", "narrative", "checkboxes", "labels"}
        assert tuple(r["fields"]) == FIELDS
        _check_printed(r["fields"], r["printed"])
        assert ("value_boxes" in r) == (r["variant"] in ("clean", "pdf"))
    hard = [r for r in rows if r["variant"] == "hard"]
    assert all(35 <= r["render"]["jpeg_quality"] <= 55 for r in hard)
    # options override --wide; the held-out layouts and hard also come alone
    out2 = tmp_path / "some"
    assert cli_main(["claims", "--out", str(out2), "--count", "2", "--layouts",
                     "cornerbox,twocol", "--variants", "clean,hard", "--value-fonts", "kai",
                     "--pdf-pages", "0", "-q"]) == 0
    rows = [json.loads(x) for x in (out2 / "truth.jsonl").read_text("utf-8").splitlines()]
    assert [(r["variant"], r["layout"]) for r in rows] == [
        ("clean", "cornerbox"), ("hard", "cornerbox"), ("clean", "twocol"), ("hard", "twocol")]
    assert all(r["style"]["value_hand"] in fonts.KAI_FONTS for r in rows)
    assert all(not r["style"]["narrative"] and r["style"]["labels"] == "default" for r in rows)
    with pytest.raises(SystemExit):
        cli_main(["claims", "--out", str(out2), "--variants", "clean,blurry"])
