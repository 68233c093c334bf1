"""The store: the document, field and check tables, the lifecycle, the engine.

SQLite by default, PostgreSQL at scale; same code, one URL setting. The audit trail's
tables and its chain are in :mod:`backoffice.audit` (imported here, so ``make_engine``
creates them too).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, LargeBinary, UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine

from backoffice.audit import append_audit, utcnow
from backoffice.crypto import EncryptedJSON, EncryptedText


class Status(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    POSTED = "posted"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


# The lifecycle. A transition not listed here is a bug and is refused.
TRANSITIONS: dict[Status, set[Status]] = {
    Status.RECEIVED: {Status.PROCESSING, Status.QUARANTINED},
    Status.PROCESSING: {Status.PROCESSED, Status.QUARANTINED, Status.RECEIVED},
    Status.PROCESSED: {Status.IN_REVIEW, Status.APPROVED, Status.REJECTED},
    Status.IN_REVIEW: {Status.APPROVED, Status.REJECTED, Status.IN_REVIEW},
    Status.APPROVED: {Status.POSTED},
    Status.POSTED: set(),
    Status.REJECTED: set(),
    Status.QUARANTINED: set(),
}
FINAL_STATUSES = {Status.POSTED, Status.REJECTED, Status.QUARANTINED}


SCHEMA_LOCK_KEY = 0x626F5F736368656D  # "bo_schem"


class InvalidTransition(RuntimeError):
    pass


class Document(SQLModel, table=True):
    """One page-level document; a multi-page file gives one Document per page."""

    __table_args__ = (UniqueConstraint("sha256", "page", name="uq_document_sha_page"),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(index=True, max_length=64)
    page: int = 0
    parent_id: int | None = Field(default=None, foreign_key="document.id")
    # A file is often named after its holder: encrypted at rest when a key is configured
    # (VARCHAR NOT NULL as before; cannot be searched or sorted in SQL).
    original_name: str = Field(sa_column=Column(EncryptedText("document.original_name"),
                                                nullable=False))
    stored_path: str
    size_bytes: int = 0
    format: str | None = None
    source: str = "inbox"
    batch: str | None = Field(default=None, index=True)
    status: Status = Field(default=Status.RECEIVED, index=True)
    reason: str | None = None
    doc_type: str | None = None
    quality: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Recognised text is personal data: encrypted at rest when a key is configured.
    ocr_lines: list[Any] | None = Field(
        default=None, sa_column=Column(EncryptedJSON("document.ocr_lines")))
    ocr_seconds: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The worker holding the document in `processing`, until when (see backoffice.leases),
    # and how many times processing was started.
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = 0


class DocumentBlob(SQLModel, table=True):
    """An original file's bytes kept in the store (``BACKOFFICE_DOCUMENT_STORAGE=store``),
    which every host reaches; a document refers to it as ``store:<sha256>``
    (:mod:`backoffice.blobs`). Written in the intake's transaction: no document without
    its bytes. Encrypted at rest when a key is configured: ``data`` is then the binary
    envelope of :meth:`backoffice.crypto.KeyRing.encrypt_bytes` and ``kid`` names the key
    (None: plaintext; rotation picks rows by it without reading their data)."""

    __tablename__ = "document_blob"

    sha256: str = Field(primary_key=True, max_length=64)
    format: str | None = Field(default=None, max_length=16)
    size_bytes: int = 0
    kid: str | None = Field(default=None, max_length=40)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


def blob_context(sha256: str) -> str:
    """The encryption context of a stored original: bound to its row, so ciphertext moved
    to another row does not decrypt."""
    return f"document_blob.data/{sha256}"


class FieldValue(SQLModel, table=True):
    """A field of a document: the OCR value and, after review, the corrected one."""

    __table_args__ = (UniqueConstraint("document_id", "name", name="uq_field_doc_name"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    name: str
    value: str | None = Field(default=None, sa_column=Column(EncryptedText("fieldvalue.value")))
    confidence: float = 0.0
    raw: str | None = Field(default=None, sa_column=Column(EncryptedText("fieldvalue.raw")))
    corrections: list[str] | None = Field(default=None, sa_column=Column(JSON))
    boxes: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    reviewed_value: str | None = Field(
        default=None, sa_column=Column(EncryptedText("fieldvalue.reviewed_value")))


class DocumentRisk(SQLModel, table=True):
    """A document's fraud and risk signals (``domain.models.RiskReport``: score, verdict,
    reason and region of each) and its portrait: an ID front's photo, cropped by the
    reader and kept as a :class:`DocumentBlob` (``portrait_sha256``), so it is encrypted
    and re-keyed like the originals."""

    __tablename__ = "document_risk"

    document_id: int = Field(foreign_key="document.id", primary_key=True)
    signals: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    seconds: float = 0.0
    portrait_sha256: str | None = Field(default=None, max_length=64)
    portrait_region: list[Any] | None = Field(default=None, sa_column=Column(JSON))


class CheckRow(SQLModel, table=True):
    """A stored check result (the latest validation run of a document)."""

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    rule: str
    severity: str
    passed: bool
    message: str = ""
    fields: list[str] | None = Field(default=None, sa_column=Column(JSON))
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class CaseStatus(StrEnum):
    """A claim case's lifecycle (:mod:`backoffice.cases`): ``open`` while its pages are read
    or documents are awaited, then one decision for the whole case."""

    OPEN = "open"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    POSTED = "posted"
    REJECTED = "rejected"


class Case(SQLModel, table=True):
    """A claim case: documents submitted together (a folder of the inbox's ``cases/``, a
    multi-page PDF, or a case id given at intake), decided and posted as one.

    ``ref``: the case id as given (the folder's name, or ``pdf-<sha256 prefix>``), unique;
    ``checks``: the latest cross-document check results; ``reason``: why it is where it
    is (safe to show: no personal values)."""

    __tablename__ = "claim_case"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    # claim (the default), or identity: an ID card's front and back paired in a batch.
    kind: str = Field(default="claim", max_length=20)
    batch: str | None = Field(default=None, index=True)
    status: CaseStatus = Field(default=CaseStatus.OPEN, index=True)
    reason: str | None = None
    checks: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    decided_by: str | None = Field(default=None, max_length=100)
    posted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class CaseDocument(SQLModel, table=True):
    """A page's membership of a case (a page belongs to at most one), and what its own
    route said (``approved`` / ``in_review`` / ``rejected``): a case page does not route
    itself, the case decides."""

    __tablename__ = "case_document"

    document_id: int = Field(foreign_key="document.id", primary_key=True)
    case_id: int = Field(foreign_key="claim_case.id", index=True)
    page_route: str | None = Field(default=None, max_length=20)
    added_at: datetime = Field(default_factory=utcnow)


class CaseKey(SQLModel, table=True):
    """What identifies a claim across cases, for finding duplicate claims in the store
    itself: an invoice (code and number) or a claim (policy and accident date), as a
    SHA-256 of the normal form (the values stay in the fields, encrypted)."""

    __tablename__ = "case_key"
    __table_args__ = (UniqueConstraint("kind", "digest", "case_id", name="uq_case_key"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # invoice | claim
    digest: str = Field(max_length=64, index=True)
    case_id: int = Field(foreign_key="claim_case.id", index=True)
    document_id: int = Field(foreign_key="document.id")


def make_engine(url: str, *, prepare: bool = True) -> Engine:
    """An engine for the store; SQLite gets WAL and a busy timeout for concurrent work.

    ``prepare``: bring the schema to the newest migration first
    (:func:`backoffice.migrations.prepare_schema`: one query when it is there already).
    """
    if url.startswith("sqlite"):
        # hide_parameters: a database error's text must not quote personal values (it can
        # end up in a log or a Prefect state message).
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if prepare:
        # Workers starting together wait for one migrator (SCHEMA_LOCK_KEY on PostgreSQL).
        from backoffice.migrations import prepare_schema

        prepare_schema(engine)
    return engine


def set_status(session: Session, doc: Document, status: Status, *, reason: str | None = None,
               actor: str = "system") -> None:
    """Move a document along its lifecycle and audit the move."""
    if status not in TRANSITIONS[doc.status]:
        raise InvalidTransition(f"document {doc.id}: {doc.status} -> {status} is not allowed")
    before = doc.status
    doc.status = status
    if reason is not None:
        doc.reason = reason
    doc.updated_at = utcnow()
    session.add(doc)
    session.flush()
    append_audit(session, "status", document_id=doc.id, actor=actor,
                 data={"from": before.value, "to": status.value, "reason": reason})


def rotate_encryption(engine: Engine, batch_size: int = 500,
                      files: Any = ()) -> dict[str, Any]:
    """Re-encrypt every encrypted column, the originals kept in the store
    (:class:`DocumentBlob`), and the files (:mod:`backoffice.file_crypto`) to the primary
    key (plaintext rows and files included).

    Files: the local originals and quarantined files the documents refer to
    (``stored_path`` named ``<sha256>.<ext>`` after the document's hash), and the
    :class:`~backoffice.file_crypto.FileSet` folders of ``files`` (the CLI passes the data
    folder's documents, quarantine and reconciliation folders and the drop folders). Each
    is replaced atomically with its permissions kept; one that cannot be decrypted is
    listed under ``files_failed`` and left (its old key is then still needed).

    Batches of rows, each in its own transaction, rows locked on PostgreSQL; rows already
    under the primary key are left alone, so a rotation interrupted half way is resumed by
    running it again. Afterwards no row needs the old keys: they can be removed.
    """
    from sqlalchemy import JSON as RawJSON
    from sqlalchemy import String, bindparam, type_coerce
    from sqlalchemy import select as sa_select

    from backoffice.crypto import (
        KeyConfigError,
        active_keyring,
        encrypted_columns,
        envelope_kid,
        is_envelope,
    )

    ring = active_keyring()
    if ring is None:
        raise KeyConfigError("no encryption key is configured: nothing to rotate to")
    rewritten: dict[str, int] = {}
    found: dict[str, int] = {}
    for table, column in encrypted_columns(SQLModel.metadata):
        raw_type = RawJSON() if isinstance(column.type, EncryptedJSON) else String()
        name = f"{table.name}.{column.name}"
        raw = type_coerce(column, raw_type)
        last_id = 0
        rewritten[name] = 0
        while True:
            pick = (sa_select(table.c.id, raw.label("v"))
                    .where(table.c.id > last_id, column.is_not(None))
                    .order_by(table.c.id).limit(batch_size))
            if engine.dialect.name == "postgresql":
                pick = pick.with_for_update()
            with engine.begin() as conn:
                rows = conn.execute(pick).all()
                if not rows:
                    break
                last_id = rows[-1].id
                updates = []
                for row in rows:
                    value = row.v
                    if value is None:
                        continue
                    if is_envelope(value):
                        kid = envelope_kid(value)
                        found[kid] = found.get(kid, 0) + 1
                        if kid == ring.primary:
                            continue
                        plain = ring.decrypt(value, column.type.context)
                    else:
                        found["(plaintext)"] = found.get("(plaintext)", 0) + 1
                        if isinstance(column.type, EncryptedJSON):
                            plain = json.dumps(value, ensure_ascii=False,
                                               separators=(",", ":"), default=str).encode()
                        else:
                            plain = str(value).encode("utf-8")
                    updates.append({"b_id": row.id,
                                    "b_v": ring.encrypt(plain, column.type.context)})
                if updates:
                    conn.execute(table.update().where(table.c.id == bindparam("b_id"))
                                 .values({column.name: bindparam("b_v", type_=raw_type)}),
                                 updates)
                    rewritten[name] += len(updates)
    rewritten["document_blob.data"] = _rotate_blobs(engine, ring, found)
    moved = _rotate_files(engine, ring, files)
    rewritten.update(moved.rewritten)
    for kid, count in moved.found.items():
        found[kid] = found.get(kid, 0) + count
    out = {"primary": ring.primary, "rewritten": rewritten, "found_under": found}
    if moved.failed:
        out["files_failed"] = moved.failed
    return out


def _rotate_files(engine: Engine, ring: Any, files: Any) -> Any:
    """The files' part of :func:`rotate_encryption`: the local files the documents name,
    then the folders of ``files``."""
    from pathlib import Path

    from sqlalchemy import select as sa_select

    from backoffice import file_crypto

    doc = Document.__table__
    refs: dict[str, str] = {}
    with engine.connect() as conn:
        rows = conn.execute(sa_select(doc.c.stored_path, doc.c.sha256, doc.c.format)
                            .distinct()).all()
    for row in rows:
        ref = row.stored_path or ""
        if ref.startswith("store:") or "://" in ref:
            continue
        path = Path(ref)
        # Only files intake named: a stored_path may point anywhere (tests, imports).
        if not path.name.startswith(f"{row.sha256}."):
            continue
        # Intake's quarantine files have no format; originals always have theirs.
        refs[ref] = (file_crypto.quarantine_context(row.sha256) if row.format is None
                     else file_crypto.original_context(row.sha256))
    return file_crypto.rotate_files(ring, list(files or ()),
                                    refs=[(Path(p), c) for p, c in refs.items()])


def _rotate_blobs(engine: Engine, ring: Any, found: dict[str, int]) -> int:
    """Re-encrypt the stored originals not under the primary key, one row a transaction
    (a row can be 40 MB); only those rows' data is read."""
    from sqlalchemy import func, or_
    from sqlalchemy import select as sa_select

    blob = DocumentBlob.__table__
    with engine.connect() as conn:
        for kid, count in conn.execute(sa_select(blob.c.kid, func.count())
                                       .group_by(blob.c.kid)).all():
            key = kid or "(plaintext)"
            found[key] = found.get(key, 0) + count
    stale = or_(blob.c.kid.is_(None), blob.c.kid != ring.primary)
    rewritten, last = 0, ""
    while True:
        pick = (sa_select(blob.c.sha256, blob.c.kid, blob.c.data)
                .where(blob.c.sha256 > last, stale).order_by(blob.c.sha256).limit(1))
        if engine.dialect.name == "postgresql":
            pick = pick.with_for_update()
        with engine.begin() as conn:
            row = conn.execute(pick).first()
            if row is None:
                return rewritten
            last = row.sha256
            context = blob_context(row.sha256)
            plain = ring.decrypt_bytes(row.data, context) if row.kid else bytes(row.data)
            conn.execute(blob.update().where(blob.c.sha256 == row.sha256).values(
                data=ring.encrypt_bytes(plain, context), kid=ring.primary))
            rewritten += 1
