"""Helpers for the outbox tests."""

from __future__ import annotations

import contextlib
import uuid

from backoffice.sandbox.synthetic import Batch, make_documents  # noqa: F401


@contextlib.contextmanager
def fresh_pg_database(admin_url: str):
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"bo_outbox_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
