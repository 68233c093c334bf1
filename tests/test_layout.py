"""The layout's arrows (README "Layout") hold: import-linter's contracts, checked here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "BROKEN" not in out and "0 broken" in out, out
    # Every contract of pyproject.toml ran (six: layers, four forbidden, no fixtures/tests).
    assert out.count(" KEPT") >= 6, out


def test_a_broken_arrow_is_caught(tmp_path):
    """The contracts are not vacuous: a copy of the tree with ocr importing the services
    fails them."""
    import shutil

    copy = tmp_path / "tree"
    for name in ("cli", "flows", "backoffice", "ocr", "validators", "domain", "fixtures"):
        shutil.copytree(ROOT / name, copy / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.jpg", "*.png", "*.pdf",
                                                      "*.tif", "*.gif"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    layout = copy / "ocr" / "layout.py"
    layout.write_text(layout.read_text("utf-8") + "\nimport backoffice.store  # noqa\n", "utf-8")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(lint), "--no-cache"], cwd=copy, capture_output=True, text=True,
                          check=False, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "ocr.layout -> backoffice.store" in out, out
