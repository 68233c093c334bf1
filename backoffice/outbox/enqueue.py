"""Writing the outbox: approve a document and its messages in one transaction.

:func:`approve_document` moves a document to ``approved`` and writes one
:class:`~backoffice.outbox.table.OutboxMessage` per target system in the caller's
transaction: either both happen or neither. Each message carries the payload (the document's
fields as approved) and a deterministic idempotency key,
``<document ref>:<target>:v<payload version>``, UNIQUE in the table; the document ref is
``bo-<id>-<first 12 hex of its SHA-256>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, select

from backoffice.audit import append_audit
from backoffice.connectors.base import request_hash
from backoffice.outbox.table import OutboxMessage
from backoffice.store import Document, FieldValue, Status, set_status

PAYLOAD_SCHEMA = "backoffice.outbox/1"


def document_ref(doc: Document) -> str:
    """The document's reference downstream: store id plus content hash, stable forever."""
    return f"bo-{doc.id}-{doc.sha256[:12]}"


def idempotency_key(ref: str, target: str, payload_version: int) -> str:
    """Deterministic: the same document, target and payload version give the same key."""
    return f"{ref}:{target}:v{payload_version}"


def document_payload(session: Session, doc: Document) -> dict[str, Any]:
    """What is posted about a document: its fields as approved (reviewed value first)."""
    values = session.exec(select(FieldValue).where(FieldValue.document_id == doc.id)).all()
    return {
        "schema": PAYLOAD_SCHEMA,
        "document_ref": document_ref(doc),
        "doc_type": doc.doc_type,
        "fields": {f.name: (f.reviewed_value if f.reviewed_value is not None else f.value)
                   for f in sorted(values, key=lambda f: f.name)},
    }


def _routed_targets(doc: Document, targets: Iterable[str] | None, config: Any) -> list[str]:
    if targets is not None:
        names = list(dict.fromkeys(targets))
        if config is not None:
            unknown = [n for n in names if n not in config.targets]
            if unknown:
                raise ValueError(f"unknown targets {unknown}")
        return names
    if config is None:
        config = _default_targets()
    return config.targets_for(doc.doc_type)


_TARGETS_CACHE: dict[tuple[str, int], Any] = {}


def _default_targets() -> Any:
    """The targets file, re-read only when it changes (approvals come one by one)."""
    from backoffice.connectors.config import load_targets, targets_file

    path = targets_file()
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _TARGETS_CACHE:
        _TARGETS_CACHE.clear()
        _TARGETS_CACHE[key] = load_targets(path)
    return _TARGETS_CACHE[key]


def enqueue_document(session: Session, doc: Document, targets: Iterable[str] | None = None, *,
                     actor: str = "system", config: Any = None,
                     payload: Mapping[str, Any] | None = None) -> list[OutboxMessage]:
    """Write the outbox messages of an approved document (in the caller's transaction).

    Idempotent: a target that already has a message with the same payload gets no new
    one; a changed payload gets the next payload version (and so a new key).
    ``targets``: target names; default: the ``routes`` of the targets configuration for
    the document's type. Returns the messages created.
    """
    if doc.id is None:
        session.flush()
    names = _routed_targets(doc, targets, config)
    body = dict(payload) if payload is not None else document_payload(session, doc)
    digest = request_hash(body)
    created = []
    for target in names:
        existing = session.exec(select(OutboxMessage).where(
            OutboxMessage.document_id == doc.id, OutboxMessage.target == target)).all()
        if any(m.payload_sha256 == digest for m in existing):
            continue
        version = max((m.payload_version for m in existing), default=0) + 1
        message = OutboxMessage(
            document_id=doc.id, target=target, payload=body, payload_version=version,
            payload_sha256=digest,
            idempotency_key=idempotency_key(body.get("document_ref") or document_ref(doc),
                                            target, version))
        session.add(message)
        created.append(message)
    if created:
        session.flush()
        append_audit(session, "outbox.enqueued", document_id=doc.id, actor=actor, data={
            "messages": [{"target": m.target, "key": m.idempotency_key} for m in created]})
    return created


def approve_document(session: Session, doc: Document, actor: str = "system",
                     targets: Iterable[str] | None = None, *, reason: str | None = None,
                     config: Any = None) -> list[OutboxMessage]:
    """Approve ``doc`` and write its outbox messages, one per target, in one transaction.

    Does not commit: the caller's ``session.commit()`` makes the approval and the messages
    durable together (a rollback drops both). ``targets`` default to the configured
    routes for the document's type (``targets.json``); a type with no route gets no
    messages and stays ``approved``. Raises ``InvalidTransition`` if the document cannot
    be approved from its current status.
    """
    names = _routed_targets(doc, targets, config)
    set_status(session, doc, Status.APPROVED, reason=reason, actor=actor)
    return enqueue_document(session, doc, names, actor=actor)
