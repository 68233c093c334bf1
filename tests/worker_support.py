"""Helpers for the worker tests: distinct tiny documents and a recogniser that reads nothing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class BlankRecognizer:
    """Reads no text, in microseconds: for tests about claiming, not about reading."""

    def recognize(self, image):
        return []


def write_tiny_documents(folder: Path, count: int) -> list[Path]:
    """``count`` distinct near-blank 100x60 PNGs (a few dark pixels encode the index)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = np.full((60, 100), 255, np.uint8)
        for bit in range(12):
            if i >> bit & 1:
                image[5 + 4 * bit, 5:9] = 0
        path = folder / f"doc-{i:04d}.png"
        path.write_bytes(cv2.imencode(".png", image)[1].tobytes())
        paths.append(path)
    return paths
