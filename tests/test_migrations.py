"""The store's migrations (issue #17): head equals the models; the last release's schema
(revision 0001, and the frozen DDL that release's ``create_all`` made) upgrades to head
keeping every row; stores made before migrations are adopted; one migrator at a time."""

from __future__ import annotations

import ast
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL, PG_HOW_TO, ROOT, _pg_available
from outbox_support import fresh_pg_database

from backoffice.migrations import (
    MODEL_MODULES,
    SCRIPTS,
    VERSION_TABLE,
    current,
    head,
    prepare_schema,
    schema_drift,
    schema_transaction,
    store_metadata,
    upgrade,
)
from backoffice.store import make_engine

DATA = Path(__file__).parent / "data"
BASELINE = {"auditevent", "audithead", "checkrow", "document", "document_blob",
            "document_risk", "fieldvalue", "outbox_message", "task_payload"}
SINCE_BASELINE = {"claim_case", "case_document", "case_key"}
AT = datetime(2026, 11, 30, 9, 15, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    """An empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not _pg_available():
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {PG_HOW_TO}")
    with fresh_pg_database(PG_ADMIN_URL) as pg_url:
        yield pg_url


@pytest.fixture
def bare(url):
    """An engine on the empty database that does not prepare the schema itself."""
    engine = make_engine(url, prepare=False)
    yield engine
    engine.dispose()


def assert_matches_models(engine, metadata=None) -> None:
    diffs = schema_drift(engine, metadata)
    assert not diffs, (
        "the models differ from the migrations' head: add a revision to "
        "backoffice/migrations/versions (python -m backoffice.migrations revision "
        "--autogenerate --rev-id NNNN -m '...' against a store at head, then check it); "
        f"differences: {diffs}")


def schema(engine) -> dict:
    """Tables, columns, keys, constraints and indexes (and PostgreSQL's enum types) as the
    database reports them, the version table left out. Columns by name: a column added by
    a revision comes last, by ``create_all`` where the model has it."""
    insp = sa.inspect(engine)
    out: dict = {}
    for name in sorted(set(insp.get_table_names()) - {VERSION_TABLE}):
        out[name] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"], c.get("default"))
                              for c in insp.get_columns(name)),
            "pk": insp.get_pk_constraint(name)["constrained_columns"],
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"])) for f in insp.get_foreign_keys(name)),
            "unique": sorted((u["name"] or "", tuple(u["column_names"]))
                             for u in insp.get_unique_constraints(name)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(name)),
        }
    if engine.dialect.name == "postgresql":
        out["enum types"] = sorted((e["name"], tuple(e["labels"])) for e in insp.get_enums())
    return out


def load_snapshot(engine) -> None:
    """The DDL the last release's ``create_all`` made (tests/data/schema_79e915e*.sql)."""
    if engine.dialect.name == "sqlite":
        sql = (DATA / "schema_79e915e.sql").read_text("utf-8")
        raw = engine.raw_connection()
        try:
            raw.driver_connection.executescript(sql)
            raw.commit()
        finally:
            raw.close()
    else:
        import psycopg

        sql = (DATA / "schema_79e915e.postgresql.sql").read_text("utf-8")
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)


def add_release_rows(engine) -> None:
    """Rows of every kind the last release wrote, through the tables as the database
    reflects them (no model of today)."""
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as conn:
        conn.execute(t["document"].insert(), [
            {"id": 1, "sha256": "a" * 64, "page": 0, "parent_id": None,
             "original_name": "scan.pdf", "stored_path": "/data/documents/a.pdf",
             "size_bytes": 2048, "format": "pdf", "source": "inbox", "batch": "b1",
             "status": "POSTED", "reason": None, "doc_type": "claim_form",
             "quality": {"blur": 0.1}, "ocr_lines": [["张三", 0.98]], "ocr_seconds": 1.5,
             "created_at": AT, "updated_at": AT, "lease_owner": None, "lease_until": None,
             "attempts": 1},
            {"id": 2, "sha256": "a" * 64, "page": 1, "parent_id": 1,
             "original_name": "scan.pdf", "stored_path": "store:" + "a" * 64,
             "size_bytes": 0, "format": None, "source": "cli", "batch": None,
             "status": "IN_REVIEW", "reason": "low confidence: name",
             "doc_type": "id_card_front", "quality": None, "ocr_lines": None,
             "ocr_seconds": None, "created_at": AT, "updated_at": AT, "lease_owner": "w1",
             "lease_until": AT, "attempts": 2},
        ])
        conn.execute(t["document_blob"].insert(), [
            {"sha256": "a" * 64, "format": "pdf", "size_bytes": 4, "kid": None,
             "data": b"%PDF", "created_at": AT}])
        conn.execute(t["fieldvalue"].insert(), [
            {"id": 1, "document_id": 1, "name": "name", "value": "张三", "confidence": 0.97,
             "raw": "张 三", "corrections": ["spaces"], "boxes": [[0, 0, 10, 10]],
             "reviewed_value": None},
            {"id": 2, "document_id": 1, "name": "amount", "value": "120.50",
             "confidence": 0.9, "raw": None, "corrections": None, "boxes": None,
             "reviewed_value": "120.00"},
            {"id": 3, "document_id": 2, "name": "id_number", "value": "11010519491231002X",
             "confidence": 0.5, "raw": None, "corrections": None, "boxes": None,
             "reviewed_value": None},
        ])
        conn.execute(t["checkrow"].insert(), [
            {"id": 1, "document_id": 2, "rule": "id.checksum", "severity": "error",
             "passed": False, "message": "bad check digit", "fields": ["id_number"],
             "details": {"expected": "X"}}])
        conn.execute(t["document_risk"].insert(), [
            {"document_id": 2, "signals": {"photocopy": {"score": 0.1}}, "seconds": 0.2,
             "portrait_sha256": None, "portrait_region": [1, 2, 3, 4]}])
        conn.execute(t["auditevent"].insert(), [
            {"id": i, "at": AT, "actor": "system", "document_id": 1 if i < 3 else None,
             "action": "status", "data": {"to": "posted"} if i == 1 else None,
             "prev_hash": "" if i == 1 else f"{i - 1:064d}", "hash": f"{i:064d}"}
            for i in (1, 2, 3)])
        conn.execute(t["audithead"].insert(), [
            {"id": 1, "last_id": 3, "last_hash": f"{3:064d}", "count": 3, "updated_at": AT}])
        conn.execute(t["outbox_message"].insert(), [
            {"id": 1, "document_id": 1, "target": "claims",
             "payload": {"fields": {"amount": "120.00"}}, "payload_version": 1,
             "payload_sha256": "b" * 64, "idempotency_key": "doc-1:claims:v1",
             "status": "POSTED", "attempts": 1, "next_attempt_at": AT, "lease_owner": None,
             "lease_until": None, "last_error": None, "dead_reason": None, "posted_at": AT,
             "remote_id": "CL00000001", "replayed": False, "created_at": AT,
             "updated_at": AT}])
        conn.execute(t["task_payload"].insert(), [
            {"key": "runs/1/parameters", "data": b"\x00\x01", "created_at": AT}])
        if engine.dialect.name == "postgresql":  # rows inserted with explicit ids
            for name in ("document", "fieldvalue", "checkrow", "auditevent", "outbox_message"):
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"(SELECT max(id) FROM {name}))"))


def all_rows(engine) -> dict[str, list[dict]]:
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {name: [dict(row._mapping) for row in conn.execute(
                    sa.select(table).order_by(*table.primary_key.columns))]
                for name, table in meta.tables.items() if name != VERSION_TABLE}


def assert_kept(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> None:
    """Every row of ``before`` is in ``after`` with the same values (columns added since
    are not compared)."""
    for name, rows in before.items():
        assert [{k: row[k] for k in rows[0]} for row in after[name]] == rows, name


def use_upgraded_store(url: str) -> None:
    """The application opens the upgraded store and writes a claim case into it."""
    from sqlmodel import Session, select

    from backoffice.audit import append_audit
    from backoffice.store import Case, CaseDocument, Document, Status

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            page = session.get(Document, 2)
            assert page.status == Status.IN_REVIEW and page.parent_id == 1
            case = Case(ref="case-after-upgrade")
            session.add(case)
            session.flush()
            session.add(CaseDocument(document_id=2, case_id=case.id, page_route="in_review"))
            append_audit(session, "case.created", document_id=2)
            session.commit()
            case_id = case.id
        with Session(engine) as session:
            assert session.exec(select(CaseDocument)).one().case_id == case_id
    finally:
        engine.dispose()


# --- head and the models ------------------------------------------------------------------


def test_head_matches_the_models(bare):
    upgrade(bare, "0001")
    change = upgrade(bare)  # the revisions themselves, not the empty-store shortcut
    assert (change.before, change.after, change.action) == ("0001", head(), "upgraded")
    assert_matches_models(bare)


def test_a_model_change_without_a_revision_fails_the_check(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    changed = sa.MetaData()
    for table in store_metadata().sorted_tables:
        table.to_metadata(changed)
    changed.tables["document"].append_column(sa.Column("new_column", sa.String(20)))
    with pytest.raises(AssertionError, match="add a revision") as failed:
        assert_matches_models(engine, changed)
    assert "new_column" in str(failed.value)
    engine.dispose()


def test_an_empty_store_is_created_as_the_revisions_make_it(url, tmp_path):
    """The shortcut for an empty database (create_all, then a stamp at head) gives the
    same schema as running every revision."""
    shortcut = make_engine(url, prepare=False)
    migrated = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}", prepare=False)
    try:
        assert prepare_schema(shortcut).action == "created"
        assert current(shortcut) == head()
        if shortcut.dialect.name == "postgresql":
            with fresh_pg_database(PG_ADMIN_URL) as other:
                migrated.dispose()
                migrated = make_engine(other, prepare=False)
                upgrade(migrated, "0001")
                upgrade(migrated)
                assert schema(shortcut) == schema(migrated)
                migrated.dispose()
        else:
            upgrade(migrated, "0001")
            upgrade(migrated)
            assert schema(shortcut) == schema(migrated)
        again = prepare_schema(shortcut)
        assert (again.before, again.after, again.action) == (head(), head(), "none")
    finally:
        shortcut.dispose()
        migrated.dispose()


# --- the last release -----------------------------------------------------------------------


def test_revision_0001_is_what_the_last_release_created(url, tmp_path):
    """0001 against the DDL that 79e915e^'s create_all really made (tests/data)."""
    released = make_engine(url, prepare=False)
    load_snapshot(released)
    try:
        if released.dialect.name == "postgresql":
            with fresh_pg_database(PG_ADMIN_URL) as other:
                baseline = make_engine(other, prepare=False)
                upgrade(baseline, "0001")
                assert schema(baseline) == schema(released)
                baseline.dispose()
        else:
            baseline = make_engine(f"sqlite:///{tmp_path / 'baseline.db'}", prepare=False)
            upgrade(baseline, "0001")
            assert schema(baseline) == schema(released)
            baseline.dispose()
        assert set(schema(released)) - {"enum types"} == BASELINE
    finally:
        released.dispose()


@pytest.mark.parametrize("made_by", ["revision 0001", "the release's create_all"])
def test_upgrade_from_the_last_release_keeps_every_row(url, made_by):
    engine = make_engine(url, prepare=False)
    try:
        if made_by == "revision 0001":
            upgrade(engine, "0001")
        else:
            load_snapshot(engine)
        add_release_rows(engine)
        before = all_rows(engine)
        assert set(before) == BASELINE and all(before.values())

        change = prepare_schema(engine)  # what make_engine does at every start

        expected = "upgraded" if made_by == "revision 0001" else "adopted"
        assert (change.after, change.action) == (head(), expected)
        after = all_rows(engine)
        assert_kept(before, after)
        assert SINCE_BASELINE <= set(after)
        assert current(engine) == head()
    finally:
        engine.dispose()
    use_upgraded_store(url)


# --- stores made before migrations, the lock, SQLite's foreign keys ---------------------


def test_a_store_made_before_migrations_is_adopted_and_completed(tmp_path):
    """A store that ``create_all`` made after claim cases and before migrations (the 0002
    schema, no version table), by a process that never imported the outbox or the task
    payloads (so without their tables): adopted, the missing tables created, rows kept."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url, prepare=False)
    upgrade(engine, "0001")
    upgrade(engine, "0002")
    skipped = {"outbox_message", "task_payload"}
    with engine.begin() as conn:
        for name in (*skipped, VERSION_TABLE):
            conn.exec_driver_sql(f"DROP TABLE {name}")
    _fk_rows(engine)
    before = all_rows(engine)
    assert current(engine) is None and not skipped & set(before)
    change = prepare_schema(engine)
    assert (change.before, change.after, change.action) == (None, head(), "adopted")
    after = all_rows(engine)
    assert skipped <= set(after)
    assert_kept({name: rows for name, rows in before.items() if rows}, after)
    assert_matches_models(engine)
    engine.dispose()


def test_one_migrator_at_a_time(url):
    """Four processes' engines start together on an empty store: one creates it, the
    others wait for its lock and find it done."""
    gate = threading.Barrier(4)
    actions: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        engine = make_engine(url, prepare=False)
        try:
            gate.wait(timeout=30)
            actions.append(prepare_schema(engine).action)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(actions) == ["created", "none", "none", "none"]


def _fk_rows(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO document (id, sha256, page, original_name, stored_path, size_bytes, "
            "source, status, created_at, updated_at, attempts) VALUES (1, :sha, 0, 'a.png', "
            "'/x/a.png', 1, 'inbox', 'RECEIVED', :at, :at, 0)"), {"sha": "c" * 64, "at": AT})
        conn.execute(sa.text("INSERT INTO fieldvalue (id, document_id, name, confidence) "
                             "VALUES (1, 1, 'name', 0.9)"))


def test_sqlite_batch_copy_of_a_referenced_table(tmp_path):
    """A later revision may rebuild ``document`` (SQLite's batch mode copies the table):
    it runs with foreign keys off, keeps the rows, and the pool gets them back on."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    _fk_rows(engine)
    with schema_transaction(engine) as conn:
        ops = Operations(MigrationContext.configure(conn))
        with ops.batch_alter_table("document", recreate="always") as batch:
            batch.alter_column("original_name", type_=sa.Text(), existing_nullable=False)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM fieldvalue").scalar() == 1
        assert conn.exec_driver_sql("SELECT original_name FROM document").scalar() == "a.png"
        assert not conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    engine.dispose()


def test_sqlite_migration_that_breaks_a_foreign_key_is_rolled_back(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    _fk_rows(engine)
    with (pytest.raises(RuntimeError, match="broke 1 foreign key"),
          schema_transaction(engine) as conn):
        conn.exec_driver_sql("DELETE FROM document")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM document").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


# --- the package -----------------------------------------------------------------------------


def test_every_module_with_store_tables_is_listed():
    """Each module of ours that defines a table is in MODEL_MODULES (so ``create_all`` and
    the comparison with head see it). The simulators (backoffice/sandbox) define none:
    their databases are their own, through sqlite3."""
    defining = set()
    for path in (ROOT / "backoffice").rglob("*.py"):
        if "table=True" in path.read_text("utf-8"):
            defining.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert defining <= set(MODEL_MODULES), defining - set(MODEL_MODULES)
    assert not {m for m in defining if m.startswith("backoffice.sandbox")}


def test_revisions_import_only_sqlalchemy_and_alembic():
    revisions = sorted((SCRIPTS / "versions").glob("[0-9]*.py"))
    assert [p.name[:4] for p in revisions][:2] == ["0001", "0002"]
    for path in revisions:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""])
                for name in names:
                    assert name.split(".")[0] in {"__future__", "sqlalchemy", "alembic"}, (
                        f"{path.name} imports {name}: a revision must not import the models")


def test_cli_db_upgrade_and_current(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from backoffice.settings import get_settings
    from cli.main import app

    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        shown = runner.invoke(app, ["db", "current"])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout) == {"current": None, "head": head(),
                                            "up_to_date": False}
        done = runner.invoke(app, ["db", "upgrade"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout) == {"before": None, "after": head(),
                                           "action": "created"}
        shown = runner.invoke(app, ["db", "current"])
        assert json.loads(shown.stdout)["up_to_date"] is True
    finally:
        get_settings.cache_clear()
