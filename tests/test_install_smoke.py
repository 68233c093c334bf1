"""The project installs as a package, not only as an editable checkout.

The source tree is built and installed non-editable into a fresh virtualenv (no download:
`--no-deps --no-build-isolation --no-index`; the dependencies come from the test's own
environment through a .pth file that adds its site-packages as plain folders, so the
editable install's finder there is not run). Then, from another folder with no
PYTHONPATH, every module of ours must import from the fresh virtualenv, the package data
must be there, the `backoffice` console script must answer, and nothing named
`fixtures` or `tests` may be installed.

Not imported: `__main__` modules (running them is running the CLI; `python -m cli --help`
is run instead). No module needs an optional dependency today; one that does goes into
OPTIONAL with the reason.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
# Our top-level packages; those that exist in the checkout must all be installed.
KNOWN_PACKAGES = ("backoffice", "ocr", "validators", "flows", "domain", "cli")
NOT_PACKAGES = ("fixtures", "tests")
# module name -> why it may fail to import in a plain install
OPTIONAL: dict[str, str] = {}
# Never copied into the build tree: state, caches, environments, build output.
IGNORED = (".git", ".venv", "venv", "var", "build", "dist", ".stamps", "__pycache__",
           "*.egg-info", "*.pyc", ".pytest_cache", ".ruff_cache", ".hypothesis",
           ".mypy_cache", ".import_linter_cache")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def _our_packages() -> list[str]:
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    names = {pattern.split(".")[0].rstrip("*") for pattern in include} | set(KNOWN_PACKAGES)
    return sorted(n for n in names if (ROOT / n).is_dir())


def _source_files() -> list[Path]:
    """What a clone holds plus new files not yet committed, minus what git ignores."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True).stdout.decode()
        files = [Path(p) for p in out.split("\0") if p]
    else:
        files = [p.relative_to(ROOT) for p in ROOT.rglob("*") if p.is_file()]
    return [f for f in files
            if (ROOT / f).is_file()  # a deletion not committed yet
            and not any(fnmatch.fnmatch(part, pat) for part in f.parts for pat in IGNORED)]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k not in ("VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")}
    env.update({
        "BACKOFFICE_DATA_DIR": str(tmp_path / "data"),
        "PREFECT_HOME": str(tmp_path / "data" / "prefect"),
        "PADDLE_PDX_CACHE_HOME": str(tmp_path / "data" / "paddlex"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PYTHONNOUSERSITE": "1",
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "TERM": "dumb",
    })
    return env


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


CHECK_IMPORTS = textwrap.dedent("""
    import importlib, json, pkgutil, sys, traceback

    tops = sys.argv[1:]
    errors, seen = {}, []

    def failed(name):
        errors[name] = traceback.format_exc(limit=-3)

    for top in tops:
        try:
            pkg = importlib.import_module(top)
        except BaseException:
            failed(top)
            continue
        seen.append(top)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=top + ".", onerror=failed):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            try:
                importlib.import_module(info.name)
            except BaseException:
                failed(info.name)
            else:
                seen.append(info.name)
    files = {name: getattr(mod, "__file__", None) for name, mod in list(sys.modules.items())
             if name.split(".")[0] in tops}
    print(json.dumps({"errors": errors, "seen": seen, "files": files}))
""")


@dataclass(frozen=True)
class Install:
    venv: Path  # the fresh virtualenv
    site: Path  # its site-packages, where our packages must come from
    packages: list[str]  # our top-level packages
    env: dict[str, str]  # a clean environment (no PYTHONPATH)
    work: Path  # a folder outside the checkout to run from


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Install:
    tmp = tmp_path_factory.mktemp("install")
    packages = _our_packages()

    # Build from a copy: an in-tree build leaves build/ behind, and a stale build/lib
    # (modules since moved or deleted) would end up in the wheel.
    src = tmp / "src"
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel, follow_symlinks=False)

    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp,
                env=_clean_env(tmp))
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp, env=_clean_env(tmp)).stdout.strip())
    assert site.is_dir() and site.is_relative_to(venv), site
    # The dependencies: this environment's site-packages as plain folders. Their own .pth
    # files (the editable install's finder among them) are not processed.
    deps = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "_smoke_test_dependencies.pth").write_text("".join(f"{d}\n" for d in deps))

    env = _clean_env(tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    pip = _run([py, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                "--ignore-installed", "--no-cache-dir", "--disable-pip-version-check", "-q",
                src], cwd=work, env=env)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Install(venv, site, packages, env, work)


def test_every_module_imports_from_the_installed_tree(installed: Install):
    venv, site, packages, env, work = (installed.venv, installed.site, installed.packages,
                                       installed.env, installed.work)
    assert {"backoffice", "ocr", "validators", "flows"} <= set(packages)
    for name in packages:
        assert (site / name).is_dir(), f"package {name} is not installed"

    proc = _run([venv / "bin" / "python", "-c", CHECK_IMPORTS, *packages], cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    errors = {k: v for k, v in report["errors"].items() if k not in OPTIONAL}
    assert not errors, "modules that do not import:\n" + "\n".join(
        f"--- {name}\n{tb}" for name, tb in errors.items())
    assert len(report["seen"]) > len(packages)
    outside = {name: f for name, f in report["files"].items()
               if f is None or not Path(f).resolve().is_relative_to(site.resolve())}
    assert not outside, f"imported from outside {site}: {outside}"


def test_console_script_answers(installed: Install):
    venv, packages, env, work = installed.venv, installed.packages, installed.env, installed.work
    script = venv / "bin" / "backoffice"
    assert script.exists(), "the backoffice console script is not installed"
    assert str(venv) in "".join(script.read_text().splitlines()[:3]), "not the fresh venv's"
    proc = _run([script, "--help"], cwd=work, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "demo" in proc.stdout
    if "cli" in packages:
        proc = _run([venv / "bin" / "python", "-m", "cli", "--help"], cwd=work, env=env,
                    timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "demo" in proc.stdout


def test_package_data_is_installed(installed: Install):
    site, packages = installed.site, installed.packages
    # What pyproject declares: each file it names in the checkout is installed.
    for package, patterns in _pyproject()["tool"]["setuptools"].get("package-data", {}).items():
        base = ROOT / package.replace(".", "/")
        for pattern in patterns:
            for f in base.glob(pattern):
                if f.is_file():
                    rel = f.relative_to(ROOT)
                    assert (site / rel).is_file(), f"{rel} ({package}: {pattern}) not installed"
    assert sorted(p.name for p in (site / "ocr").glob("*.json")) == sorted(
        p.name for p in (ROOT / "ocr").glob("*.json"))
    assert (site / "ocr" / "model_hashes.json").is_file()
    # And every non-Python file inside our packages (code reads them by __file__ or
    # importlib.resources), declared or not.
    missing = [str(rel) for rel in _source_files()
               if rel.parts[0] in packages and rel.suffix not in (".py", ".pyc")
               and not (site / rel).is_file()]
    assert not missing, ("data files of our packages not installed (declare them in "
                         f"[tool.setuptools.package-data]): {missing}")


def test_nothing_named_fixtures_or_tests_is_installed(installed: Install):
    site, packages = installed.site, installed.packages
    for name in NOT_PACKAGES:
        assert not (site / name).exists(), f"{name}/ is installed"
    (dist_info,) = site.glob("backoffice-*.dist-info")
    top_level = set((dist_info / "top_level.txt").read_text().split())
    assert top_level == set(packages), top_level
    for line in (dist_info / "RECORD").read_text().splitlines():
        path = Path(line.split(",")[0])
        assert not set(path.parts[:-1]) & set(NOT_PACKAGES), f"installed: {path}"
