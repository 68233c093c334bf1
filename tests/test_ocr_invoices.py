"""The real PaddleOCR on the committed medical-invoice fixtures (fixtures/invoices):
field accuracy per variant, every invoice classified as one, and the CLI's JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import FIXTURES, ROOT, rate, read_accuracy

from backoffice.accuracy import AccuracyTable, load_truth
from backoffice.settings import get_settings
from domain.fields import FIELDS
from domain.models import DocType

pytestmark = [pytest.mark.ocr, pytest.mark.slow]
INVOICES = FIXTURES / "invoices"


@pytest.fixture(scope="module")
def invoice_accuracy(ocr_engine) -> AccuracyTable:
    return read_accuracy(INVOICES, ocr_engine)


def test_clean_invoices_at_least_97_percent(invoice_accuracy):
    print({g: f"{h}/{t}" for g, (h, t) in invoice_accuracy.by_group().items()})
    assert rate(invoice_accuracy, "clean") >= 0.97, invoice_accuracy.misses


def test_photo_invoices_at_least_93_percent(invoice_accuracy):
    assert rate(invoice_accuracy, "photo") >= 0.93, invoice_accuracy.misses


def test_every_invoice_classified(invoice_accuracy):
    for group, hits in invoice_accuracy.type_hits.items():
        assert hits == invoice_accuracy.type_total[group], group


def test_cli_extract_json(tmp_path):
    truth = load_truth(INVOICES / "truth.jsonl")
    key = "clean/m2028_0000.jpg"
    env = {**os.environ, "BACKOFFICE_DATA_DIR": str(get_settings().data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "extract", str(INVOICES / key), "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout.splitlines()[0])
    assert record["doc_type"] == "medical_invoice" and record["error"] is None
    assert list(record["fields"]) == list(FIELDS[DocType.MEDICAL_INVOICE])
    expected = truth[key]["fields"]
    read = {k: v["value"] for k, v in record["fields"].items()}
    # the patient's name is personal: the CLI masks it
    for name in ("invoice_code", "invoice_number", "invoice_date", "total_amount", "items"):
        assert read[name] == expected[name], name
    assert any(c["rule"].startswith("invoice.") for c in record["checks"])
