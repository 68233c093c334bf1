"""Field accuracy against ground truth (fixtures' truth.jsonl), per variant and field."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

from domain.models import ExtractedField
from ocr.around_labels import NOTE as AROUND_LABEL_NOTE
from ocr.calibration import reading_source
from ocr.lexicon import LEXICON_NOTE, PLACE_NOTE

#: The notes of a reading a benchmark's field records keep, by a short tag: how a
#: value was weighed or found (never a value: change notes name characters).
_TAGGED_NOTES = {"lexicon": LEXICON_NOTE, "around_label": AROUND_LABEL_NOTE,
                 "near_county": PLACE_NOTE}


def load_truth(path: Path) -> dict[str, dict[str, Any]]:
    """truth.jsonl lines keyed by their `file` (relative to the truth file's folder);
    a page of a multi-page file is keyed `file#page=N` (N from 1)."""
    truth = {}
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            key = item["file"] if not item.get("page") else f"{item['file']}#page={item['page']}"
            truth[key] = item
    return truth


def split_key(key: str) -> tuple[str, int]:
    """(file, zero-based page) of a truth key."""
    if "#page=" in key:
        name, page = key.split("#page=")
        return name, int(page) - 1
    return key, 0


class AccuracyTable:
    """Exact-match counts by (variant, field) and by (variant, doc_type)."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], int] = defaultdict(int)
        self.total: dict[tuple[str, str], int] = defaultdict(int)
        self.type_hits: dict[str, int] = defaultdict(int)
        self.type_total: dict[str, int] = defaultdict(int)
        self.misses: list[dict[str, Any]] = []
        # fields a person could read (the generator's "legibility" record), and the
        # documents whose every field is: (hits, total) per group
        self.legible: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.legible_docs: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, truth: dict[str, Any], doc_type: str | None,
            values: dict[str, str | None]) -> None:
        variant = truth.get("variant", "all")
        group = truth.get("layout") or variant
        self.type_total[group] += 1
        if doc_type == truth["doc_type"]:
            self.type_hits[group] += 1
        legibility = truth.get("legibility")
        whole = legibility is not None and all(
            legibility.get(f, {}).get("legible") for f in truth["fields"])
        for field, want in truth["fields"].items():
            got = values.get(field) if doc_type == truth["doc_type"] else None
            self.total[(group, field)] += 1
            right = got == want
            if right:
                self.hits[(group, field)] += 1
            else:
                miss = {"file": truth["file"], "field": field, "want": want, "got": got}
                if legibility is not None:
                    miss["legible"] = bool(legibility.get(field, {}).get("legible"))
                self.misses.append(miss)
            if legibility is not None and legibility.get(field, {}).get("legible"):
                self.legible[group][0] += right
                self.legible[group][1] += 1
            if whole:
                self.legible_docs[group][0] += right
                self.legible_docs[group][1] += 1

    def by_group(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (group, _field), n in self.total.items():
            out[group][1] += n
            out[group][0] += self.hits[(group, _field)]
        return {g: (h, t) for g, (h, t) in sorted(out.items())}

    def by_field(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {k: (self.hits[k], n) for k, n in sorted(self.total.items())}

    def overall(self) -> tuple[int, int]:
        return sum(self.hits.values()), sum(self.total.values())


def pct(hits: int, total: int) -> str:
    return f"{100.0 * hits / total:.1f}%" if total else "-"


#: Confidence bins of the reliability table.
RELIABILITY_BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0000001)


class RouteTable:
    """What goes straight through, and how often it is wrong: per document type and
    tier, the share of documents approved without a person and the field error among
    them; and the reliability of field confidences (bins, count, accuracy, expected
    calibration error).

    A straight-through document of the wrong type counts every true field as wrong.
    """

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.fields: list[dict[str, Any]] = []

    def add(self, truth: dict[str, Any], doc_type: str | None, decision: str,
            fields: Mapping[str, ExtractedField | tuple]) -> None:
        """``fields``: name -> the field as read (an ExtractedField), or a tuple (value,
        confidence[, ocr_confidence[, corrected]]).

        Each field's record keeps both scores: ``confidence`` (as routed: calibrated) and
        ``ocr_confidence`` (the recogniser's, before calibration: what a calibration is
        fitted on; None when no value was read), ``corrected`` (a repair or decoder
        changed the value), ``source`` (``pixels``: read another way than by the
        recogniser, calibrated by curves of its own; None: by the recogniser) and
        ``notes`` (how a reading was weighed or found, :data:`_TAGGED_NOTES`)."""
        tier = truth.get("variant", "all")
        right_type = doc_type == truth["doc_type"]
        wrong = 0
        for name, want in truth["fields"].items():
            got, confidence, raw, corrected = (
                _reading(fields.get(name)) if right_type else (None, 0.0, None, False))
            field = fields.get(name) if right_type else None
            source = (reading_source(field.corrections)
                      if isinstance(field, ExtractedField) and field.value is not None else None)
            notes = ([tag for tag, note in _TAGGED_NOTES.items() if note in field.corrections]
                     if isinstance(field, ExtractedField) and field.value is not None else [])
            ok = got == want
            wrong += not ok
            self.fields.append({"doc_type": truth["doc_type"], "tier": tier, "field": name,
                                "confidence": confidence, "ocr_confidence": raw,
                                "corrected": corrected, "source": source, "notes": notes,
                                "correct": ok,
                                "straight_through": decision == "approved",
                                "file": truth["file"], "seed": truth.get("seed")})
        self.docs.append({"doc_type": truth["doc_type"], "tier": tier, "decision": decision,
                          "fields": len(truth["fields"]), "wrong": wrong,
                          "file": truth["file"]})

    def by_type_and_tier(self) -> list[dict[str, Any]]:
        """Rows: doc type, tier, documents, field accuracy, straight-through share, fields
        and wrong fields among the straight-through documents."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for d in self.docs:
            groups[(d["doc_type"], d["tier"])].append(d)
        rows = []
        for (doc_type, tier), docs in sorted(groups.items()):
            rows.append(_route_row(doc_type, tier, docs))
        for doc_type in sorted({d["doc_type"] for d in self.docs}):
            rows.append(_route_row(doc_type, "all", [d for d in self.docs
                                                     if d["doc_type"] == doc_type]))
        return rows

    def reliability(self, fields: list[dict[str, Any]] | None = None,
                    key: str = "confidence") -> tuple[list[dict[str, Any]], float]:
        """Bins of field confidence: count, mean confidence, accuracy; and the expected
        calibration error (count-weighted |accuracy - confidence|). ``key``: which score,
        ``confidence`` (as routed) or ``ocr_confidence`` (before calibration; a field
        without a value counts 0, as it does calibrated)."""
        fields = self.fields if fields is None else fields
        score = [(f, f.get(key) or 0.0) for f in fields]
        bins = []
        ece = 0.0
        for lo, hi in pairwise(RELIABILITY_BINS):
            inside = [f for f, s in score if lo <= s < hi]
            if not inside:
                continue
            conf = sum(s for f, s in score if lo <= s < hi) / len(inside)
            acc = sum(f["correct"] for f in inside) / len(inside)
            bins.append({"bin": f"[{lo:.3f}, {min(hi, 1.0):.3f}{']' if hi > 1 else ')'}",
                         "count": len(inside), "confidence": conf, "accuracy": acc})
            ece += len(inside) * abs(acc - conf)
        return bins, (ece / len(fields) if fields else 0.0)


def _reading(field: ExtractedField | tuple | None) -> tuple[str | None, float, float | None, bool]:
    """(value, confidence, score before calibration or None, corrected) of a field."""
    if field is None:
        return None, 0.0, None, False
    if isinstance(field, ExtractedField):
        raw = field.ocr_confidence if field.ocr_confidence is not None else (
            field.confidence if field.value is not None else None)
        return field.value, float(field.confidence), raw, bool(field.corrections)
    value, confidence, *rest = field
    raw = rest[0] if rest else (confidence if value is not None else None)
    corrected = bool(rest[1]) if len(rest) > 1 else False
    return value, float(confidence), None if raw is None else float(raw), corrected


def _route_row(doc_type: str, tier: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    fields = sum(d["fields"] for d in docs)
    wrong = sum(d["wrong"] for d in docs)
    through = [d for d in docs if d["decision"] == "approved"]
    st_fields = sum(d["fields"] for d in through)
    st_wrong = sum(d["wrong"] for d in through)
    return {"doc_type": doc_type, "tier": tier, "documents": len(docs),
            "field_accuracy": (fields - wrong) / fields if fields else None,
            "straight_through": len(through) / len(docs) if docs else None,
            "st_fields": st_fields, "st_wrong": st_wrong,
            "st_field_error": st_wrong / st_fields if st_fields else None}
