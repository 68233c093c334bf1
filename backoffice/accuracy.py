"""Field accuracy against ground truth (fixtures' truth.jsonl), per variant and field."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any


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

    def add(self, truth: dict[str, Any], doc_type: str | None,
            values: dict[str, str | None]) -> None:
        variant = truth.get("variant", "all")
        group = truth.get("layout") or variant
        self.type_total[group] += 1
        if doc_type == truth["doc_type"]:
            self.type_hits[group] += 1
        for field, want in truth["fields"].items():
            got = values.get(field) if doc_type == truth["doc_type"] else None
            self.total[(group, field)] += 1
            if got == want:
                self.hits[(group, field)] += 1
            else:
                self.misses.append({"file": truth["file"], "field": field, "want": want,
                                    "got": got})

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
