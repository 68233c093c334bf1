"""SQL connector: insert into a system's own tables, in one transaction with the key.

For systems without an API. The idempotency key is inserted first into the system's
idempotency table (the one its API also uses), then the record; both commit together or
not at all. A key already there means an earlier attempt committed: its stored result is
returned and nothing is inserted. Two concurrent attempts meet at the key's UNIQUE
constraint: one inserts, the other waits and then replays.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from backoffice.connectors.base import (
    HeldRecord,
    LookupUnavailable,
    Outgoing,
    PermanentError,
    PostResult,
    TransientError,
    request_hash,
)
from backoffice.connectors.config import _IDENTIFIER, SqlTarget
from backoffice.connectors.mapping import map_payload


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise PermanentError(f"not an SQL identifier: {name!r}")
    return f'"{name}"'


class SqlConnector:
    """A target reached through its database."""

    def __init__(self, target: str, config: SqlTarget, engine: Engine | None = None) -> None:
        self.target = target
        self.config = config
        if engine is None:
            args = {"timeout": 30, "check_same_thread": False} \
                if config.url.startswith("sqlite") else {}
            engine = create_engine(config.url, connect_args=args, pool_pre_ping=True)
        self.engine = engine

    def __repr__(self) -> str:
        return f"SqlConnector({self.target!r}, {self.config.table!r})"

    # --- lookup side ---------------------------------------------------------------

    def find(self, entity: str, criteria: Mapping[str, Any]) -> list[dict[str, Any]]:
        spec = self.config.lookups.get(entity)
        if spec is None or spec.table is None:
            raise LookupUnavailable(f"{self.target} has no lookup for {entity!r}")
        columns = ", ".join(_ident(c) for c in spec.columns) if spec.columns else "*"
        where, params = [], {}
        for i, (name, value) in enumerate(criteria.items()):
            column = _ident(spec.params.get(name, name))
            values = value if isinstance(value, list | tuple) else [value]
            marks = []
            for j, v in enumerate(values):
                params[f"p{i}_{j}"] = v
                marks.append(f":p{i}_{j}")
            where.append(f"{column} IN ({', '.join(marks)})")
        sql = f"SELECT {columns} FROM {_ident(spec.table)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        try:
            with self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(text(sql), params)]
        except DBAPIError as exc:
            raise LookupUnavailable(f"{self.target} lookup {entity}: {type(exc.orig).__name__}") \
                from None

    # --- post side -----------------------------------------------------------------

    def post(self, message: Outgoing) -> PostResult:
        c = self.config
        body = map_payload(c.mapping, message, self.find)
        digest = request_hash(body)
        row = {**body, c.key_column: message.key}
        columns = list(row)
        insert = text(f"INSERT INTO {_ident(c.table)} ({', '.join(map(_ident, columns))}) "
                      f"VALUES ({', '.join(f':c{i}' for i in range(len(columns)))}) "
                      f"RETURNING {_ident(c.id_column)}")
        values = {f"c{i}": row[name] for i, name in enumerate(columns)}
        table = _ident(c.idempotency_table)
        now = datetime.now(UTC).isoformat()
        try:
            with self.engine.connect() as conn:
                try:
                    with conn.begin():
                        conn.execute(text(f"INSERT INTO {table} (key, request_hash, "
                                          "status_code, response, created_at) "
                                          "VALUES (:k, :h, 201, '{}', :t)"),
                                     {"k": message.key, "h": digest, "t": now})
                        remote = conn.execute(insert, values).scalar_one()
                        result = json.dumps({c.id_column: remote})
                        conn.execute(text(f"UPDATE {table} SET response = :r WHERE key = :k"),
                                     {"r": result, "k": message.key})
                    return PostResult(remote_id=str(remote), status_code=201)
                except IntegrityError:
                    pass  # the key is there: an earlier attempt committed
                with conn.begin():
                    found = conn.execute(text(f"SELECT request_hash, response FROM {table} "
                                              "WHERE key = :k"), {"k": message.key}).first()
                if found is None:
                    raise PermanentError(f"integrity error inserting into {c.table}")
                if found.request_hash != digest:
                    raise PermanentError("idempotency key reused with a different payload")
                remote = json.loads(found.response).get(c.id_column)
                return PostResult(remote_id=None if remote is None else str(remote),
                                  replayed=True, status_code=200)
        except OperationalError as exc:
            raise TransientError(f"database unavailable ({type(exc.orig).__name__})") from None
        except DBAPIError as exc:
            raise PermanentError(f"database refused the record ({type(exc.orig).__name__})") \
                from None

    # --- reconciliation ------------------------------------------------------------

    def held(self) -> Iterator[HeldRecord]:
        c = self.config
        ref = _ident(c.ref_column) if c.ref_column else "NULL"
        sql = (f"SELECT {_ident(c.key_column)} AS k, {_ident(c.id_column)} AS r, {ref} AS s "
               f"FROM {_ident(c.table)} WHERE {_ident(c.key_column)} IS NOT NULL")
        with self.engine.connect() as conn:
            for row in conn.execute(text(sql)):
                yield HeldRecord(key=row.k, remote_id=str(row.r), source_ref=row.s)

    def close(self) -> None:
        self.engine.dispose()
