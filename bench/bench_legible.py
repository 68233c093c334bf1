"""Where the fields a person can read are lost on hard ID photos, and whether a decoder
could win them back.

Each field the generator records as legible (``fixtures/generator/legibility.py``) and
the pipeline gets wrong is put in one of these places:

* ``page``: the image was not read as its document type (not found as a card, or as the
  wrong side);
* ``not found``: the card was read but the field has no value;
* ``recogniser``: a value was read, and on the crops of the lines it was read from the
  recogniser finds its reading likelier than the true value (CTC log-likelihood of the
  lines' text, the value replaced by the truth; the lines' crops joined). No decoder that
  chooses among the recogniser's readings can win these back: a stronger recogniser
  (or better pixels) can;
* ``within reach``: the truth is at least as likely as the reading on those crops; a
  decoder that proposed it would have chosen it;
* ``not scored``: a value read in another form than printed (a date), or from no line.

It prints the count per place and field, and each miss's place, field and likelihood gap
with ``--misses`` (values too: they are generated people, never real ones).

    .venv/bin/python -m fixtures.generator idcards --out var/eval/id-s884 --count 30 --seed 884
    .venv/bin/python bench/bench_legible.py --fixtures var/eval/id-s884 [--tier hard] [--misses]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backoffice.settings import apply_environment

settings = apply_environment()

from backoffice.accuracy import load_truth, split_key
from backoffice.processing import limits_from
from backoffice.runtime import get_recognizer
from ocr.decode import decode
from ocr.pipeline import PageReading, read_page

#: a label printed before a value on its line, which a field's raw reading may begin with
_LABEL = re.compile(r"^(姓名|性别|民族|出生|住址|公民身份号码|签发机关|有效期限)")
#: the height the crops of a field's lines are brought to before they are joined
_JOIN_HEIGHT = 48


def joined_crop(engine, image: np.ndarray, polygons: list) -> np.ndarray:
    """The crops of ``polygons`` (a field's lines, in reading order) side by side, each
    brought to one height, with a blank gap between them."""
    crops = [engine.crop(image, np.asarray(p, np.float32)) for p in polygons]
    scaled = [cv2.resize(c, (max(1, round(c.shape[1] * _JOIN_HEIGHT / c.shape[0])), _JOIN_HEIGHT))
              for c in crops]
    gap = np.full((_JOIN_HEIGHT, _JOIN_HEIGHT // 2, 3), 255, np.uint8)
    parts = [p for c in scaled for p in (c, gap)][:-1]
    return np.ascontiguousarray(np.hstack(parts))


def place(engine, trace: dict, reading: PageReading, want_type: str, field: str,
          want: str) -> tuple[str, float | None]:
    """Where a legible field that was read wrong was lost, and the log-likelihood by which
    the recogniser prefers the reading over the truth (None when not scored). ``trace``:
    the page as the pipeline read it (:func:`ocr.pipeline.read_page`); the crops are cut
    from it, upright and at the size the recogniser saw them."""
    if reading.doc_type.value != want_type:
        return "page", None
    got = reading.fields.get(field)
    if got is None or got.value is None:
        return "not found", None
    texts = {tuple(map(tuple, ln.polygon)): ln.text.replace(" ", "") for ln in reading.lines}
    polygons = [box for box in got.boxes if tuple(map(tuple, box)) in texts]
    line_text = "".join(texts[tuple(map(tuple, box))] for box in polygons)
    raw = _LABEL.sub("", got.raw or "")  # a label the line was read with is no part of it
    read = next((v for v in (got.value, raw) if v and v in line_text), None)
    if not polygons or read is None:
        return "not scored", None
    back = np.linalg.inv(trace["to_original"])  # the page's pixels -> the frame read
    polygons = [cv2.perspectiveTransform(np.float64(p).reshape(-1, 1, 2), back).reshape(-1, 2)
                for p in polygons]
    crop = joined_crop(engine, trace["image"], polygons)
    read_score, true_score = engine.score_texts(
        [crop], [line_text, line_text.replace(read, want, 1)])[0]
    gap = read_score - true_score
    return ("recogniser" if gap > 0 else "within reach"), round(gap, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, required=True)
    parser.add_argument("--tier", default="hard")
    parser.add_argument("--misses", action="store_true", help="print each miss")
    args = parser.parse_args()
    truth = load_truth(args.fixtures / "truth.jsonl")
    engine = get_recognizer(settings)
    limits = limits_from(settings)
    places: Counter[tuple[str, str]] = Counter()
    legible = right = 0
    for key, item in sorted(truth.items()):
        legibility = item.get("legibility")
        if item.get("variant") != args.tier or not legibility:
            continue
        rel, page = split_key(key)
        data = (args.fixtures / rel).read_bytes()
        trace: dict = {}
        reading = read_page(decode(data, limits)[page].image, engine, page=page, trace=trace)
        for field, want in item["fields"].items():
            if not legibility.get(field, {}).get("legible"):
                continue
            legible += 1
            got = reading.fields.get(field)
            if (reading.doc_type.value == item["doc_type"] and got is not None
                    and got.value == want):
                right += 1
                continue
            where, gap = place(engine, trace, reading, item["doc_type"], field, want)
            places[(where, field)] += 1
            if args.misses:
                print(f"  {rel}: {field}: {where}"
                      f"{'' if gap is None else f' (reading likelier by {gap} nats)'}: "
                      f"want {want!r}, got {got.value if got is not None else None!r}")
    print(f"\n{args.tier}: {right} of {legible} legible fields right "
          f"({100.0 * right / max(legible, 1):.1f}%); where the other {legible - right} were lost")
    by_place = Counter()
    for (where, _), n in places.items():
        by_place[where] += n
    for where, n in by_place.most_common():
        fields = ", ".join(f"{f} {c}" for (w, f), c in sorted(places.items()) if w == where)
        print(f"  {where:13} {n:>3}  ({fields})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
