"""Fit the confidence calibration table (ocr/calibration.json) from benchmark field files.

Each field file is what ``bench/bench_extract.py --fields-out FILE`` writes (JSON Lines:
doc_type, tier, field, confidence, ocr_confidence, correct, ...). The fit is on the raw
score (``ocr_confidence``: the recogniser's, before any calibration): one curve per
field family of each document type (``claim_form/name``) and one per family over all
types (the fallback), each from at least ``--min-count`` readings
(``ocr.calibration.curve_keys``). Fields not found (no value) are left out: they are
not calibrated.

Each curve is an isotonic (pool-adjacent-violators) fit of "right" on the raw score.
A block's share is taken as (right + a) / (n + 2a) with a = ``--prior`` (0.5, the
Jeffreys prior): a few dozen readings all right do not make a certainty. The curve is
then thinned to at most ``--max-points`` breakpoints (the largest deviation first).

    .venv/bin/python bench/fit_calibration.py var/cal/out/train-*.jsonl \\
        --command "python -m fixtures.generator idcards --out var/cal/id-s501 --count 40 --seed 501"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocr.calibration import curve_keys

DEFAULT_OUT = ROOT / "ocr" / "calibration.json"


def isotonic(x: Sequence[float], y: Sequence[float], w: Sequence[float] | None = None
             ) -> list[tuple[float, float, float, float]]:
    """Weighted isotonic (non-decreasing) regression of ``y`` on ``x`` by pool-adjacent
    violators. Returns the blocks, ascending: (x_lo, x_hi, weighted mean of y, weight).
    Equal x values always share a block.

    >>> [(lo, hi, round(m, 3), n) for lo, hi, m, n in isotonic([1, 2, 3, 4], [0, 1, 0, 1])]
    [(1.0, 1.0, 0.0, 1.0), (2.0, 3.0, 0.5, 2.0), (4.0, 4.0, 1.0, 1.0)]
    """
    xs = np.asarray(x, float)
    ys = np.asarray(y, float)
    ws = np.ones_like(xs) if w is None else np.asarray(w, float)
    if not (len(xs) == len(ys) == len(ws)):
        raise ValueError("x, y and w must have the same length")
    order = np.argsort(xs, kind="stable")
    xs, ys, ws = xs[order], ys[order], ws[order]
    # Blocks as [x_lo, x_hi, sum of w*y, sum of w]; equal x pooled first.
    blocks: list[list[float]] = []
    for xi, yi, wi in zip(xs, ys, ws, strict=True):
        if blocks and blocks[-1][1] == xi:
            blocks[-1][2] += wi * yi
            blocks[-1][3] += wi
        else:
            blocks.append([xi, xi, wi * yi, wi])
    stack: list[list[float]] = []
    for b in blocks:
        stack.append(b)
        while len(stack) > 1 and stack[-2][2] / stack[-2][3] >= stack[-1][2] / stack[-1][3]:
            top = stack.pop()
            prev = stack[-1]
            prev[1] = top[1]
            prev[2] += top[2]
            prev[3] += top[3]
    return [(float(lo), float(hi), float(s / n), float(n)) for lo, hi, s, n in stack]


def fit_curve(raw: Sequence[float], right: Sequence[bool], *, prior: float = 0.5,
              max_points: int = 32) -> tuple[list[float], list[float]]:
    """Breakpoints (x, y) of the monotone map raw score -> P(right)."""
    blocks = isotonic(raw, [float(r) for r in right])
    # Shrink each block's share towards 1/2 by its size, then pool again: a small block
    # can now sit above a larger one to its right.
    shrunk = [(lo, hi, (m * n + prior) / (n + 2 * prior), n) for lo, hi, m, n in blocks]
    centres = [(lo + hi) / 2 for lo, hi, _m, _n in shrunk]
    pooled = isotonic(centres, [m for *_, m, _n in shrunk], [n for *_, n in shrunk])
    # Each pooled block spans the raw scores of the blocks it took in.
    xs: list[float] = []
    ys: list[float] = []
    i = 0
    for _lo, _hi, m, _n in pooled:
        members = []
        while i < len(shrunk) and centres[i] <= _hi:
            members.append(shrunk[i])
            i += 1
        lo, hi = members[0][0], members[-1][1]
        xs.append(lo)
        ys.append(m)
        if hi > lo:
            xs.append(hi)
            ys.append(m)
    return thin(xs, ys, max_points)


def thin(xs: Sequence[float], ys: Sequence[float], max_points: int,
         tolerance: float = 1e-4) -> tuple[list[float], list[float]]:
    """At most ``max_points`` of the breakpoints, chosen greedily: the ends, then the one
    farthest (in y) from the curve through those kept, until all are within
    ``tolerance``. A subset of a monotone curve's breakpoints is monotone too."""
    x = np.asarray(xs, float)
    y = np.asarray(ys, float)
    if len(x) <= 2:
        return x.tolist(), y.tolist()
    keep = {0, len(x) - 1}
    while len(keep) < max_points:
        idx = sorted(keep)
        err = np.abs(y - np.interp(x, x[idx], y[idx]))
        err[idx] = -1.0
        worst = int(np.argmax(err))
        if err[worst] <= tolerance:
            break
        keep.add(worst)
    idx = sorted(keep)
    return [round(v, 6) for v in x[idx]], [round(v, 6) for v in y[idx]]


def read_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                records.append({**json.loads(line), "_source": str(path)})
    return records


def fit_table(records: list[dict[str, Any]], *, prior: float = 0.5, max_points: int = 32,
              min_count: int = 30) -> dict[str, Any]:
    """The table's curves and the readings behind each. Records without a raw score (no
    value read) are skipped; a curve needs ``min_count`` readings."""
    if records and not any("ocr_confidence" in r for r in records):
        raise ValueError("the field files hold no ocr_confidence (the raw score): write them "
                         "with the current bench/bench_extract.py --fields-out")
    groups: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for r in records:
        raw = r.get("ocr_confidence")
        if raw is None:
            continue
        keys = curve_keys(r["field"], r.get("doc_type"), r.get("source"))
        # A reading counts for the type it was read on and for its family, never for
        # another type's curve (a bank card's bank_name is not a claim form's).
        for key in {keys[0], keys[-1]} if keys else ():
            groups[key].append((float(raw), bool(r["correct"])))
    curves: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    for key in sorted(groups):
        pairs = groups[key]
        n, right = len(pairs), sum(ok for _r, ok in pairs)
        counts[key] = {"readings": n, "wrong": n - right}
        if n < min_count:
            counts[key]["fitted"] = False
            continue
        x, y = fit_curve([r for r, _ok in pairs], [ok for _r, ok in pairs],
                         prior=prior, max_points=max_points)
        curves[key] = {"x": x, "y": y}
    return {"curves": curves, "counts": counts}


def merge_types(existing: dict[str, Any], fitted: dict[str, Any], types: list[str]
                ) -> dict[str, Any]:
    """``existing`` with the curves of these document types taken from ``fitted`` (their
    provenance kept under ``provenance.merged``); every other curve is left as it was.

    >>> old = {"provenance": {"x": 1}, "curves": {"text": 1, "claim_form/text": 2}}
    >>> new = {"provenance": {"y": 2, "counts": {}}, "curves": {"text": 9, "bank_card/text": 3}}
    >>> merge_types(old, new, ["bank_card"])["curves"]
    {'bank_card/text': 3, 'claim_form/text': 2, 'text': 1}
    """
    prefixes = tuple(f"{t}/" for t in types)
    return _merge(existing, fitted, lambda k: k.startswith(prefixes), "types", types)


def merge_curves(existing: dict[str, Any], fitted: dict[str, Any], keys: list[str]
                 ) -> dict[str, Any]:
    """``existing`` with these curves taken from ``fitted`` (a source's own curves,
    ``claim_form/choice@pixels``, fitted on readings of their own); every other curve
    is left as it was.

    >>> old = {"provenance": {}, "curves": {"choice": 1, "choice@pixels": 2}}
    >>> new = {"provenance": {"counts": {}}, "curves": {"choice": 9, "choice@pixels": 3}}
    >>> merge_curves(old, new, ["choice@pixels"])["curves"]
    {'choice': 1, 'choice@pixels': 3}
    """
    return _merge(existing, fitted, lambda k: k in keys, "curves", keys)


def _merge(existing: dict[str, Any], fitted: dict[str, Any], chosen, what: str,
           names: list[str]) -> dict[str, Any]:
    curves = {k: v for k, v in existing["curves"].items() if not chosen(k)}
    curves.update({k: v for k, v in fitted["curves"].items() if chosen(k)})
    provenance = dict(existing["provenance"])
    merged = {k: v for k, v in fitted["provenance"].items() if k != "counts"}
    merged[what] = names
    merged["counts"] = {k: v for k, v in fitted["provenance"].get("counts", {}).items()
                        if chosen(k)}
    provenance["merged"] = [m for m in provenance.get("merged", [])
                            if not set(m.get(what, ())) & set(names)] + [merged]
    return {"provenance": provenance, "curves": dict(sorted(curves.items()))}


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("field_files", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--command", action="append", default=[],
                        help="a command that made the training data (generator, bench); "
                        "recorded in the provenance; repeat for each")
    parser.add_argument("--prior", type=float, default=0.5,
                        help="pseudo-readings right and wrong added to each block (0.5)")
    parser.add_argument("--max-points", type=int, default=32)
    parser.add_argument("--min-count", type=int, default=30,
                        help="fewest readings for a curve (fewer: that curve is left out)")
    parser.add_argument("--merge-types", default=None,
                        help="comma-separated document types: fit only their curves "
                        "(medical_invoice/text …) and merge them into the table at --out, "
                        "every other curve kept as it is (new types without refitting all)")
    parser.add_argument("--merge-curves", default=None,
                        help="comma-separated curve keys (claim_form/choice@pixels,"
                        "choice@pixels): fit only those and merge them into the table at "
                        "--out, every other curve kept as it is")
    parser.add_argument("--commit", default=None,
                        help="the commit the field files were read with (default: HEAD)")
    args = parser.parse_args(argv)

    records = read_records(args.field_files)
    fitted = fit_table(records, prior=args.prior, max_points=args.max_points,
                       min_count=args.min_count)
    seeds = Counter(r.get("seed") for r in records if r.get("seed") is not None)
    commit = args.commit or _git("rev-parse", "HEAD")
    # Reading code changed since that commit (the extractors, the pipeline) when fitting
    # in a working tree: the curves describe that code, not the commit alone.
    dirty = None if args.commit else (_git("diff", "--name-only", "HEAD", "--", "ocr",
                                           "domain") or "").split()
    table = {
        "provenance": {
            "generated": dt.date.today().isoformat(),
            "fit": "isotonic (pool-adjacent violators) of right on the raw score, block "
                   f"shares (right + {args.prior}) / (n + {2 * args.prior}), at most "
                   f"{args.max_points} breakpoints",
            "fit_command": "python bench/fit_calibration.py " + shlex.join(
                sys.argv[1:] if argv is None else argv),
            "data_commands": args.command,
            "field_files": [str(p) for p in args.field_files],
            "training_seeds": sorted(seeds),
            "read_with_commit": commit,
            "read_with_uncommitted_changes_to": dirty,
            "counts": fitted["counts"],
        },
        "curves": fitted["curves"],
    }
    if args.merge_types:
        table = merge_types(json.loads(args.out.read_text("utf-8")), table,
                            [t.strip() for t in args.merge_types.split(",") if t.strip()])
    elif args.merge_curves:
        table = merge_curves(json.loads(args.out.read_text("utf-8")), table,
                             [k.strip() for k in args.merge_curves.split(",") if k.strip()])
    args.out.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"{len(records)} readings from {len(args.field_files)} files -> {args.out}")
    for key, c in fitted["counts"].items():
        curve = fitted["curves"].get(key)
        shape = (f"{len(curve['x'])} points, P from {curve['y'][0]:.3f} to {curve['y'][-1]:.4f}"
                 if curve else "not fitted (too few readings)")
        print(f"  {key:22} {c['readings']:>6} readings, {c['wrong']:>4} wrong: {shape}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
