"""Benchmark of the fraud and risk signals (ocr/risk.py) on a generated risk set.

    python -m fixtures.generator risk --out var/bench/risk-s7301 --count 8 --seed 7301
    python bench/bench_risk.py --fixtures var/bench/risk-s7301

Prints, per signal and tier, precision and recall against the set's ground truth, the
false-alarm rate on genuine images (each signal, and any flag at all), how often the
temporary card is read as its own type, the portrait found on genuine fronts, the cost
of the signals per image (ms), and the ID-card end-to-end time with and without them.
Every image goes through the real reading pipeline (PaddleOCR): the signals are
computed on the type the page was classified as, as in production.

    python bench/bench_risk.py --fixtures var/risk/train-s11 --fit ocr/risk_model.json

    python bench/bench_risk.py --fixtures var/bench/risk-s7301 --negatives fixtures/claims \
        --negatives fixtures/bankcards --negatives fixtures/bad

adds the flags raised on pages that are no ID card at all (every image file under each
folder, by the type it was read as): none of them should be a photocopy or a recapture.

fits the model of each modelled signal (boosted decision stumps) on a training set (no OCR needed: the
features do not depend on the type) and writes it. Fit and report on different seeds.
``--fit-pages DIR`` (repeatable) adds every image under DIR (claim-form photos) as a
negative of the signals judged on such pages (recapture), counted with the genuine
cards' false alarms when the thresholds are chosen.

    python bench/bench_risk.py --fixtures var/bench/risk-s7403 --dump var/risk/dev7403.jsonl

``--dump`` also writes each image's reading and signals (JSON lines), to look at misses.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.models import DocType
from ocr.decode import Limits, decode
from ocr.preprocess import prepare
from ocr.risk import CARD_ONLY, MODELLED, measure

SIGNALS = ("photocopy", "recapture", "tampering", "portrait")
TIERS = ("clean", "photo", "hard")
#: Features each modelled signal weighs (ocr/risk.py measures them).
FEATURES = {
    "photocopy": ["chroma_std", "chroma_p95", "saturation", "background_texture",
                  "paper_white", "contrast", "black_lift", "peak_hi", "peak_chroma",
                  "ink_chroma_std", "ink_hue_spread", "noise_low", "flat_paper",
                  "corner_contrast", "surround_dark", "surround_flat", "ink_colour_share",
                  "ink_spread_p97", "ink_tint_p90", "ink_tint_share", "paper_tint",
                  "blue_cast", "peak_mid", "peak_hi_max", "frame_band"],
    "recapture": ["peak_hi", "peak_hi_max", "peak_mid", "peak_chroma", "contrast",
                  "black_lift", "blue_cast", "saturation", "background_texture",
                  "ink_chroma_std", "corner_contrast", "surround_dark", "surround_flat",
                  "ink_tint_share", "paper_tint", "frame_band", "flat_paper", "ink_tint_p90",
                  "chroma_std"],
    "tampering": ["smooth_strip", "smooth_depth", "block_anom", "block_phase", "noise_low",
                  "noise_high"],
}


def _truth(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "truth.jsonl").read_text("utf-8").splitlines()
            if line.strip()]


# --------------------------------------------------------------------------- fitting


def _best_split(x: np.ndarray, g: np.ndarray, h: np.ndarray, sel: np.ndarray, cuts,
                lam: float):
    """The split of the rows ``sel`` with the largest Newton gain: (gain, feature, cut)."""
    best = None
    gs, hs = g[sel], h[sel]
    gt, ht = gs.sum(), hs.sum()
    for j, cut in enumerate(cuts):
        left = (x[sel, j][:, None] <= cut[None, :]).astype(float)  # rows x cuts
        gl, hl = gs @ left, hs @ left
        gain = gl * gl / (hl + lam) + (gt - gl) ** 2 / (ht - hl + lam)
        k = int(np.argmax(gain))
        if best is None or gain[k] > best[0]:
            best = (float(gain[k]), j, float(cut[k]))
    return best


def _boost(x: np.ndarray, y: np.ndarray, names: list[str], rounds: int = 150,
           rate: float = 0.2, lam: float = 2.0, depth: int = 1) -> tuple[float, list[list]]:
    """Gradient-boosted decision stumps (``depth`` 2: trees of two levels, so that a
    feature can count in one kind of picture and not another) on the logistic loss
    (Newton steps), each class weighing half. Returns the bias and the entries
    ``[feature, threshold, value if <= threshold, value if above]`` (each value, in a
    tree of two levels, itself such an entry) whose sum is the log-odds."""
    n = len(y)
    pos = y.mean()
    sw = np.where(y == 1, 0.5 / max(pos, 1e-6), 0.5 / max(1 - pos, 1e-6))
    bias = 0.0
    f = np.zeros(n)
    stumps: list[list] = []
    cuts = [np.unique(np.quantile(x[:, j], np.linspace(0.03, 0.97, 33)))
            for j in range(x.shape[1])]
    everyone = np.ones(n, bool)

    def leaf(sel):
        return rate * g[sel].sum() / (h[sel].sum() + lam)

    for _ in range(rounds):
        p = 1 / (1 + np.exp(-np.clip(f, -30, 30)))
        g, h = sw * (y - p), sw * p * (1 - p)
        _, j, t = _best_split(x, g, h, everyone, cuts, lam)
        left = x[:, j] <= t
        if depth < 2:
            vl, vr = leaf(left), leaf(~left)
            f += np.where(left, vl, vr)
            stumps.append([names[j], round(t, 5), round(float(vl), 5), round(float(vr), 5)])
            continue
        sides = []
        for side in (left, ~left):
            split = _best_split(x, g, h, side, cuts, lam) if side.sum() >= 20 else None
            if split is None:
                v = leaf(side)
                f[side] += v
                sides.append(round(float(v), 5))
                continue
            _, j2, t2 = split
            low = side & (x[:, j2] <= t2)
            high = side & ~(x[:, j2] <= t2)
            vl, vr = leaf(low), leaf(high)
            f[low] += vl
            f[high] += vr
            sides.append([names[j2], round(t2, 5), round(float(vl), 5), round(float(vr), 5)])
        stumps.append([names[j], round(t, 5), sides[0], sides[1]])
    return bias, stumps


def _entry(row: np.ndarray, names: list[str], entry) -> np.ndarray:
    if not isinstance(entry, list):
        return np.full(len(row), float(entry))
    name, t, vl, vr = entry
    low = row[:, names.index(name)] <= t
    return np.where(low, _entry(row, names, vl), _entry(row, names, vr))


def _stump_scores(x: np.ndarray, names: list[str], bias: float, stumps: list[list]):
    f = np.full(len(x), bias)
    for entry in stumps:
        f += _entry(x, names, entry)
    return 1 / (1 + np.exp(-np.clip(f, -30, 30)))


def features_of(folder: Path, truths: list[dict], cache: Path | None = None) -> list[dict]:
    """The measured features of every image (kept in ``cache`` when given, keyed by file
    name: delete it after changing ocr/risk.py)."""
    known = json.loads(cache.read_text("utf-8")) if cache and cache.exists() else {}
    rows = []
    for t in truths:
        if t["file"] not in known:
            image = decode((folder / t["file"]).read_bytes(), Limits())[0].image
            known[t["file"]] = measure(image, prepare(image)).features
        rows.append(known[t["file"]])
    if cache:
        cache.write_text(json.dumps(known), "utf-8")
    return rows


#: Precision each signal must keep on the training set, on left-out-set scores for trees
#: of two levels (tampering: as much recall as the false-alarm budget on genuine images
#: allows). Recapture at the goal's 0.95: its false positives on the left-out sets are
#: few and its recall in the hard tier needs the room (checked on seeds 15 and 16).
PRECISION = {"photocopy": 0.97, "recapture": 0.95, "tampering": 0.0}
#: False alarms on the genuine training images at most this share (half the product's
#: 2% budget for any flag: unseen images alarm more often than the ones fitted on).
GENUINE_ALARMS = 0.005


def _threshold(p: np.ndarray, y: np.ndarray, genuine: np.ndarray, min_precision: float
               ) -> float:
    """The lowest threshold (from 0.5) that keeps the training set's genuine false alarms
    within GENUINE_ALARMS and its precision at least ``min_precision``."""
    for th in np.linspace(0.5, 0.995, 100):
        flag = p >= th
        alarms = flag[genuine].mean() if genuine.any() else 0.0
        precision = (flag & (y == 1)).sum() / max(flag.sum(), 1)
        if alarms <= GENUINE_ALARMS and precision >= min_precision:
            return round(float(th), 3)
    return 0.995


#: Levels of each signal's trees (1: stumps).
DEPTH = {"photocopy": 2, "recapture": 2, "tampering": 1}

#: Signals with a model per side of the card.
PER_SIDE = ("photocopy",)


def _fit_one(key: str, names: list[str], rows: list[dict], truths: list[dict],
             signal: str) -> dict:
    x = np.array([[r[k] for k in names] for r in rows], float)
    y = np.array([1.0 if t["signals"][signal] else 0.0 for t in truths])
    depth = DEPTH.get(signal, 1)
    bias, stumps = _boost(x, y, names, depth=depth)
    p = _stump_scores(x, names, bias, stumps)
    seeds = np.array([t["seed"] for t in truths])
    how = "train"
    if depth > 1 and len(set(seeds.tolist())) > 1:
        # Trees of two levels fit the training images (nearly) perfectly: the threshold
        # is chosen on the scores each image gets from a model fitted without its set
        # (one set, one seed, left out at a time), as an unseen image would get.
        p = np.zeros(len(y))
        for s in sorted(set(seeds.tolist())):
            out = seeds == s
            b, st = _boost(x[~out], y[~out], names, depth=depth)
            p[out] = _stump_scores(x[out], names, b, st)
        how = "left-out-set"
    genuine = np.array([t["kind"] in ("genuine", "page") for t in truths])
    threshold = _threshold(p, y, genuine, min_precision=PRECISION[signal])
    flag = p >= threshold
    recall = (flag & (y == 1)).sum() / max((y == 1).sum(), 1)
    print(f"{key}: {how} recall {recall:.2f}, false alarms on genuine "
          f"{flag[genuine].mean():.3f}, threshold {threshold:.2f}", file=sys.stderr)
    return {"bias": bias, "stumps": stumps, "threshold": round(threshold, 3)}


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}


def _pages(folder: Path) -> list[dict]:
    """Every image under a folder of pages that are no ID card (claim forms), as truth
    entries of their own kind (``page``): negatives of every signal, counted with the
    genuine cards' false alarms, one left-out set per folder."""
    return [{"file": str(p.relative_to(folder)), "kind": "page", "tier": "page",
             "side": "page", "doc_type": "claim_form", "seed": f"pages:{folder.name}",
             "signals": dict.fromkeys(SIGNALS, False)}
            for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]


def fit(folders: list[Path], out: Path, command: str, cache: Path | None = None,
        pages: list[Path] | None = None) -> dict:
    truths, rows = [], []
    for folder, these in ([(f, _truth(f)) for f in folders]
                          + [(f, _pages(f)) for f in pages or []]):
        truths += these
        measured = features_of(folder, these, cache.with_name(f"{cache.stem}-{folder.name}.json")
                               if cache else None)
        rows += measured
    model: dict = {"command": command, "images": len(rows), "signals": {}}
    back = np.array([t["doc_type"] == "id_card_back" for t in truths])
    card = np.array([t["kind"] != "page" for t in truths])
    for signal in MODELLED:
        # A back's red emblem is colour a front does not have: a photocopy is judged
        # against its own side (the page's type is known when the signal is scored).
        # Pages (claim forms) are judged for the signals not kept to cards only.
        every = np.ones(len(rows), bool) if signal not in CARD_ONLY else card
        parts = ({f"{signal}@front": ~back & card, f"{signal}@back": back}
                 if signal in PER_SIDE else {signal: every})
        for key, sel in parts.items():
            model["signals"][key] = _fit_one(
                key, FEATURES[signal], [r for r, k in zip(rows, sel, strict=True) if k],
                [t for t, k in zip(truths, sel, strict=True) if k], signal)
    out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    return model


# --------------------------------------------------------------------------- benchmark


def _pr(flags: list[bool], truth: list[bool]) -> tuple[float | None, float | None, int, int]:
    tp = sum(f and t for f, t in zip(flags, truth, strict=True))
    fp = sum(f and not t for f, t in zip(flags, truth, strict=True))
    pos = sum(truth)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / pos if pos else None
    return precision, recall, pos, tp + fp


def _overlap(a, b) -> bool:
    """Whether two polygons' bounding boxes overlap."""
    if not a or not b:
        return False
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(min(a[:, 0].max(), b[:, 0].max()) > max(a[:, 0].min(), b[:, 0].min())
                and min(a[:, 1].max(), b[:, 1].max()) > max(a[:, 1].min(), b[:, 1].min()))


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _dump(path: Path, results) -> None:
    """Each image's reading and signals, a JSON line per image (to look at the misses)."""
    with path.open("w", encoding="utf-8") as out:
        for t, r in results:
            signals = ({k: {"flagged": s.flagged, "score": s.score, "reason": s.reason}
                        for k, s in r.risk.signals.items()} if r.risk else {})
            out.write(json.dumps({"file": t["file"], "kind": t["kind"], "tier": t["tier"],
                                  "side": t["side"], "read_as": r.doc_type.value,
                                  "signals": signals}, ensure_ascii=False) + "\n")


def bench(folder: Path, timing: int, dump: Path | None = None) -> None:
    from backoffice.runtime import get_recognizer
    from backoffice.settings import apply_environment
    from ocr.pipeline import read_page

    settings = apply_environment()
    engine = get_recognizer(settings)
    truths = _truth(folder)
    results = []
    for t in truths:
        image = decode((folder / t["file"]).read_bytes(), Limits())[0].image
        reading = read_page(image, engine)
        results.append((t, reading))
    if dump:
        _dump(dump, results)
    print(f"# Risk signals on {folder} ({len(results)} images)\n")
    print("| signal | tier | positives | precision | recall | false alarms on genuine |")
    print("|---|---|---:|---:|---:|---:|")
    for signal in SIGNALS:
        for tier in (*TIERS, "all"):
            sel = [(t, r) for t, r in results if tier in ("all", t["tier"])
                   and (signal != "portrait" or t["side"] == "front")]
            flags = [bool(r.risk and signal in r.risk.signals and r.risk.signals[signal].flagged)
                     for _, r in sel]
            truth = [bool(t["signals"][signal]) for t, _ in sel]
            precision, recall, pos, _ = _pr(flags, truth)
            gen = [f for (t, _), f in zip(sel, flags, strict=True) if t["kind"] == "genuine"]
            fa = f"{sum(gen)}/{len(gen)} ({sum(gen) / len(gen):.1%})" if gen else "—"
            print(f"| {signal} | {tier} | {pos} | {_fmt(precision)} | {_fmt(recall)} | {fa} |")
    print()
    genuine = [(t, r) for t, r in results if t["kind"] == "genuine"]
    print("| genuine images raising any flag | clean | photo | hard |")
    print("|---|---:|---:|---:|")
    cells = []
    for tier in TIERS:
        sel = [r for t, r in genuine if t["tier"] == tier]
        any_flag = sum(1 for r in sel if r.risk and r.risk.flagged)
        cells.append(f"{any_flag}/{len(sel)} ({any_flag / max(len(sel), 1):.1%})")
    print(f"| any signal | {' | '.join(cells)} |\n")
    caught = [(t, r) for t, r in results if t["kind"] == "tampered"
              and r.risk and r.risk.signals["tampering"].flagged]
    boxed = sum(1 for t, r in caught if _overlap(r.risk.signals["tampering"].region,
                                                 t["render"].get("region")))
    print(f"Tampering flagged on {len(caught)} forgeries; the region given overlaps the "
          f"altered field on {boxed} of them.")
    temps = [(t, r) for t, r in results if t["kind"] == "temporary"]
    if temps:
        ok = sum(1 for _, r in temps if r.doc_type is DocType.ID_CARD_TEMPORARY)
        wrong = sum(1 for t, r in results if t["kind"] != "temporary"
                    and r.doc_type is DocType.ID_CARD_TEMPORARY)
        print(f"Temporary cards read as id_card_temporary: {ok}/{len(temps)}; other images "
              f"read as temporary: {wrong}/{len(results) - len(temps)}.")
        for tier in TIERS:
            sel = [r for t, r in temps if t["tier"] == tier]
            got = sum(1 for r in sel if r.doc_type is DocType.ID_CARD_TEMPORARY)
            print(f"  {tier}: {got}/{len(sel)}")
    _unknown_pages(results)
    fronts = [(t, r) for t, r in genuine if t["side"] == "front"]
    crops = sum(1 for _, r in fronts if r.portrait_jpeg)
    print(f"Portrait cropped on genuine fronts: {crops}/{len(fronts)}.\n")
    ms = [r.risk.seconds * 1000 for _, r in results if r.risk]
    total = [r.seconds * 1000 for _, r in results]
    print(f"Risk signals: median {statistics.median(ms):.0f} ms per image (p90 "
          f"{np.percentile(ms, 90):.0f} ms); whole reading median {statistics.median(total):.0f} ms"
          f" (risk share {statistics.median(ms) / statistics.median(total):.1%}).")
    if timing:
        _timing(folder, genuine[:timing], engine)


def _unknown_pages(results) -> None:
    """The pages read as ``unknown``: judged as a card by their outline or not assessed,
    and what that caught (photocopy, recapture) or raised on genuine cards."""
    unknown = [(t, r) for t, r in results if r.doc_type is DocType.UNKNOWN]
    judged = [(t, r) for t, r in unknown if r.risk and not r.risk.signals["photocopy"]
              .reason.startswith("not assessed")]
    parts = []
    for signal in ("photocopy", "recapture"):
        pos = [(t, r) for t, r in unknown if t["signals"][signal]]
        hit = sum(1 for _, r in pos if r.risk.signals[signal].flagged)
        wrong = sum(1 for t, r in unknown if not t["signals"][signal]
                    and r.risk.signals[signal].flagged)
        parts.append(f"{signal} {hit}/{len(pos)} caught, {wrong} false")
    genuine = sum(1 for t, r in unknown if t["kind"] == "genuine")
    print(f"Pages read as unknown: {len(unknown)} ({genuine} genuine); judged as a card by "
          f"their outline: {len(judged)}; {'; '.join(parts)}.")


def negatives(folders: list[Path]) -> None:
    """Flags raised on pages that are no ID card (claim forms, invoices, bank cards, bad
    files), by the type each was read as; a file that does not decode is skipped."""
    from backoffice.runtime import get_recognizer
    from backoffice.settings import apply_environment
    from ocr.decode import DecodeError
    from ocr.pipeline import read_page

    engine = get_recognizer(apply_environment())
    print("| pages (no ID card) | read as | images | judged as a card | photocopy flagged "
          "| recapture flagged |")
    print("|---|---|---:|---:|---:|---:|")
    for folder in folders:
        rows: dict[str, list[int]] = {}
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix.lower() in {".json", ".jsonl", ".md", ".csv"}:
                continue
            try:
                image = decode(path.read_bytes(), Limits())[0].image
            except (DecodeError, ValueError, OSError):
                continue
            r = read_page(image, engine)
            row = rows.setdefault(r.doc_type.value, [0, 0, 0, 0])
            row[0] += 1
            if r.doc_type is DocType.UNKNOWN and r.risk and not r.risk.signals[
                    "photocopy"].reason.startswith("not assessed"):
                row[1] += 1
            row[2] += bool(r.risk and r.risk.signals["photocopy"].flagged)
            row[3] += bool(r.risk and r.risk.signals["recapture"].flagged)
        for doc_type, (n, judged, copy, screen) in sorted(rows.items()):
            print(f"| {folder} | {doc_type} | {n} | {judged} | {copy} | {screen} |")
    print()


def _timing(folder: Path, sample, engine) -> None:
    """ID end-to-end (read_page) with and without the risk signals on the same images,
    in turn and each first every other image, so that the other load on the machine and
    a warm cache fall on both alike."""
    from ocr.pipeline import read_page

    with_risk, without = [], []
    for k, (t, _) in enumerate(sample):
        image = decode((folder / t["file"]).read_bytes(), Limits())[0].image
        runs = ((True, with_risk), (False, without))
        for flag, bucket in (runs if k % 2 == 0 else runs[::-1]):
            start = time.perf_counter()
            read_page(image, engine, risk=flag)
            bucket.append(time.perf_counter() - start)
    a, b = statistics.median(with_risk), statistics.median(without)
    ta, tb = sum(with_risk), sum(without)
    print(f"ID end-to-end on {len(sample)} genuine images: median {b * 1000:.0f} ms without "
          f"risk, {a * 1000:.0f} ms with (+{(a / b - 1):.1%}); total {tb:.1f} s vs {ta:.1f} s "
          f"(+{(ta / tb - 1):.1%}).")


def _timing_only(folder: Path, count: int) -> None:
    from backoffice.runtime import get_recognizer
    from backoffice.settings import apply_environment

    engine = get_recognizer(apply_environment())
    genuine = [(t, None) for t in _truth(folder) if t["kind"] == "genuine"]
    _timing(folder, genuine[:count], engine)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", required=True, type=Path, action="append",
                        help="a set made by `python -m fixtures.generator risk` (with --fit: "
                        "repeatable, the sets are fitted together)")
    parser.add_argument("--fit", type=Path, default=None,
                        help="fit the signals' logistic models on this set and write them here")
    parser.add_argument("--cache", type=Path, default=None,
                        help="with --fit: keep the measured features in this JSON file")
    parser.add_argument("--fit-pages", type=Path, action="append", default=[],
                        help="with --fit: a folder of pages that are no ID card (claim-form "
                        "photos; repeatable), negatives of the signals judged on them")
    parser.add_argument("--note", default="",
                        help="with --fit: how the sets were made, recorded in the model file")
    parser.add_argument("--negatives", type=Path, action="append", default=[],
                        help="a folder of pages that are no ID card (repeatable): the flags "
                        "raised on them, after the benchmark")
    parser.add_argument("--dump", type=Path, default=None,
                        help="write each image's reading and signals here (JSON lines)")
    parser.add_argument("--timing-only", action="store_true",
                        help="only the end-to-end timing with and without risk")
    parser.add_argument("--timing", type=int, default=30,
                        help="genuine images timed with and without risk (default 30; 0: none)")
    args = parser.parse_args(argv)
    if args.fit:
        given = list(argv or sys.argv[1:])
        kept = [a for k, a in enumerate(given) if not a.startswith("--note")
                and not (k and given[k - 1] == "--note")]
        command = "python bench/bench_risk.py " + " ".join(shlex.quote(a) for a in kept)
        if args.note:
            command += "; " + args.note
        fit(args.fixtures, args.fit, command, args.cache, args.fit_pages)
        return 0
    if len(args.fixtures) != 1:
        parser.error("the benchmark reads one set")
    if args.timing_only:
        _timing_only(args.fixtures[0], args.timing)
        return 0
    bench(args.fixtures[0], args.timing, args.dump)
    if args.negatives:
        print()
        negatives(args.negatives)
    return 0


if __name__ == "__main__":
    sys.exit(main())
