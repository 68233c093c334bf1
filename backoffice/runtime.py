"""Process-wide resources: the store engine and the OCR engine, each built once."""

from __future__ import annotations

import threading
from functools import lru_cache

from sqlalchemy.engine import Engine

from backoffice.settings import Settings, get_settings
from backoffice.store import make_engine

_lock = threading.Lock()


@lru_cache(maxsize=8)
def db_engine(url: str) -> Engine:
    # Registers the outbox and task-payload tables before the schema is prepared
    # (make_engine brings it to the newest migration: backoffice.migrations).
    from backoffice import outbox, payloads  # noqa: F401

    return make_engine(url)


def get_db(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    with _lock:
        return db_engine(settings.database_url)


def get_recognizer(settings: Settings | None = None):
    """The OCR engine of this process (loaded once: 4–12 s)."""
    from ocr.calibration import use_calibration
    from ocr.engine import get_engine
    from ocr.extract.claim import use_labels

    settings = settings or get_settings()
    use_labels(settings.claim_labels)
    use_calibration(settings.calibration_file)
    return get_engine(
        model_dir=settings.ocr_model_dir,
        det_limit_side_len=settings.ocr_det_limit_side_len,
        rec_score_thresh=settings.ocr_rec_score_thresh,
        det_unclip_ratio=settings.ocr_det_unclip_ratio,
        crop_pad=settings.ocr_crop_pad,
        rec_batch_size=settings.ocr_rec_batch_size,
        rec_min_width=settings.ocr_rec_min_width,
        cpu_threads=settings.ocr_cpu_threads,
        verify=settings.ocr_verify_models,
        manifest=settings.ocr_model_hashes,
    )
