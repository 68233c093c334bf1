"""The store's schema, migrated by Alembic: the revisions in ``versions/``.

:func:`prepare_schema` brings a store to the head revision; ``make_engine`` calls it, so
the server, the workers and the CLI all start on a current schema (``backoffice db
upgrade`` runs it alone). ``python -m backoffice.migrations`` is Alembic's own command
line on the store of the settings (``revision --autogenerate``, ``history``...): no
``alembic.ini``, the configuration is built here and the URL comes from the engine.

The store is every table on ``SQLModel.metadata``, which the modules of
:data:`MODEL_MODULES` fill. The downstream simulators (``backoffice.sandbox``) keep their
own SQLite files through ``sqlite3``: not the store, not migrated here. Revisions use
plain SQLAlchemy types (an encrypted column is String or JSON underneath; sqlmodel's
AutoString is String) and never import the models, which change after them.

- An empty database gets ``create_all`` and a stamp at head: one step instead of every
  revision (``tests/test_migrations.py`` holds head equal to the models).
- A store made by ``create_all`` before migrations (no version table) is adopted: the
  revisions up to ``0002`` create only the tables it lacks, then the rest run.
- One migrator at a time: PostgreSQL's advisory lock; SQLite's write lock
  (``BEGIN IMMEDIATE``). All of it in one transaction (SQLite and PostgreSQL both have
  transactional DDL): a failed upgrade leaves the schema as it was.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

#: The modules whose SQLModel tables are the store (a new one goes here and gets a revision).
MODEL_MODULES = ("backoffice.store", "backoffice.audit", "backoffice.outbox.table",
                 "backoffice.payloads", "backoffice.reviewers")
#: Alembic's revision record. Not the default ``alembic_version``: Prefect's server keeps
#: its own Alembic history under that name, and the two must never be confused.
VERSION_TABLE = "store_schema_version"
SCRIPTS = Path(__file__).resolve().parent

Action = Literal["none", "created", "adopted", "upgraded", "downgraded"]


@dataclass(frozen=True)
class SchemaChange:
    """What :func:`upgrade` did: the revision before (None: no version table), after, how."""

    before: str | None
    after: str | None
    action: Action


def store_metadata() -> MetaData:
    """The models' metadata, every table of the store registered."""
    from sqlmodel import SQLModel

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes a TypeDecorator (AutoString, UTCDateTime, EncryptedText,
    EncryptedJSON) as the plain SQLAlchemy type under it."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def alembic_config(*, connection: Connection | None = None, url: str | None = None):
    """Alembic's configuration for the store: the scripts in this package; the migrations
    run on ``connection`` (or, offline ``--sql``, for ``url``)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision."""
    return _scripts().get_current_head()


def _version(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def current(engine: Engine) -> str | None:
    """The store's revision; None when it has no version table (empty, or made before
    migrations)."""
    with engine.connect() as conn:
        return _version(conn)


@contextlib.contextmanager
def schema_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction holding the schema lock, committed at the end.

    PostgreSQL: an advisory lock (waits for another migrator). SQLite: the write lock
    (``BEGIN IMMEDIATE``, waiting up to the busy timeout), with foreign keys off as
    Alembic's batch copy of a referenced table needs (the pragma cannot change inside a
    transaction), and checked before the commit: no violation may be added.
    """
    from backoffice.store import SCHEMA_LOCK_KEY

    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            yield conn
            conn.commit()
            return
        fk_on = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            violations = _fk_violations(conn)
            yield conn
            added = _fk_violations(conn) - violations
            if added:
                raise RuntimeError(f"the migration broke {len(added)} foreign key(s), e.g. "
                                   f"{sorted(added)[:3]} (table, rowid, parent, fk): rolled back")
            conn.commit()
        finally:
            conn.rollback()
            conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if fk_on else 'OFF'}")
            conn.commit()


def _fk_violations(conn: Connection) -> set[tuple]:
    return {tuple(row) for row in conn.exec_driver_sql("PRAGMA foreign_key_check")}


def _stamp_head(conn: Connection) -> None:
    from alembic.runtime.migration import MigrationContext

    MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).stamp(
        _scripts(), "head")


def upgrade(engine: Engine, revision: str = "head") -> SchemaChange:
    """Upgrade the store to ``revision``, under the schema lock (see the module's notes)."""
    from alembic import command

    with schema_transaction(engine) as conn:
        before = _version(conn)
        target = head() if revision == "head" else revision
        if before == target:
            return SchemaChange(before, before, "none")
        empty = before is None and not (set(store_metadata().tables)
                                        & set(inspect(conn).get_table_names()))
        if empty and target == head():
            store_metadata().create_all(conn)
            _stamp_head(conn)
            return SchemaChange(None, target, "created")
        command.upgrade(alembic_config(connection=conn), revision)
        action = "upgraded" if before or empty else "adopted"
        return SchemaChange(before, _version(conn), action)


def downgrade(engine: Engine, revision: str) -> SchemaChange:
    """Downgrade the store to ``revision`` (``base``: nothing left), under the schema lock."""
    from alembic import command

    with schema_transaction(engine) as conn:
        before = _version(conn)
        command.downgrade(alembic_config(connection=conn), revision)
        return SchemaChange(before, _version(conn), "downgraded")


def prepare_schema(engine: Engine) -> SchemaChange:
    """Bring the store to head; cheap when it is there already (one query, no lock).

    SQLite may answer "database is locked" at once, without its busy wait, when a new
    file's first connections race (switching it to WAL): then it is tried again."""
    import time

    from sqlalchemy.exc import OperationalError

    attempt = 0
    while True:
        try:
            with engine.connect() as conn:
                at = _version(conn)
            if at is not None and at == head():
                return SchemaChange(at, at, "none")
            return upgrade(engine, "head")
        except OperationalError as exc:
            attempt += 1
            if engine.dialect.name != "sqlite" or "locked" not in str(exc) or attempt == 8:
                raise
            time.sleep(0.25 * attempt)


def schema_drift(engine: Engine, metadata: MetaData | None = None) -> list[Any]:
    """The differences between the store's schema and the models (``metadata``, default
    :func:`store_metadata`), as Alembic's ``compare_metadata`` lists them; empty when they
    agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "version_table": VERSION_TABLE})
        return compare_metadata(ctx, metadata if metadata is not None else store_metadata())
