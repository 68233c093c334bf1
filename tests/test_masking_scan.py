"""A full demo run leaves no unmasked personal value in Prefect or in its output.

`backoffice demo` runs in a subprocess on a fresh data folder (this is also the proof that
`make demo` works, bad-input corpus included), or, under `.ci/run`, the `make demo` that CI
has just run is scanned. Then every text column of every table of
Prefect's database (logs, artifacts, flow and task run parameters, states, results), the
files Prefect wrote (result storage), the quarantine's reason files and the demo's
stdout/stderr are searched for every personal value of the fixtures' ground truth.

In scope: everything Prefect holds and everything printed or logged. Out of scope, by
design: the store (`backoffice.db`, where full values legitimately live), the stored
originals (`documents/`, quarantined bytes `quarantine/*.bin`), the sandbox downstream
systems' own databases (`sandbox/`), and PaddleOCR's model cache.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT

_PERSONAL = {"name", "insured_name", "claimant_name", "account_name", "id_number",
             "insured_id_number", "phone", "account_number", "address"}
_OUT_OF_SCOPE_DIRS = {"documents", "sandbox", "paddlex"}


def personal_values() -> dict[str, str]:
    """Every personal value of the fixtures (value -> kind), with the 15-digit form of
    each ID number and each printed address line."""
    values: dict[str, str] = {}
    records = []
    for truth in ("idcards/truth.jsonl", "claims/truth.jsonl", "bad/expected.jsonl"):
        for line in (FIXTURES / truth).read_text("utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    for rec in records:
        for name, value in (rec.get("fields") or {}).items():
            if name not in _PERSONAL or not value:
                continue
            values[value] = name
            if name.endswith("id_number") and len(value) == 18:
                values[value[:6] + value[8:17]] = name + " (15-digit form)"
            if name == "address" and len(value) > 6:
                values[value[6:]] = "address (after the city)"
        for line in rec.get("address_lines") or []:
            if len(line) > 6:
                values[line] = "address line"
    return values


def _forms(value: str) -> list[str]:
    """The value as written plainly and as JSON writes it with ASCII escapes."""
    escaped = json.dumps(value)[1:-1]
    return [value] if escaped == value else [value, escaped]


class Scanner:
    def __init__(self, values: dict[str, str]):
        self.values = values
        self.needles = [(form, value) for value in values for form in _forms(value)]
        self.texts = 0
        self.found: list[tuple[str, str, str]] = []  # (where, kind, value)

    def scan(self, where: str, text: str) -> None:
        self.texts += 1
        for form, value in self.needles:
            if form in text:
                self.found.append((where, self.values[value], value))

    def scan_bytes(self, where: str, data: bytes) -> None:
        self.scan(where, data.decode("utf-8", "replace"))
        # Result storage keeps pickled/JSON payloads base64-encoded.
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if isinstance(doc, dict):
            for key in ("data", "result"):
                blob = doc.get(key)
                if isinstance(blob, str):
                    try:
                        raw = base64.b64decode(blob, validate=True)
                    except ValueError:
                        continue
                    self.scan(f"{where}:{key}(base64)", raw.decode("utf-8", "replace"))


def scan_sqlite(scanner: Scanner, path: Path) -> dict[str, int]:
    """Search every column of every table (values cast to text) of a SQLite file."""
    rows_per_table = {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            n = 0
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                n += 1
                for col, value in zip(cols, row, strict=True):
                    if value is None or isinstance(value, int | float):
                        continue
                    if isinstance(value, bytes):
                        scanner.scan_bytes(f"{path.name}:{table}.{col}", value)
                    else:
                        scanner.scan(f"{path.name}:{table}.{col}", str(value))
            rows_per_table[table] = n
    finally:
        conn.close()
    return rows_per_table


def test_the_scanner_finds_planted_values(tmp_path):
    """A negative control: values hidden the ways Prefect could store them are found."""
    values = personal_values()
    name = next(v for v, kind in values.items() if kind == "name")
    number = next(v for v, kind in values.items() if kind == "id_number")
    db = tmp_path / "p.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE log (id INTEGER, message TEXT, payload BLOB)")
    conn.execute("INSERT INTO log VALUES (1, ?, ?)",
                 (json.dumps({"m": f"hello {name}"}), b"x" + number[:6].encode()))
    conn.execute("INSERT INTO log VALUES (2, 'ok', ?)", ((number[:6] + number[8:17]).encode(),))
    conn.commit()
    conn.close()
    scanner = Scanner(values)
    scan_sqlite(scanner, db)
    scanner.scan_bytes("result.json", json.dumps(
        {"data": base64.b64encode(f"pickled {name}".encode()).decode()}).encode())
    found = {(where, kind) for where, kind, _ in scanner.found}
    assert found == {("p.db:log.message", "name"), ("p.db:log.payload",
                                                     "id_number (15-digit form)"),
                     ("result.json:data(base64)", "name")}


def _full_demo(tmp_path: Path) -> tuple[Path, str]:
    """(the demo's folder, all it printed) of a full `backoffice demo` on the fixtures.

    `.ci/run` runs `make demo` before `make test` and names that run here, so that CI does
    not run the same demo twice: ``BACKOFFICE_SCAN_DEMO`` is its data folder (the demo
    wrote ``demo/`` there) and ``BACKOFFICE_SCAN_DEMO_LOG`` the file holding its stdout
    and stderr. Without them (``make test`` alone), the demo runs here in a subprocess.
    """
    given = os.environ.get("BACKOFFICE_SCAN_DEMO")
    if given:
        output = Path(os.environ["BACKOFFICE_SCAN_DEMO_LOG"]).read_text("utf-8", "replace")
        return Path(given) / "demo", output
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "BACKOFFICE_", "PADDLE_PDX_CACHE"))}
    env.update(BACKOFFICE_DATA_DIR=str(tmp_path), COLUMNS="160")
    proc = subprocess.run([sys.executable, "-m", "cli", "demo"], check=False,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=1500)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    return tmp_path / "demo", output


@pytest.mark.ocr
@pytest.mark.integration
@pytest.mark.slow
def test_full_demo_leaves_no_unmasked_personal_value(tmp_path):
    demo, output = _full_demo(tmp_path)
    print("\n" + output[-6000:])
    assert "Traceback" not in output
    assert "Documents by status" in output and "quarantined" in output

    prefect_db = demo / "prefect" / "prefect.db"
    assert prefect_db.exists()
    scanner = Scanner(personal_values())
    rows = scan_sqlite(scanner, prefect_db)
    # The run really left data of every kind the scan is about.
    for table in ("log", "artifact", "flow_run", "task_run", "flow_run_state",
                  "task_run_state"):
        assert rows.get(table, 0) > 0, (table, rows)
    scanner.scan("demo stdout and stderr", output)
    files = 0
    for path in sorted(demo.rglob("*")):
        rel = path.relative_to(demo)
        if not path.is_file() or rel.parts[0] in _OUT_OF_SCOPE_DIRS:
            continue
        if rel.name.startswith("backoffice.db") or rel.name.startswith("prefect.db"):
            continue  # the store (out of scope) and Prefect's database (scanned by SQL)
        if rel.parts[0] == "quarantine" and path.suffix == ".bin":
            continue  # the quarantined originals themselves
        scanner.scan_bytes(str(rel), path.read_bytes())
        files += 1

    # Every bad input of the corpus has an outcome in the store (0 lost).
    from backoffice.demo import load_expected

    store = sqlite3.connect(f"file:{demo / 'backoffice.db'}?mode=ro", uri=True)
    names = {r[0]: r[1] for r in store.execute(
        "SELECT original_name, status FROM document WHERE page = 0")}
    duplicates = [r[0] for r in store.execute(
        "SELECT data FROM auditevent WHERE action = 'duplicate'")]
    # The demo's cross-system rules asked its sandbox systems (none was skipped).
    asked = {r[0] for r in store.execute(
        "SELECT rule, details FROM checkrow WHERE rule LIKE 'crossref.%'")
        if not json.loads(r[1] or "{}").get("skipped")}
    store.close()
    assert {"crossref.customer_exists", "crossref.policy_in_force"} <= asked, asked
    for rec in load_expected(FIXTURES / "bad"):
        if rec["outcome"] == "duplicate":
            assert any(rec["file"] in d for d in duplicates), rec["file"]
        else:
            assert f"bad/{rec['file']}" in names, rec["file"]

    print(f"\nmasking scan: {len(scanner.values)} personal values "
          f"({len(scanner.needles)} forms) searched in {scanner.texts} texts: "
          f"{sum(rows.values())} rows of {len(rows)} Prefect tables, {files} files, "
          f"stdout/stderr; unmasked found: {len(scanner.found)}")
    assert scanner.found == [], scanner.found[:20]
