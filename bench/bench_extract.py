"""Extraction benchmark: field accuracy per variant (and layout) and per field, what goes
straight through and how often it is wrong, the reliability of the confidences, and time
per page against a bare PaddleOCR `predict` on the same images in the same run.

The route is the flow's own (`backoffice.assess.assess`, the settings' thresholds); the
cross-system rules are skipped (no downstream systems), as in a run without them. With
``--systems``, the sandbox core and claims systems are started, seeded from the set's
ground truth the way a bank's records hold its people (each ID card's person a customer
of the core system; each claim form's policy and insured person, name and identity
number, in the claims system), and each page is checked against them as the flow checks
it when ``BACKOFFICE_CORE_URL`` and ``_CLAIMS_URL`` are set: a name the records hold
and agree with is vouched for (``backoffice.assess.on_record_vouched``).

    .venv/bin/python bench/bench_extract.py                          # ID cards
    .venv/bin/python bench/bench_extract.py --fixtures fixtures/claims  # claim forms

Generate larger unseen sets first with
    .venv/bin/python -m fixtures.generator idcards --out var/bench/idcards --count 50 --seed 7
    .venv/bin/python -m fixtures.generator claims --out var/bench/claims --count 30 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backoffice.settings import apply_environment

settings = apply_environment()

from backoffice.accuracy import AccuracyTable, RouteTable, load_truth, pct, split_key
from backoffice.assess import assess, route_with
from backoffice.processing import limits_from
from backoffice.runtime import get_recognizer
from ocr.calibration import table as calibration_table
from ocr.decode import decode
from ocr.pipeline import read_document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=ROOT / "fixtures" / "idcards")
    parser.add_argument("--repeat", type=int, default=1, help="timing repetitions per image")
    parser.add_argument("--misses", action="store_true", help="print every wrong field")
    parser.add_argument("--no-bare", action="store_true",
                        help="accuracy and pipeline time only (half the run on a big set)")
    parser.add_argument("--fields-out", type=Path, default=None,
                        help="write every field read (type, tier, field, confidence, "
                        "ocr_confidence before calibration, corrected, correct, straight "
                        "through) as JSON Lines, e.g. to fit a calibration "
                        "(bench/fit_calibration.py)")
    parser.add_argument("--reasons", action="store_true",
                        help="print why each document that does not go straight through "
                        "goes to a person (the route's reasons: field and rule names, "
                        "never values), and a count of those reasons")
    parser.add_argument("--systems", action="store_true",
                        help="check each page against the sandbox core and claims systems, "
                        "seeded from the set's ground truth (a bank's records of its people)")
    args = parser.parse_args()
    with _systems(args.fixtures) if args.systems else contextlib.nullcontext() as lookup:
        return _run(args, lookup)


@contextlib.contextmanager
def _systems(fixtures: Path):
    """The sandbox systems seeded from the set's truth, for the duration; their lookup."""
    from backoffice.sandbox.runner import run_sandbox

    with tempfile.TemporaryDirectory(prefix="bench-systems-") as tmp:
        seeds = Path(tmp) / "fixtures"
        for sub in ("idcards", "claims"):  # each takes its own document type's records
            (seeds / sub).mkdir(parents=True)
            shutil.copy(fixtures / "truth.jsonl", seeds / sub / "truth.jsonl")
        with run_sandbox(Path(tmp) / "sandbox", fixtures=seeds) as sandbox:
            print(f"systems of record: core {sandbox.core.url}, claims {sandbox.claims.url}")
            yield sandbox.lookup()


def _run(args, lookup) -> int:

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
    routes = RouteTable()
    routes_alone = RouteTable()  # without the systems of record (--systems)
    bare_t: dict[str, list[float]] = defaultdict(list)
    pipe_t: dict[str, list[float]] = defaultdict(list)
    passes: dict[str, list[int]] = defaultdict(list)
    kept: list[tuple] = []  # (truth, reading, checks): routed again per target error
    why: dict[str, list[str]] = {}  # the route's reasons of each document not approved
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
            assessments = [assess(r, settings, lookup=lookup) for r in readings]
            alone = ([assess(r, settings) for r in readings] if lookup is not None
                     else assessments)
            # A multi-page file is read whole; its time is shared by its pages.
            pipe_t[variant].append((time.perf_counter() - t) / len(readings))
        reading = readings[page]
        passes[variant].append(reading.ocr_passes)
        acc.add(item, reading.doc_type.value, {k: f.value for k, f in reading.fields.items()})
        routes.add(item, reading.doc_type.value, assessments[page].decision.status,
                   reading.fields)
        routes_alone.add(item, reading.doc_type.value, alone[page].decision.status,
                         reading.fields)
        kept.append((item, reading, assessments[page].checks))
        if assessments[page].decision.status != "approved":
            why[key] = [r.text for r in assessments[page].decision.reasons]

    print("\nField exact match per group (variant, or layout/variant)")
    print(f"{'variant':10} {'fields':>10} {'accuracy':>9} {'doc type':>9}")
    for group, (hits, total) in acc.by_group().items():
        print(f"{group:10} {hits:>4}/{total:<5} {pct(hits, total):>9} "
              f"{acc.type_hits[group]:>4}/{acc.type_total[group]}")
    if acc.legible:
        print("\nFields a person can read (the generator's legibility record, "
              "fixtures/generator/legibility.py)")
        print(f"{'variant':10} {'legible fields':>15} {'accuracy':>9} "
              f"{'fields of wholly legible images':>32} {'accuracy':>9}")
        for group, (hits, total) in sorted(acc.legible.items()):
            dh, dt = acc.legible_docs[group]
            print(f"{group:10} {hits:>6}/{total:<8} {pct(hits, total):>9} "
                  f"{dh:>15}/{dt:<16} {pct(dh, dt):>9}")
    print("\nPer field")
    for (group, field), (hits, total) in acc.by_field().items():
        print(f"  {group:8} {field:18} {hits:>3}/{total:<3} {pct(hits, total):>7}")
    if lookup is not None:
        print("\nWith the documents alone (no systems of record):", end="")
        print_straight(routes_alone)
        print("\nChecked against the systems of record (--systems):", end="")
    print_routes(routes)
    print_targets(kept)
    if args.fields_out:
        args.fields_out.parent.mkdir(parents=True, exist_ok=True)
        args.fields_out.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n"
                                           for f in routes.fields), "utf-8")
        print(f"\n{len(routes.fields)} field readings written to {args.fields_out}")
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
    if args.reasons:
        print_reasons(why)
    return 0


def print_reasons(why: dict[str, list[str]]) -> None:
    """Each document not approved with its route's reasons, then how often each reason
    (its text up to the first colon, e.g. the field's name) occurs."""
    print("\nWhy documents go to a person (route reasons)")
    counts: Counter[str] = Counter()
    for key, reasons in sorted(why.items()):
        print(f"  {key}: " + " | ".join(reasons))
        counts.update({r.split(":")[0] for r in reasons})
    for reason, n in counts.most_common():
        print(f"  {n:4}  {reason}")


def _p(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def print_straight(routes: RouteTable) -> None:
    print("\nStraight through (no person) and its field error, per document type and tier")
    print(f"{'type':15} {'tier':8} {'docs':>5} {'fields ok':>9} {'straight':>9} "
          f"{'st fields':>9} {'st wrong':>8} {'st error':>8}")
    for r in routes.by_type_and_tier():
        print(f"{r['doc_type']:15} {r['tier']:8} {r['documents']:>5} "
              f"{_p(r['field_accuracy']):>9} {_p(r['straight_through']):>9} "
              f"{r['st_fields']:>9} {r['st_wrong']:>8} {_p(r['st_field_error'], 2):>8}")


def print_routes(routes: RouteTable) -> None:
    target = settings.review_target_error
    print("\nRouting thresholds: " + (
        f"review_target_error {target} (a page's mean of 1 - confidence at most {target}, "
        f"no field below {1 - 10 * target:.4f})" if target
        is not None else f"fields {settings.review_min_field_confidence}, ID numbers "
        f"{settings.review_min_id_number_confidence}"))
    print_straight(routes)
    provenance = calibration_table().provenance
    print(f"\nCalibration table: fitted {provenance.get('generated', '-')} on seeds "
          f"{provenance.get('training_seeds', '-')}, read with "
          f"{str(provenance.get('read_with_commit') or '-')[:10]}")
    for merged in provenance.get("merged", []):
        print(f"  {', '.join(merged.get('types', []))} curves refitted {merged.get('generated', '-')} "
              f"on seeds {merged.get('training_seeds', '-')}, read with "
              f"{str(merged.get('read_with_commit') or '-')[:10]}")
    for key, title in (("ocr_confidence", "before calibration (the recogniser's score)"),
                       ("confidence", "calibrated (as routed)")):
        bins, ece = routes.reliability(key=key)
        print(f"\nReliability of field confidence, {title}, all fields")
        print(f"{'bin':18} {'count':>6} {'mean conf':>9} {'accuracy':>9}")
        for b in bins:
            print(f"{b['bin']:18} {b['count']:>6} {b['confidence']:9.4f} {b['accuracy']:9.4f}")
        print(f"expected calibration error: {ece:.4f}")
        confident = [f for f in routes.fields if (f.get(key) or 0.0) >= 0.9]
        if confident:
            wrong = sum(not f["correct"] for f in confident)
            print(f"fields with {key} >= 0.90: {len(confident)}, wrong {wrong} "
                  f"({_p(wrong / len(confident), 2)})")
    print("\nExpected calibration error per document type: before -> calibrated")
    for doc_type in sorted({f["doc_type"] for f in routes.fields}):
        subset = [f for f in routes.fields if f["doc_type"] == doc_type]
        before = routes.reliability(subset, key="ocr_confidence")[1]
        after = routes.reliability(subset)[1]
        print(f"  {doc_type:15} {len(subset):>6} fields  {before:.4f} -> {after:.4f}")


TARGETS = (0.02, 0.01, 0.005, 0.002, 0.001)


def print_targets(kept: list[tuple]) -> None:
    """The same readings routed again with each target error (the routing code's own
    `route_with`, the rules' results as they were): straight-through share and field
    error among the straight-through documents, per document type, over the clean and
    photo tiers (what the zero-touch goal is about) and over the hard tier."""
    print("\nStraight through per target error (BACKOFFICE_REVIEW_TARGET_ERROR), same readings")
    print(f"{'type':15} {'tiers':12} {'target':>7} {'docs':>5} {'straight':>9} "
          f"{'st fields':>9} {'st wrong':>8} {'st error':>8}")
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for item, reading, checks in kept:
        tiers = "hard" if item.get("variant") == "hard" else "clean+photo"
        groups[(item["doc_type"], tiers)].append((item, reading, checks))
    for (doc_type, tiers), docs in sorted(groups.items()):
        for target in TARGETS:
            routed = settings.model_copy(update={"review_target_error": target})
            straight = fields = wrong = 0
            for item, reading, checks in docs:
                decision = route_with(routed, reading.doc_type, reading.fields, checks,
                                      reading.quality, reading.risk)
                if decision.status != "approved":
                    continue
                straight += 1
                right_type = reading.doc_type.value == item["doc_type"]
                for name, want in item["fields"].items():
                    got = reading.fields.get(name)
                    fields += 1
                    wrong += not (right_type and got is not None and got.value == want)
            print(f"{doc_type:15} {tiers:12} {target:>7} {len(docs):>5} "
                  f"{_p(straight / len(docs)):>9} {fields:>9} {wrong:>8} "
                  f"{_p(wrong / fields if fields else None, 2):>8}")


if __name__ == "__main__":
    raise SystemExit(main())
