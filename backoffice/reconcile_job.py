"""The customer-master reconciliation job: read both masters, reconcile, write the report.

The logic is :mod:`validators.reconcile` (pure, set-based); this module does the I/O.

**Inputs**, each from a CSV file (UTF-8 with an optional BOM, or ``--encoding``; a header
row) or from a SQL table
through a SQLAlchemy URL (SQLite by default, PostgreSQL works; ``postgresql://`` URLs
use psycopg 3):

* the core system's master: ``id_number,name,birth_date,phone`` (18-digit numbers;
  ``phone`` optional);
* the claims system's master: ``insured_id,name,birth_date,phone,policy_count``
  (15- or 18-digit numbers; ``insured_id_number`` or ``id_number`` are accepted for the
  number, ``insured_name`` for the name; ``phone`` and ``policy_count`` optional,
  ``policy_count`` goes through to the report).

Dates are YYYY-MM-DD (SQL ``DATE`` columns work too). Other columns are ignored. The
files are read in chunks straight into compact columns (int64 keys, int32 dates), so
memory grows with the rows, not with the text.

**Outputs**, in the output folder:

* ``summary.json``: counts per class, mismatched fields, invalid numbers, timings.
  No personal data.
* ``exceptions.csv``: one line per outcome that is not ``matched`` (a pair is one line;
  an ambiguous group one line per row), with the class, the reason, the normalised key,
  the row positions (0-based, header not counted; for SQL sources in the order read) and
  **the full personal data of both sides**. It is the file the bank keeps under its
  controls (an access-restricted folder, its retention rules); it must not be mailed,
  pasted into tickets or published. Everything this job prints or logs, and what the
  ``reconcile-masters`` flow publishes as artifacts, is masked with
  :mod:`backoffice.masking` (:func:`masked_sample`).

  With encryption at rest configured (``BACKOFFICE_ENCRYPTION_KEY``) the file is written
  as the AES-GCM envelope of :mod:`backoffice.file_crypto` (same key ring as the store,
  bound to ``reconcile/exceptions.csv``), readable by the people who hold the key:
  ``backoffice keys decrypt-file DIR/exceptions.csv --out FILE`` on a controlled
  machine, or :func:`read_exceptions` in code. Its values are needed in full (an
  operator corrects the masters from it): masking is not an option. The report is built
  in memory, then sealed and written atomically (owner-only, 0600): nothing of it in
  clear touches the disk; the memory peak grows by two to three times the file's size
  (the text, its UTF-8 bytes, the ciphertext): a few hundred MB for a 10-million-row
  run with 1 % exceptions. Without a key the file is streamed as before.
  ``backoffice keys rotate`` re-encrypts the files under the data folder's
  ``reconcile/`` (the flow's default output) and those of its ``--path`` folders.
  ``summary.json`` holds no personal data and stays plaintext.

CLI (``cli/reconcile.py``, mounted as ``backoffice reconcile``)::

    backoffice reconcile run --core core.csv --claims claims.csv --out DIR
    backoffice reconcile run --core-url sqlite:///core.db --core-table core_customers \\
        --claims-url postgresql://... --claims-table claims_insured --out DIR
"""

from __future__ import annotations

import codecs
import datetime
import io
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from domain.masking import mask_id_number, mask_value
from validators.reconcile import (
    FixedText,
    IdStatus,
    Master,
    Outcome,
    Reconciliation,
    describe,
    key_text,
    reconcile,
)

__all__ = [
    "CLAIMS_SCHEMA",
    "CORE_SCHEMA",
    "MasterSchema",
    "ReconcileReport",
    "masked_sample",
    "read_exceptions",
    "read_master_csv",
    "read_master_sql",
    "reconcile_files",
    "reconcile_tables",
    "run_job",
    "write_master_sql",
]

CHUNK_ROWS = 250_000
BLOCK_BYTES = 4 << 20
# Widest field, in bytes, the plain reader copies out; wider goes to pandas' parser.
_FIELD_BYTES = {"name": 1024}
_DELIMITERS = bytes(1 if b in b",\n" else 0 for b in range(256))
SAMPLE_PER_CLASS = 20


@dataclass(frozen=True)
class MasterSchema:
    """Which columns of a master hold what: accepted names per role, first found wins."""

    side: str
    id_number: tuple[str, ...]
    name: tuple[str, ...] = ("name",)
    birth_date: tuple[str, ...] = ("birth_date",)
    phone: tuple[str, ...] = ("phone",)
    carry: tuple[str, ...] = ()

    def resolve(self, columns: list[str]) -> dict[str, str | None]:
        """Map roles to the source's column names; raise ValueError if one is missing."""
        have = {c.strip().lower(): c for c in columns}
        roles: dict[str, str | None] = {}
        for role in ("id_number", "name", "birth_date", "phone"):
            found = next((have[a] for a in getattr(self, role) if a in have), None)
            if found is None and role != "phone":
                raise ValueError(f"{self.side} master: no {role} column "
                                 f"(one of {', '.join(getattr(self, role))}); has {columns}")
            roles[role] = found
        for extra in self.carry:
            roles[f"carry:{extra}"] = have.get(extra)
        return roles


CORE_SCHEMA = MasterSchema(side="core", id_number=("id_number",))
CLAIMS_SCHEMA = MasterSchema(side="claims", id_number=("insured_id", "insured_id_number",
                                                       "id_number"),
                             name=("name", "insured_name"), carry=("policy_count",))
#: Report column names of each side's number, as their systems call it.
_ID_COLUMN = {"core": "id_number", "claims": "insured_id"}


def _master_from_frame(frame: pd.DataFrame, roles: dict[str, str | None],
                       today: datetime.date | None) -> Master:
    phone = roles["phone"]
    carry = {k.split(":", 1)[1]: frame[c] for k, c in roles.items()
             if k.startswith("carry:") and c is not None}
    return Master.from_columns(frame[roles["id_number"]], frame[roles["name"]],
                               frame[roles["birth_date"]],
                               frame[phone] if phone else None, carry=carry, today=today)


class _NotPlain(Exception):
    """The file needs a real CSV parser: quotes, blank lines, ragged rows, huge fields."""


def _plain_block(data: bytes, ncol: int, wanted: dict[str, int]) -> dict[str, FixedText]:
    """The wanted columns of a block of whole lines of a plain CSV file, as byte matrices.

    Plain: no quote characters, every line with exactly `ncol` fields. The field
    boundaries come from one vectorised scan for commas and newlines; each field is then
    copied out with one fancy index (a window view of the block, no per-row Python);
    the bytes after a field's end are left as they are (FixedText allows it).
    """
    if b'"' in data:
        raise _NotPlain("quoted fields")
    if b"\r" in data:  # CRLF line ends
        data = data.replace(b"\r", b"")
    buf = np.frombuffer(data, dtype=np.uint8)
    delims = np.flatnonzero(np.frombuffer(data.translate(_DELIMITERS), dtype=np.bool_))
    newline = buf[delims] == 0x0A
    rows = int(newline.sum())
    if len(delims) != rows * ncol or not newline.reshape(rows, ncol)[:, -1].all():
        raise _NotPlain("ragged rows or blank lines")
    ends = delims.reshape(rows, ncol)
    line_starts = np.concatenate([[0], ends[:-1, -1] + 1])
    fields = {}
    for role, j in wanted.items():
        start = line_starts if j == 0 else ends[:, j - 1] + 1
        length = ends[:, j] - start
        width = int(length.max()) if rows else 0
        if width > _FIELD_BYTES.get(role, 64):
            raise _NotPlain(f"a {role} of {width} bytes")
        fields[role] = (start, length, width)
    widest = max((w for _, _, w in fields.values()), default=0)
    padded = np.concatenate([buf, np.zeros(widest + 1, np.uint8)])
    out = {}
    for role, (start, length, width) in fields.items():
        mat = sliding_window_view(padded, max(width, 1))[start][:, :width]
        out[role] = FixedText(mat, length.astype(np.int64))
    return out


def _plain_csv(path: Path, schema: MasterSchema, today: datetime.date | None) -> list[Master]:
    """Read a plain CSV file block by block into masters; raise _NotPlain if it is not."""
    with path.open("rb") as f:
        header = f.readline().decode("utf-8-sig").rstrip("\r\n")
        if '"' in header:
            raise _NotPlain("quoted header")
        columns = header.split(",")
        roles = schema.resolve(columns)
        wanted = {role: columns.index(col) for role, col in roles.items() if col is not None}
        parts: list[Master] = []
        rest = b""
        while True:
            block = f.read(BLOCK_BYTES)
            data = rest + block
            if block:
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
            elif data and not data.endswith(b"\n"):
                data += b"\n"
            if data:
                cols = _plain_block(data, len(columns), wanted)
                carry = {k.split(":", 1)[1]: v for k, v in cols.items() if k.startswith("carry:")}
                parts.append(Master.from_columns(
                    cols["id_number"], cols["name"], cols["birth_date"], cols.get("phone"),
                    carry=carry, today=today))
            if not block:
                return parts


def read_master_csv(path: str | Path, schema: MasterSchema, *, chunk_rows: int = CHUNK_ROWS,
                    encoding: str = "utf-8", today: datetime.date | None = None) -> Master:
    """Read one master from a CSV file, block by block, into compact columns.

    A plain UTF-8 file (no quotes, one record a line: what the systems' exports are) is
    read with a vectorised byte scanner; any other (quoted fields, another encoding such
    as ``gb18030``) goes through pandas' CSV parser.
    """
    path = Path(path)
    utf8 = codecs.lookup(encoding).name == "utf-8"
    try:
        if not utf8:
            raise _NotPlain(f"encoding {encoding}")
        parts = _plain_csv(path, schema, today)
    except _NotPlain:
        encoding = "utf-8-sig" if utf8 else encoding
        header = pd.read_csv(path, nrows=0, encoding=encoding).columns.tolist()
        roles = schema.resolve(header)
        usecols = sorted({c for c in roles.values() if c is not None})
        parts = [
            _master_from_frame(chunk, roles, today)
            for chunk in pd.read_csv(path, usecols=usecols, dtype=object, na_filter=False,
                                     encoding=encoding, chunksize=chunk_rows)
        ]
    return Master.concat(parts) if parts else _empty_master(schema)


def _empty_master(schema: MasterSchema) -> Master:
    return Master.from_columns([], [], [], [], carry={c: [] for c in schema.carry})


def _engine_url(url: str) -> str:
    """psycopg 3 is the PostgreSQL driver here; a bare postgresql:// means it."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare):]
    return url


def _make_engine(url: str):
    import sqlalchemy as sa

    return sa.create_engine(_engine_url(url))


def read_master_sql(url: str, table: str, schema: MasterSchema, *,
                    chunk_rows: int = CHUNK_ROWS, today: datetime.date | None = None) -> Master:
    """Read one master from a SQL table (every column cast to text), chunk by chunk."""
    import sqlalchemy as sa

    engine = _make_engine(url)
    try:
        columns = [c["name"] for c in sa.inspect(engine).get_columns(table)]
        roles = schema.resolve(columns)
        wanted = sorted({c for c in roles.values() if c is not None})
        query = sa.select(*(sa.cast(sa.column(c), sa.String).label(c) for c in wanted)
                          ).select_from(sa.table(table))
        parts = []
        with engine.connect() as conn:
            conn = conn.execution_options(stream_results=True)
            for chunk in pd.read_sql_query(query, conn, chunksize=chunk_rows, dtype=object):
                parts.append(_master_from_frame(chunk.fillna(""), roles, today))
    finally:
        engine.dispose()
    return Master.concat(parts) if parts else _empty_master(schema)


def write_master_sql(csv_path: str | Path, url: str, table: str, *,
                     chunk_rows: int = CHUNK_ROWS) -> int:
    """Copy a master's CSV file into a SQL table (replacing it), all columns as text.

    A convenience for tests, benchmarks and sandbox set-ups; returns the row count.
    """
    engine = _make_engine(url)
    rows = 0
    try:
        with engine.begin() as conn:
            for i, chunk in enumerate(pd.read_csv(csv_path, dtype=str, keep_default_na=False,
                                                  encoding="utf-8-sig", chunksize=chunk_rows)):
                chunk.to_sql(table, conn, if_exists="replace" if i == 0 else "append",
                             index=False, chunksize=10_000)
                rows += len(chunk)
    finally:
        engine.dispose()
    return rows


# --- the report ---------------------------------------------------------------------

@dataclass
class ReconcileReport:
    """What a run produced: the summary (counts only), the files, a sample of exceptions.

    ``sample`` holds up to a few rows per class *with full personal data*: pass it
    through :func:`masked_sample` before showing it to anyone.
    """

    summary: dict
    out_dir: Path
    summary_path: Path
    exceptions_path: Path
    sample: pd.DataFrame = field(repr=False)
    result: Reconciliation | None = field(default=None, repr=False)


def _side_columns(master: Master, rows: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """The report columns of one side for `rows` (-1: no row on this side: blank)."""
    n = len(rows)
    have = np.flatnonzero(rows >= 0)
    r = rows[have]

    def column(values: np.ndarray, blank: object = "") -> np.ndarray:
        out = np.full(n, blank, dtype=object)
        out[have] = values
        return out

    status = np.array([s.name.lower() for s in IdStatus], dtype=object)
    cols = {
        f"{side}_row": column(r, blank=""),
        f"{side}_{_ID_COLUMN[side]}": column(master.ids.text(r)),
        f"{side}_id_status": column(status[master.ids.status[r]]),
        f"{side}_name": column(master.name_text(r)),
        f"{side}_birth_date": column(master.birth_text(r)),
        f"{side}_phone": column(master.phone_text(r)),
    }
    for name, values in master.carry.items():
        taken = values[r]
        if taken.dtype.kind == "S":
            taken = np.strings.decode(taken, "utf-8", "replace")
        cols[f"{side}_{name}"] = column(taken)
    return cols


def _reason_text(reasons: np.ndarray, statuses: np.ndarray) -> np.ndarray:
    codes = reasons.astype(np.int64) * 256 + statuses.astype(np.int64)
    unique, inverse = np.unique(codes, return_inverse=True)
    texts = np.array([describe(int(c) // 256, int(c) % 256) for c in unique], dtype=object)
    return texts[inverse]


def _take(values: np.ndarray, rows: np.ndarray, blank: int) -> np.ndarray:
    """values[rows], with `blank` where a row is -1 (no row on that side)."""
    out = np.full(len(rows), blank, dtype=values.dtype)
    have = rows >= 0
    out[have] = values[rows[have]]
    return out


def _exception_frames(core: Master, claims: Master, result: Reconciliation
                      ) -> Iterator[pd.DataFrame]:
    """One frame per class that is not ``matched``: the lines of exceptions.csv."""
    for outcome in Outcome:
        if outcome is Outcome.MATCHED:
            continue
        c_rows = np.flatnonzero(result.core_outcome == outcome)
        if outcome in (Outcome.MISMATCH, Outcome.MATCHED_WITH_TYPO):
            m_rows = result.core_partner[c_rows]
        else:
            m_only = np.flatnonzero(result.claims_outcome == outcome)
            c_rows = np.concatenate([c_rows, np.full(len(m_only), -1)])
            m_rows = np.concatenate([np.full(len(c_rows) - len(m_only), -1), m_only])
        if len(c_rows) == 0:
            continue
        key = np.where(c_rows >= 0, _take(core.ids.key, c_rows, -1),
                       _take(claims.ids.key, m_rows, -1))
        reason = np.where(c_rows >= 0, _take(result.core_reason, c_rows, 0),
                          _take(result.claims_reason, m_rows, 0))
        status = _take(claims.ids.status, m_rows, 0)
        frame = pd.DataFrame({
            "class": outcome.name.lower(),
            "reason": _reason_text(reason, status),
            "key": key_text(key),
            **_side_columns(core, c_rows, "core"),
            **_side_columns(claims, m_rows, "claims"),
        })
        if outcome is Outcome.AMBIGUOUS:  # a group's rows next to each other
            frame = frame.sort_values(["key", "core_row", "claims_row"], kind="stable",
                                      key=lambda s: s.astype(str))
        yield frame


def _status_counts(master: Master) -> dict[str, int]:
    counts = np.bincount(master.ids.status, minlength=len(IdStatus))
    return {s.name.lower(): int(counts[s]) for s in IdStatus if s and counts[s]}


def _forms(master: Master) -> dict[str, int]:
    length = master.ids.length
    return {"18": int((length == 18).sum()), "15": int((length == 15).sum()),
            "other": int((length == 0).sum())}


def run_job(load_core, load_claims, out_dir: str | Path, *, sources: dict | None = None,
            sample_per_class: int = SAMPLE_PER_CLASS) -> ReconcileReport:
    """Load both masters (callables returning a Master), reconcile, write the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    core = load_core()
    timings["read_core"] = time.perf_counter() - start
    mark = time.perf_counter()
    claims = load_claims()
    timings["read_claims"] = time.perf_counter() - mark
    mark = time.perf_counter()
    result = reconcile(core, claims)
    timings["reconcile"] = time.perf_counter() - mark
    mark = time.perf_counter()
    exceptions_path = out_dir / "exceptions.csv"
    samples = []
    exception_lines = 0
    ring = _keyring()
    # With a key the report is built in memory and only its envelope is written.
    with (exceptions_path.open("w", encoding="utf-8", newline="") if ring is None
          else io.StringIO(newline="")) as f:
        header = True
        for frame in _exception_frames(core, claims, result):
            frame.to_csv(f, index=False, header=header)
            header = False
            exception_lines += len(frame)
            samples.append(frame.head(sample_per_class))
        if header:  # nothing but matches: still a file with its header
            f.write("class,reason,key\n")
        if ring is not None:
            from backoffice import file_crypto

            file_crypto.write_file(exceptions_path, f.getvalue().encode("utf-8"),
                                   file_crypto.EXPORT_CONTEXT, ring=ring, mode=0o600)
    timings["write_report"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start
    counts = result.counts()
    summary = {
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "sources": sources or {},
        "core_rows": len(core),
        "claims_rows": len(claims),
        "classes": counts,
        "mismatch_fields": result.mismatch_fields(),
        "typo_matches": result.typo_matches(),
        "invalid_claims_numbers": _status_counts(claims),
        "invalid_core_numbers": _status_counts(core),
        "claims_number_forms": _forms(claims),
        "exception_lines": exception_lines,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "files": {"summary": "summary.json", "exceptions": exceptions_path.name},
    }
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), "utf-8")
    sample = pd.concat(samples, ignore_index=True) if samples else pd.DataFrame()
    return ReconcileReport(summary=summary, out_dir=out_dir, summary_path=summary_path,
                           exceptions_path=exceptions_path, sample=sample, result=result)


def _keyring():
    """The configured key ring for encryption at rest (None: off)."""
    from backoffice.crypto import active_keyring

    return active_keyring()


def read_exceptions(path: str | Path) -> bytes:
    """The bytes of an ``exceptions.csv`` as written: decrypted when it is encrypted at
    rest (with the configured key ring), as it is otherwise."""
    from backoffice import file_crypto

    return file_crypto.read_file(path, file_crypto.EXPORT_CONTEXT)


def safe_url(url: str) -> str:
    """The URL without its password, for summaries and logs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(_engine_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable url>"


def reconcile_files(core_csv: str | Path, claims_csv: str | Path, out_dir: str | Path, *,
                    encoding: str = "utf-8", today: datetime.date | None = None
                    ) -> ReconcileReport:
    """Reconcile two CSV masters (see the module docstring for their columns)."""
    return run_job(lambda: read_master_csv(core_csv, CORE_SCHEMA, encoding=encoding,
                                           today=today),
                   lambda: read_master_csv(claims_csv, CLAIMS_SCHEMA, encoding=encoding,
                                           today=today), out_dir,
                   sources={"core": str(core_csv), "claims": str(claims_csv)})


def reconcile_tables(core_url: str, core_table: str, claims_url: str, claims_table: str,
                     out_dir: str | Path, *, today: datetime.date | None = None
                     ) -> ReconcileReport:
    """Reconcile two masters held in SQL tables (possibly in two databases)."""
    return run_job(lambda: read_master_sql(core_url, core_table, CORE_SCHEMA, today=today),
                   lambda: read_master_sql(claims_url, claims_table, CLAIMS_SCHEMA,
                                           today=today),
                   out_dir, sources={"core": f"{safe_url(core_url)} table {core_table}",
                                     "claims": f"{safe_url(claims_url)} table {claims_table}"})


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _mask_birth_date(value: object) -> str:
    text = "" if _blank(value) else str(value)
    return text[:4] + "-**-**" if len(text) >= 4 else text


def masked_sample(sample: pd.DataFrame, limit_per_class: int | None = None) -> list[dict]:
    """Rows of a report's sample with every personal value masked, for people and logs."""
    if sample.empty:
        return []
    if limit_per_class is not None:
        sample = sample.groupby("class", sort=False).head(limit_per_class)
    rows = []
    for record in sample.to_dict("records"):
        row = {}
        for col, value in record.items():
            if col.endswith(("_id_number", "_insured_id")):
                row[col] = mask_id_number(str(value)) if value else ""
            elif col.endswith("_name"):
                row[col] = mask_value("name", str(value)) if value else ""
            elif col.endswith("_phone"):
                row[col] = mask_value("phone", str(value)) if value else ""
            elif col.endswith("_birth_date"):
                row[col] = _mask_birth_date(value)
            elif col == "key":
                row[col] = mask_id_number(str(value)) if value else ""
            elif _blank(value):
                row[col] = ""
            else:
                row[col] = value.item() if isinstance(value, np.generic) else value
        rows.append(row)
    return rows
