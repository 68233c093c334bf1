"""Extraction benchmark: field accuracy per variant (and layout) and per field, and time
per page against a bare PaddleOCR `predict` on the same images in the same run.

    .venv/bin/python bench/bench_extract.py                          # ID cards
    .venv/bin/python bench/bench_extract.py --fixtures fixtures/claims  # claim forms

Generate larger unseen sets first with
    .venv/bin/python -m fixtures.generator idcards --out var/bench/idcards --count 50 --seed 7
    .venv/bin/python -m fixtures.generator claims --out var/bench/claims --count 30 --seed 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backoffice.settings import apply_environment

settings = apply_environment()

from backoffice.accuracy import AccuracyTable, load_truth, pct, split_key
from backoffice.assess import assess
from backoffice.processing import limits_from
from backoffice.runtime import get_recognizer
from ocr.decode import decode
from ocr.pipeline import read_document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=ROOT / "fixtures" / "idcards")
    parser.add_argument("--repeat", type=int, default=1, help="timing repetitions per image")
    parser.add_argument("--misses", action="store_true", help="print every wrong field")
    parser.add_argument("--no-bare", action="store_true",
                        help="accuracy and pipeline time only (half the run on a big set)")
    args = parser.parse_args()

    truth = load_truth(args.fixtures / "truth.jsonl")
    t0 = time.perf_counter()
    engine = get_recognizer(settings)
    print(f"engine built in {time.perf_counter() - t0:.1f} s")
    limits = limits_from(settings)
    items = sorted(truth.items())
    # Warm both paths up so neither pays the first-call cost.
    first = (args.fixtures / split_key(items[0][0])[0]).read_bytes()
    if not args.no_bare:
        engine.predict_raw(decode(first)[0].image)
    read_document(first, engine, limits)

    acc = AccuracyTable()
    bare_t: dict[str, list[float]] = defaultdict(list)
    pipe_t: dict[str, list[float]] = defaultdict(list)
    passes: dict[str, list[int]] = defaultdict(list)
    for key, item in items:
        rel, page = split_key(key)
        data = (args.fixtures / rel).read_bytes()
        image = decode(data)[page].image
        variant = item.get("variant", "all")
        if item.get("layout"):
            item = {**item, "layout": f"{item['layout']}/{variant}"}
        for _ in range(args.repeat):
            if not args.no_bare:
                t = time.perf_counter()
                engine.predict_raw(image)
                bare_t[variant].append(time.perf_counter() - t)
            t = time.perf_counter()
            readings = read_document(data, engine, limits)
            for r in readings:
                assess(r, settings)
            # A multi-page file is read whole; its time is shared by its pages.
            pipe_t[variant].append((time.perf_counter() - t) / len(readings))
        reading = readings[page]
        passes[variant].append(reading.ocr_passes)
        acc.add(item, reading.doc_type.value, {k: f.value for k, f in reading.fields.items()})

    print("\nField exact match per group (variant, or layout/variant)")
    print(f"{'variant':10} {'fields':>10} {'accuracy':>9} {'doc type':>9}")
    for group, (hits, total) in acc.by_group().items():
        print(f"{group:10} {hits:>4}/{total:<5} {pct(hits, total):>9} "
              f"{acc.type_hits[group]:>4}/{acc.type_total[group]}")
    print("\nPer field")
    for (group, field), (hits, total) in acc.by_field().items():
        print(f"  {group:8} {field:18} {hits:>3}/{total:<3} {pct(hits, total):>7}")
    print("\nTime per document (median seconds; ratio = pipeline / bare predict)")
    print(f"{'variant':10} {'bare':>7} {'pipeline':>9} {'ratio':>6} {'mean passes':>12}")
    all_b, all_p = [], []
    nan = float("nan")
    for variant in sorted(pipe_t):
        b = statistics.median(bare_t[variant]) if bare_t[variant] else nan
        p = statistics.median(pipe_t[variant])
        all_b += bare_t[variant]
        all_p += pipe_t[variant]
        print(f"{variant:10} {b:7.3f} {p:9.3f} {p / b:6.2f} "
              f"{statistics.mean(passes[variant]):12.2f}")
    b = statistics.median(all_b) if all_b else nan
    p = statistics.median(all_p)
    total = sum(all_p) / sum(all_b) if all_b else nan
    print(f"{'all':10} {b:7.3f} {p:9.3f} {p / b:6.2f}   (sum: {total:.2f})")
    if args.misses:
        for miss in acc.misses:
            print("  miss", miss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
