"""Claim-form extractor: `标签：值` lines read by a synonym table (layout-free).

The full geometric extractor (cells, label-above-value boxes) is the claim-form issue;
this one reads inline `label: value` lines, which every layout also contains.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from backoffice.models import ExtractedField, OcrLine

from ..layout import group_rows
from ..text import fold_chinese, parse_date, strip_spaces


@lru_cache(maxsize=1)
def synonyms() -> dict[str, list[str]]:
    """Field name -> printed labels, longest first (data, so a bank can extend it)."""
    data = json.loads(resources.files("ocr").joinpath("claim_labels.json").read_text("utf-8"))
    return {k: sorted(v, key=len, reverse=True) for k, v in data.items() if not k.startswith("_")}


def normalise(field: str, value: str) -> str | None:
    value = fold_chinese(value).strip(" :：")
    if field.endswith("_date"):
        return parse_date(value)
    if field in ("phone", "account_number"):
        digits = re.sub(r"\D", "", value)
        return digits or None
    if field == "claim_amount":
        m = re.search(r"\d[\d,，]*(\.\d{1,2})?", value.replace(" ", ""))
        if not m:
            return None
        return f"{float(m.group(0).replace(',', '').replace('，', '')):.2f}"
    if field in ("insured_id_number", "policy_number"):
        return re.sub(r"[^0-9A-Za-z\-]", "", value).upper() or None
    return strip_spaces(value) or None


def extract_claim_form(lines: list[OcrLine]) -> dict[str, ExtractedField]:
    out: dict[str, ExtractedField] = {}
    labels = synonyms()
    for row in group_rows(lines):
        text = strip_spaces(fold_chinese(row.text))
        for field, names in labels.items():
            if field in out:
                continue
            for label in names:
                m = re.search(re.escape(label) + r"[:：]?(.+?)(?=$)", text)
                if m:
                    value = normalise(field, m.group(1))
                    if value:
                        out[field] = ExtractedField(
                            value=value, confidence=round(row.confidence, 4),
                            boxes=[ln.polygon for ln in row.lines], raw=row.text)
                    break
    return out
