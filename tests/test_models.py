"""The OCR models: laid out as PaddleOCR loads them, and refused when a file changed."""

from __future__ import annotations

import json

import pytest

from ocr.engine import (
    DET_MODEL,
    REC_MODEL,
    ModelIntegrityError,
    default_model_dir,
    recorded_hashes,
    verify_models,
)


def test_the_default_folder_links_the_installed_files_under_paddleocrs_names(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = default_model_dir()
    assert folder == tmp_path / "backoffice" / "models"
    onnx = folder / REC_MODEL / "inference.onnx"
    assert onnx.is_symlink() and onnx.resolve().name == "rec.onnx"
    assert (folder / DET_MODEL / "inference.pdiparams").is_file()
    verify_models(folder)
    # Laid out again (a second process starting): the same links, nothing broken.
    assert default_model_dir() == folder
    verify_models(folder)


def test_a_changed_model_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = default_model_dir()
    hashes = recorded_hashes()
    hashes[REC_MODEL] = {**hashes[REC_MODEL], "inference.onnx": "0" * 64}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(hashes))
    with pytest.raises(ModelIntegrityError, match="inference.onnx has SHA-256"):
        verify_models(folder, manifest)


def test_an_unwritable_cache_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    folder = default_model_dir()
    assert folder.parent == tmp_path / "tmp"
    verify_models(folder)


def test_a_manifest_without_the_recogniser_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    hashes = {k: v for k, v in recorded_hashes().items() if k != REC_MODEL}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(hashes))
    with pytest.raises(ModelIntegrityError, match=f"no SHA-256 recorded for {REC_MODEL}"):
        verify_models(default_model_dir(), manifest)
