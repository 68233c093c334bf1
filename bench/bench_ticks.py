"""Check boxes read from the pixels (`ocr.checkbox`), on every claim page of a generated
set: how often the ticked box the image shows is the one the truth holds, by the tick's
score, and field readings to fit the pixel curve of the calibration from.

The pipeline reads a tick from the pixels only when the recogniser did not read it; here
the pixels are read on every page with a row of options, so there are enough readings to
fit a curve. Each reading says whether the recogniser had read the tick itself
(``text_read``): the pages it missed are the harder ones, and their accuracy is printed
on its own.

    .venv/bin/python -m fixtures.generator claims --wide --out var/cal/wide-s704 --count 24 --seed 704
    .venv/bin/python bench/bench_ticks.py --fixtures var/cal/wide-s704 --out var/cal/ticks-s704.jsonl
    .venv/bin/python bench/fit_calibration.py var/cal/ticks-s7*.jsonl \\
        --merge-curves claim_form/choice@pixels,choice@pixels --command "..."
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backoffice.settings import apply_environment

settings = apply_environment()

from backoffice.accuracy import load_truth, split_key
from backoffice.processing import limits_from
from backoffice.runtime import get_recognizer
from domain.models import DocType
from ocr.checkbox import relationship_from_boxes
from ocr.decode import decode
from ocr.pipeline import read_page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, required=True,
                        help="a set made by `python -m fixtures.generator claims`")
    parser.add_argument("--out", type=Path, default=None,
                        help="write each tick read from the pixels as a field reading "
                        "(JSON Lines, source pixels) for bench/fit_calibration.py")
    args = parser.parse_args()
    truth = load_truth(args.fixtures / "truth.jsonl")
    engine = get_recognizer(settings)
    limits = limits_from(settings)
    seed = next(iter(truth.values()), {}).get("seed")
    records = []
    pages = Counter()
    for key, item in sorted(truth.items()):
        want = item.get("fields", {}).get("relationship")
        if item.get("doc_type") != DocType.CLAIM_FORM.value or not want:
            continue
        name, page = split_key(key)
        decoded = decode((args.fixtures / name).read_bytes(), limits)
        trace: dict = {}
        reading = read_page(decoded[page].image, engine, page=page, risk=False, trace=trace)
        pages["claim pages"] += 1
        if reading.doc_type is not DocType.CLAIM_FORM:
            continue
        field = relationship_from_boxes(trace["image"], trace["lines"])
        if field is None:
            pages["no tick decided by the pixels"] += 1
            continue
        own = reading.fields.get("relationship")
        text_read = bool(own and own.value and own.ocr_confidence is not None)
        records.append({
            "doc_type": DocType.CLAIM_FORM.value, "tier": item.get("variant", "?"),
            "field": "relationship", "confidence": field.confidence,
            "ocr_confidence": field.confidence, "corrected": False, "source": "pixels",
            "correct": field.value == want, "text_read": text_read, "file": key,
            "seed": item.get("seed", seed)})
    print(f"{pages['claim pages']} claim pages with a relationship in the truth; "
          f"{len(records)} ticks read from the pixels, "
          f"{pages['no tick decided by the pixels']} rows undecided")
    print(f"{'readings':24s} {'count':>6s} {'wrong':>6s}")
    for label, chosen in (("all", records),
                          ("recogniser read it too", [r for r in records if r["text_read"]]),
                          ("recogniser missed it", [r for r in records if not r["text_read"]]),
                          ("score < 0.9", [r for r in records if r["ocr_confidence"] < 0.9])):
        print(f"{label:24s} {len(chosen):6d} {sum(not r['correct'] for r in chosen):6d}")
    for r in records:
        if not r["correct"]:
            print(f"  wrong: {r['file']} score {r['ocr_confidence']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                            encoding="utf-8")
        print(f"{len(records)} readings written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
