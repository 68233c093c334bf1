"""Risk signals through the real reading pipeline (PaddleOCR): the ``risk`` object of
``backoffice extract --json``, the temporary card read as its own type, the portrait
kept with the reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backoffice.settings import get_settings
from domain.models import DocType
from fixtures.generator import risk as gen
from ocr.decode import Limits, decode
from ocr.pipeline import read_page

ROOT = Path(__file__).resolve().parents[1]
SEED = 4243
pytestmark = pytest.mark.ocr


def _write(tmp_path: Path, index: int, kind: str, tier: str) -> Path:
    o = next(iter(gen.risk_outputs(SEED, index, [kind], [tier])))
    path = tmp_path / o.relpath.replace("/", "_")
    path.write_bytes(o.data)
    return path


def test_extract_json_carries_the_risk_signals(tmp_path):
    genuine = _write(tmp_path, 0, "genuine", "photo")
    screen = _write(tmp_path, 0, "recapture", "clean")
    env = {**os.environ, "BACKOFFICE_DATA_DIR": str(get_settings().data_dir)}
    proc = subprocess.run([sys.executable, "-m", "cli", "extract", str(genuine), str(screen),
                           "--json"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    good, bad = (json.loads(line) for line in proc.stdout.splitlines())
    for record in (good, bad):
        risk = record["risk"]
        assert {"photocopy", "recapture", "tampering"} <= set(risk)
        for signal in risk.values():
            assert set(signal) == {"score", "flagged", "reason"}
            assert 0.0 <= signal["score"] <= 1.0 and isinstance(signal["flagged"], bool)
            assert signal["reason"]
    assert good["doc_type"] == "id_card_front"
    assert not any(s["flagged"] for s in good["risk"].values()), good["risk"]
    assert good["risk"]["portrait"]["reason"].startswith("portrait found")
    assert bad["risk"]["recapture"]["flagged"]
    assert bad["route"]["decision"] == "in_review"
    assert any(r.startswith("risk: recapture") for r in bad["route"]["reasons"])
    # the reasons name figures, never the card's values
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("tier", ["clean", "photo"])
def test_temporary_card_is_read_as_its_own_type(ocr_engine, tier):
    o = next(iter(gen.risk_outputs(SEED, 1, ["temporary"], [tier])))
    reading = read_page(decode(o.data, Limits())[0].image, ocr_engine)
    assert reading.doc_type is DocType.ID_CARD_TEMPORARY
    truth = o.truth["fields"]
    for name in ("id_number", "birth_date", "valid_from", "valid_until"):
        assert reading.fields[name].value == truth[name], name
    assert reading.risk.signals["temporary_id"].flagged
    assert reading.portrait_jpeg  # the photo of a temporary card is kept too


def test_genuine_front_keeps_its_portrait_and_back_has_none(ocr_engine):
    fronts = [o for o in gen.risk_outputs(SEED, 2, ["genuine"], ["clean"])]
    front, back = fronts
    r_front = read_page(decode(front.data, Limits())[0].image, ocr_engine)
    r_back = read_page(decode(back.data, Limits())[0].image, ocr_engine)
    assert r_front.doc_type is DocType.ID_CARD_FRONT and r_front.portrait_jpeg
    assert not r_front.risk.signals["portrait"].flagged
    assert r_back.doc_type is DocType.ID_CARD_BACK and r_back.portrait_jpeg is None
    assert "portrait" not in r_back.risk.signals
    assert "portrait_jpeg" not in r_front.model_dump()
