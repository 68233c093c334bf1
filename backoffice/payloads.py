"""Small payloads the orchestrator passes between hosts, kept in the store's database.

A document handed to a reader on another host travels as a Prefect task run; Prefect
keeps that run's parameters (and its small result) in a file system every host must
reach. With ``BACKOFFICE_DOCUMENT_STORAGE=store`` that file system is this table, in the
store's database (the one shared thing every host already has); see
``flows.read_document.shared_task_storage``. The payloads name documents by id only:
nothing personal is kept here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, LargeBinary, delete
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel


class TaskPayload(SQLModel, table=True):
    __tablename__ = "task_payload"

    key: str = Field(primary_key=True, max_length=400)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def write(engine: Engine, key: str, data: bytes) -> None:
    """Write (or replace) one payload."""
    with Session(engine) as session:
        row = session.get(TaskPayload, key)
        if row is None:
            session.add(TaskPayload(key=key, data=data))
        else:
            row.data, row.created_at = data, datetime.now(UTC)
        session.commit()


def read(engine: Engine, key: str) -> bytes:
    """One payload's bytes; a missing key is FileNotFoundError, as a file system says."""
    with Session(engine) as session:
        row = session.get(TaskPayload, key)
        if row is None:
            raise FileNotFoundError(f"no task payload {key!r} in the store")
        return row.data


def purge(engine: Engine, older_than: timedelta) -> int:
    """Delete payloads older than ``older_than`` (finished runs no longer need them)."""
    cutoff = datetime.now(UTC) - older_than
    with Session(engine) as session:
        n = session.execute(delete(TaskPayload).where(TaskPayload.created_at < cutoff)).rowcount
        session.commit()
    return n or 0
