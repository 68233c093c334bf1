"""The real PaddleOCR on the committed claim-form fixtures: per layout, PDFs per page."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import FIXTURES, ROOT, rate, read_accuracy

from backoffice.accuracy import AccuracyTable, load_truth, split_key
from backoffice.settings import get_settings
from ocr.pipeline import read_document

pytestmark = [pytest.mark.ocr, pytest.mark.slow]
CLAIMS = FIXTURES / "claims"


@pytest.fixture(scope="module")
def claim_accuracy(ocr_engine) -> AccuracyTable:
    return read_accuracy(CLAIMS, ocr_engine)


def test_clean_forms_at_least_97_percent(claim_accuracy):
    assert rate(claim_accuracy, "clean") >= 0.97, claim_accuracy.misses


def test_photo_forms_at_least_93_percent(claim_accuracy):
    print({g: f"{h}/{t}" for g, (h, t) in claim_accuracy.by_group().items()})
    assert rate(claim_accuracy, "photo") >= 0.93, claim_accuracy.misses


def test_pdf_pages_at_least_90_percent(claim_accuracy):
    assert rate(claim_accuracy, "pdf") >= 0.90, claim_accuracy.misses


def test_every_form_classified(claim_accuracy):
    for group, hits in claim_accuracy.type_hits.items():
        assert hits == claim_accuracy.type_total[group], group


def test_cli_reads_each_pdf_page(tmp_path):
    env = {**os.environ, "BACKOFFICE_DATA_DIR": str(get_settings().data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "extract", str(CLAIMS / "multi.pdf"), "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["page"] for r in records] == [1, 2, 3]
    assert all(r["doc_type"] == "claim_form" and r["error"] is None for r in records)
    truth = load_truth(CLAIMS / "truth.jsonl")
    policies = [truth[f"multi.pdf#page={p}"]["fields"]["policy_number"] for p in (1, 2, 3)]
    assert [r["fields"]["policy_number"]["value"] for r in records] == policies


def test_ctc_decoding_without_the_copy_reads_the_same(ocr_engine):
    """The engine's own CTC decoding gives PaddleX's texts and scores on a whole page."""
    import numpy as np

    from ocr.decode import decode

    image = decode((CLAIMS / "clean" / "c2026_0000.jpg").read_bytes())[0].image
    crops = [ocr_engine.crop(image, p) for p in ocr_engine.detect(image)]
    predictor = ocr_engine._rec.paddlex_predictor
    ours = ocr_engine.read_crops(crops)
    predictor.post_op = predictor.post_op.inner
    try:
        theirs = ocr_engine.read_crops(crops)
    finally:
        from ocr.engine import _CtcDecode

        predictor.post_op = _CtcDecode(predictor.post_op)
    assert len(ours) == len(crops) > 30
    assert [t for t, _ in ours] == [t for t, _ in theirs]
    assert np.allclose([s for _, s in ours], [s for _, s in theirs])
    # Each character's probability is kept, for every line; the line's score is their mean.
    lines = ocr_engine.read_lines(crops)
    kept = [ln for ln in lines if ln.text]
    assert all(len(ln.char_probs) == len(ln.text) for ln in kept)
    assert np.allclose([np.mean(ln.char_probs) for ln in kept], [ln.score for ln in kept],
                       atol=1e-4)


@pytest.mark.parametrize("turn", [1, 3])
def test_a_form_photographed_turned_a_quarter_reads_as_upright(ocr_engine, turn):
    """The lines of a page turned 90 degrees are vertical: each is cropped along its own
    axis (a crop across it read nothing), so the form reads as it does upright."""
    import cv2
    import numpy as np

    truth = load_truth(CLAIMS / "truth.jsonl")
    key, item = next((k, v) for k, v in sorted(truth.items()) if v["variant"] == "clean")
    image = cv2.imread(str(CLAIMS / split_key(key)[0]))
    turned = np.ascontiguousarray(np.rot90(image, turn))
    _, data = cv2.imencode(".png", turned)
    reading = read_document(data.tobytes(), ocr_engine)[0]
    assert reading.doc_type.value == "claim_form"
    right = sum(reading.fields[f].value == v for f, v in item["fields"].items())
    assert right >= 0.9 * len(item["fields"]), (right, len(item["fields"]))
