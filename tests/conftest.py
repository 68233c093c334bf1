"""Test session setup: an isolated data folder, one OCR engine, one Prefect harness."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

# Before anything imports prefect or paddle: isolate all state in a temporary data folder.
_DATA = Path(tempfile.mkdtemp(prefix="backoffice-test-"))
os.environ["BACKOFFICE_DATA_DIR"] = str(_DATA)
os.environ.pop("BACKOFFICE_DATABASE_URL", None)
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_HOME"] = str(_DATA / "prefect")
os.environ.setdefault("PADDLE_PDX_CACHE_HOME", str(_DATA / "paddlex"))

from backoffice.settings import apply_environment, get_settings

get_settings.cache_clear()
apply_environment()

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
# The PostgreSQL server the tests make their databases on. `make test` runs pytest through
# scripts/test-postgres.sh, which sets this to a throwaway server when none answers here.
PG_ADMIN_URL = os.environ.get("BACKOFFICE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOW_TO = ("run the tests with `make test`, or through `scripts/test-postgres.sh`, which "
             "starts a throwaway PostgreSQL when none answers "
             "(e.g. scripts/test-postgres.sh .venv/bin/python -m pytest ...); "
             "or point BACKOFFICE_TEST_PG at a server")


# The files that take a minute or more (measured: `make test PYTEST_ARGS=--durations=40`).
# They are collected first so that, on several workers (`make test`, --dist loadfile), none
# of them starts last and leaves the other workers idle; the order changes nothing else.
_LONG_FILES = ("test_masking_scan.py", "test_readers.py", "test_hosts_netns.py",
               "test_ui_e2e.py", "test_ocr_cases.py", "test_ocr_idcards.py",
               "test_outbox_faults.py", "test_serve.py", "test_ocr_claims.py")


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        name = item.path.name
        return _LONG_FILES.index(name) if name in _LONG_FILES else len(_LONG_FILES)

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_DATA, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _DATA


@pytest.fixture(scope="session")
def ocr_engine():
    """The real PaddleOCR engine, built once for the whole session."""
    from backoffice.runtime import get_recognizer

    return get_recognizer(get_settings())


def read_accuracy(folder: Path, engine):
    """Field exact match of a generated set read with the real OCR, grouped by variant
    (a multi-page file is read once)."""
    from backoffice.accuracy import AccuracyTable, load_truth, split_key
    from ocr.pipeline import read_document

    acc = AccuracyTable()
    cache: dict[str, list] = {}
    for key, truth in sorted(load_truth(folder / "truth.jsonl").items()):
        rel, page = split_key(key)
        if rel not in cache:
            cache[rel] = read_document((folder / rel).read_bytes(), engine)
        reading = cache[rel][page]
        acc.add({**truth, "layout": truth["variant"]}, reading.doc_type.value,
                {k: f.value for k, f in reading.fields.items()})
    return acc


def value_line(engine, rel: str, value: str):
    """A bundled ID card (``rel`` under fixtures/idcards) read as the pipeline reads it,
    and the line that holds ``value``: (its crop, what the line holds before the value,
    what after), for scoring readings of the value on it; None when no line holds it."""
    import cv2
    import numpy as np

    from ocr.pipeline import read_page

    trace: dict = {}
    read_page(cv2.imread(str(FIXTURES / "idcards" / rel)), engine, risk=False, trace=trace)
    line = next((ln for ln in trace["lines"] if value in ln.text.replace(" ", "")), None)
    if line is None:
        return None
    text = line.text.replace(" ", "")
    at = text.index(value)
    crop = engine.crop(trace["image"], np.asarray(line.polygon, np.float32))
    return crop, text[:at], text[at + len(value):]


def rate(acc, group: str) -> float:
    hits, total = acc.by_group()[group]
    return hits / total


@pytest.fixture(scope="session")
def idcard_truth():
    from backoffice.accuracy import load_truth

    return load_truth(FIXTURES / "idcards" / "truth.jsonl")


def _pg_available() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture
def use_key(monkeypatch):
    """Switch the configured key ring (None: encryption off) for the rest of the test."""

    def switch(spec: str | None) -> None:
        if spec is None:
            monkeypatch.delenv("BACKOFFICE_ENCRYPTION_KEY", raising=False)
        else:
            monkeypatch.setenv("BACKOFFICE_ENCRYPTION_KEY", spec)
        get_settings.cache_clear()

    yield switch
    monkeypatch.delenv("BACKOFFICE_ENCRYPTION_KEY", raising=False)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    import psycopg

    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; the at-scale path "
                    f"must be tested: {PG_HOW_TO}")
    name = f"backoffice_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    from backoffice.runtime import db_engine

    db_engine.cache_clear()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for all flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    """A fresh store on SQLite, then on a fresh PostgreSQL database (a test module may
    define its own `engine` instead)."""
    from outbox_support import fresh_pg_database

    import backoffice.outbox  # noqa: F401  (the outbox table, for approvals)
    from backoffice.store import make_engine

    if request.param == "sqlite":
        yield make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        return
    with fresh_pg_database(PG_ADMIN_URL) as url:
        eng = make_engine(url)
        yield eng
        eng.dispose()
