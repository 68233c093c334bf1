"""What both sandbox systems share: their SQLite database, idempotency keys, fault injection.

Each system is a FastAPI app over its own SQLite file. Writes that take an
``Idempotency-Key`` run in one ``BEGIN IMMEDIATE`` transaction that records the key with
the response: a repeat (even a concurrent one) returns the first result, marked with the
``Idempotent-Replayed: true`` header, and creates nothing. A 4xx is not recorded: it
changed nothing, and the same request may be sent again.

Fault injection is an ASGI wrapper around the app, so the business code stays ordinary:

- ``error_rate``: answer 503 without doing anything;
- ``timeout_rate``: wait ``timeout_seconds`` (longer than the client waits), then do the
  work; the client has given up, and does not know whether it happened;
- ``slow_rate``: wait ``slow_seconds`` (shorter than the client waits), then answer;
- ``drop_rate``: do the work, commit, then drop the connection before the reply;
- ``reject_rate``: refuse the payload with 422, always the same for the same key.

The rates are per request and exclusive (their sum must not exceed 1). They apply to the
methods in ``methods`` (writes by default), never to ``/admin`` or ``/health``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from backoffice.connectors.base import request_hash

IDEMPOTENCY_SQL = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Faults(BaseModel):
    """Fault injection settings of one system, for one run."""

    error_rate: float = Field(0.0, ge=0, le=1, description="Share of requests answered 503.")
    timeout_rate: float = Field(0.0, ge=0, le=1)
    timeout_seconds: float = Field(5.0, ge=0, description="Longer than the client's timeout.")
    slow_rate: float = Field(0.0, ge=0, le=1)
    slow_seconds: float = Field(0.5, ge=0, description="Shorter than the client's timeout.")
    drop_rate: float = Field(0.0, ge=0, le=1, description="Committed, then the connection drops.")
    reject_rate: float = Field(0.0, ge=0, le=1, description="422 for this share of keys.")
    methods: list[str] = Field(default_factory=lambda: ["POST"])
    seed: int | None = None

    @model_validator(mode="after")
    def _sum(self) -> Faults:
        if self.error_rate + self.timeout_rate + self.slow_rate + self.drop_rate > 1:
            raise ValueError("error, timeout, slow and drop rates add up to more than 1")
        return self


class SystemDB:
    """The SQLite file of one system: one connection per thread, WAL, explicit transactions."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self.connect() as conn:
            conn.executescript(schema + IDEMPOTENCY_SQL)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        return conn

    def query(self, sql: str, params: tuple | list = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]


class Rejected(Exception):
    """The system refuses the payload (HTTP 422); nothing was written."""

    def __init__(self, message: str, loc: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc or ["body"]


def idempotent_write(db: SystemDB, key: str | None, body: dict[str, Any],
                     write: Callable[[sqlite3.Connection], dict[str, Any]],
                     status_code: int = 201) -> JSONResponse:
    """Run ``write`` once per idempotency key, in one transaction with the key's record."""
    if not key:
        raise HTTPException(400, "an Idempotency-Key header is required")
    if len(key) > 200:
        raise HTTPException(400, "Idempotency-Key longer than 200 characters")
    digest = request_hash(body)
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT request_hash, status_code, response FROM idempotency "
                           "WHERE key = ?", (key,)).fetchone()
        if row is not None:
            conn.execute("ROLLBACK")
            if row["request_hash"] != digest:
                raise HTTPException(409, "Idempotency-Key reused with a different payload")
            return JSONResponse(json.loads(row["response"]), status_code=row["status_code"],
                                headers={"Idempotent-Replayed": "true"})
        result = write(conn)
        conn.execute("INSERT INTO idempotency (key, request_hash, status_code, response, "
                      "created_at) VALUES (?, ?, ?, ?, ?)",
                      (key, digest, status_code, json.dumps(result, ensure_ascii=False),
                       now_text()))
        conn.execute("COMMIT")
    except Rejected as exc:
        conn.execute("ROLLBACK")
        return JSONResponse({"detail": [{"loc": exc.loc, "msg": exc.message,
                                         "type": "rejected"}]}, status_code=422)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return JSONResponse(result, status_code=status_code)


async def _buffered(receive: Any) -> Any:
    """Read the whole request body now; replay it to the app later."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay


class FaultInjector:
    """An ASGI wrapper that injects the faults of :class:`Faults` into a system's requests."""

    def __init__(self, app: Any, faults: Faults | None = None) -> None:
        self.app = app
        self.stats: Counter[str] = Counter()
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def _applies(self, scope: dict[str, Any]) -> bool:
        path = scope.get("path", "")
        if path.startswith("/admin") or path == "/health":
            return False
        return scope.get("method", "GET") in self.faults.methods

    @staticmethod
    def _key(scope: dict[str, Any]) -> str:
        for name, value in scope.get("headers", []):
            if name == b"idempotency-key":
                return value.decode("latin-1")
        return ""

    def _decide(self, scope: dict[str, Any]) -> str | None:
        f = self.faults
        key = self._key(scope)
        if f.reject_rate and key:
            bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32
            if bucket < f.reject_rate:
                return "reject"
        r = self.rng.random()
        for name, rate in (("error", f.error_rate), ("timeout", f.timeout_rate),
                           ("slow", f.slow_rate), ("drop", f.drop_rate)):
            if r < rate:
                return name
            r -= rate
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self._applies(scope):
            await self.app(scope, receive, send)
            return
        self.stats["requests"] += 1
        fault = self._decide(scope)
        if fault is not None:
            self.stats[fault] += 1
        if fault == "error":
            await JSONResponse({"detail": "injected fault: service unavailable"},
                               status_code=503)(scope, receive, send)
            return
        if fault == "reject":
            await JSONResponse({"detail": [{"loc": ["body"], "msg": "injected fault: payload "
                                            "rejected", "type": "rejected"}]},
                               status_code=422)(scope, receive, send)
            return
        if fault in ("timeout", "slow"):
            # The request has fully arrived; then the system is slow. It works on even
            # if the client gives up meanwhile (as a real server would).
            receive = await _buffered(receive)
            await asyncio.sleep(self.faults.timeout_seconds if fault == "timeout"
                                else self.faults.slow_seconds)
        if fault != "drop":
            await self.app(scope, receive, send)
            return

        # Committed, but the connection drops before the reply: let the app finish its
        # work, swallow its response, and abort the TCP connection.
        async def swallow(message: dict[str, Any]) -> None:
            return None

        await self.app(scope, receive, swallow)
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            return
        raise RuntimeError("injected fault: connection dropped after commit")


def admin_router(db: SystemDB, injector_ref: dict[str, FaultInjector],
                 counts: dict[str, str]) -> APIRouter:
    """``/health``, ``/admin/faults`` (read, set) and ``/admin/stats``."""
    router = APIRouter()

    @router.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/admin/faults")
    def get_faults() -> Faults:
        return injector_ref["injector"].faults

    @router.put("/admin/faults")
    def put_faults(faults: Faults) -> Faults:
        injector_ref["injector"].set(faults)
        return faults

    @router.get("/admin/stats")
    def stats() -> dict[str, Any]:
        tables = {name: db.query(sql)[0]["n"] for name, sql in counts.items()}
        return {"faults": dict(injector_ref["injector"].stats), "tables": tables}

    return router


def inbound_router(db: SystemDB, table: str, id_column: str, ref_column: str) -> APIRouter:
    """``GET /inbound``: the records this system received, with their idempotency keys.

    Reconciliation reads it; pages by ``after_id``.
    """
    router = APIRouter()

    @router.get("/inbound")
    def inbound(after_id: int = 0, limit: int = 1000) -> dict[str, Any]:
        rows = db.query(
            f"SELECT rowid AS seq, {id_column} AS record_id, idempotency_key, "
            f"{ref_column} AS source_ref FROM {table} WHERE rowid > ? AND "
            "idempotency_key IS NOT NULL ORDER BY rowid LIMIT ?", (after_id, min(limit, 5000)))
        return {"items": rows, "next_after_id": rows[-1]["seq"] if rows else None}

    return router


def build_app(title: str, db: SystemDB, routers: list[APIRouter], counts: dict[str, str],
              faults: Faults | None) -> FaultInjector:
    """A FastAPI app with the system's routers, wrapped in its fault injector."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    ref: dict[str, FaultInjector] = {}
    app.include_router(admin_router(db, ref, counts))
    for router in routers:
        app.include_router(router)

    @app.exception_handler(sqlite3.OperationalError)
    async def _busy(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        return JSONResponse({"detail": "database busy"}, status_code=503)

    injector = FaultInjector(app, faults)
    ref["injector"] = injector
    injector.db = db  # type: ignore[attr-defined]
    return injector


IdempotencyKey = Header(None, alias="Idempotency-Key")
