"""Intake: take files from an inbox, store the originals immutably, never drop one.

Each file ends as a new `received` Document, a recognised duplicate, or a
`quarantined` Document with a reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backoffice import file_crypto
from backoffice.audit import append_audit
from backoffice.blobs import DocumentStorage, as_storage
from backoffice.cases import case_from_path
from backoffice.crypto import active_keyring
from backoffice.store import Document, Status
from domain.masking import mask_text
from ocr.decode import SUPPORTED_FORMATS, sniff_format

# Files still being written by a scanner or a copy are skipped until they settle.
_PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")


@dataclass
class IntakeResult:
    received: list[int] = field(default_factory=list)
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)


def _store_original(session: Session, data: bytes, sha: str, fmt: str | None,
                    storage: DocumentStorage) -> str:
    """Keep the original where the storage says (:mod:`backoffice.blobs`): never altered by
    us, content-addressed; returns the reference kept in ``Document.stored_path``."""
    return storage.put(session, data, sha, fmt)


def _quarantine(session: Session, *, name: str, data: bytes, sha: str, reason: str,
                root: Path, source: str, batch: str | None) -> Document:
    """Keep a refused file as ``<root>/<sha>.bin`` with a ``<sha>.reason.json`` beside it.

    With encryption at rest configured the ``.bin`` is the AES-GCM envelope of
    :mod:`backoffice.file_crypto` (bound to ``quarantine/<sha>``; read it with
    ``backoffice keys decrypt-file``), and the reason file leaves the file's name out (it
    may name the holder; it is in ``Document.original_name``, encrypted)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{sha}.bin"
    ring = active_keyring()
    if not path.exists():
        tmp = root / f"{sha}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_bytes(file_crypto.maybe_seal(data, file_crypto.quarantine_context(sha), ring))
        os.replace(tmp, path)
    existing = session.exec(select(Document).where(Document.sha256 == sha,
                                                   Document.page == 0)).first()
    if existing is not None:
        return existing
    doc = Document(sha256=sha, original_name=name, stored_path=str(path), size_bytes=len(data),
                   source=source, batch=batch, status=Status.QUARANTINED, reason=reason)
    session.add(doc)
    session.flush()
    about: dict = {"document_id": doc.id}
    if ring is None:  # with a key the name stays out: it may name the holder
        about["file"] = mask_text(name)
    about["reason"] = reason
    (root / f"{sha}.reason.json").write_text(json.dumps(about, ensure_ascii=False))
    append_audit(session, "quarantined", document_id=doc.id, data={"reason": reason})
    return doc


def ingest_bytes(session: Session, data: bytes, name: str, *,
                 documents_dir: Path | DocumentStorage, quarantine_dir: Path, max_bytes: int,
                 source: str = "inbox", batch: str | None = None,
                 result: IntakeResult | None = None, case: str | None = None) -> IntakeResult:
    """Take one file's bytes into the store (committed by the caller).

    ``case``: the claim case the file belongs to (:mod:`backoffice.cases`), by its id;
    created if new. A file already taken joins the case too, unless it is in another.

    ``documents_dir``: where the original goes, a :class:`~backoffice.blobs.DocumentStorage`
    (``blobs.storage_for(settings)``: the ``BACKOFFICE_DOCUMENT_STORAGE`` setting), or a
    folder of this host (``local``)."""
    result = result or IntakeResult()
    sha = hashlib.sha256(data).hexdigest()
    existing = session.exec(select(Document).where(Document.sha256 == sha,
                                                   Document.page == 0)).first()
    if existing is not None:
        result.duplicates.append((name, existing.id))
        append_audit(session, "duplicate", document_id=existing.id,
                     data={"file": mask_text(name)})
        if case:
            _join(session, case, batch, existing)
        return result
    fmt = sniff_format(data[:16]) if data else None
    reason = None
    if not data:
        reason = "file is empty (0 bytes)"
    elif len(data) > max_bytes:
        reason = f"file is {len(data)} bytes, above the limit of {max_bytes}"
    elif fmt is None:
        reason = "not a PNG, JPEG, TIFF, BMP, WebP or PDF file (content sniffed)"
    elif fmt not in SUPPORTED_FORMATS:
        reason = f"{fmt.upper()} files are not accepted; send PNG, JPEG, TIFF or PDF"
    if reason:
        doc = _quarantine(session, name=name, data=data, sha=sha, reason=reason,
                          root=quarantine_dir, source=source, batch=batch)
        result.quarantined.append(doc.id)
        if case:
            _join(session, case, batch, doc)
        return result
    ref = _store_original(session, data, sha, fmt, as_storage(documents_dir))
    doc = Document(sha256=sha, original_name=name, stored_path=ref, size_bytes=len(data),
                   format=fmt, source=source, batch=batch, status=Status.RECEIVED)
    session.add(doc)
    session.flush()
    append_audit(session, "received", document_id=doc.id,
                 data={"file": mask_text(name), "sha256": sha, "format": fmt})
    result.received.append(doc.id)
    if case:
        _join(session, case, batch, doc)
    return result


def _join(session: Session, case: str, batch: str | None, doc: Document) -> None:
    from backoffice.cases import case_for, case_of, join_case

    if case_of(session, doc) is None:
        join_case(session, case_for(session, case, batch), doc)


def _take_away(entry: Path) -> None:
    """Remove a taken file from the inbox; one that cannot be removed is recognised on the
    next poll (same bytes: a duplicate; same refusal: the same quarantined document)."""
    try:
        entry.unlink()
    except OSError:
        pass


def scan_inbox(session: Session, inbox: Path, *, documents_dir: Path | DocumentStorage,
               quarantine_dir: Path, max_bytes: int, batch: str | None = None,
               remove: bool = True) -> IntakeResult:
    """Take every settled file of an inbox folder; each is committed on its own.
    ``documents_dir``: where originals go (see :func:`ingest_bytes`). The files of a
    folder ``cases/<case id>/`` form a claim case (:mod:`backoffice.cases`)."""
    result = IntakeResult()
    documents_dir = as_storage(documents_dir)
    inbox = inbox.resolve()
    taken: dict[str, int] = {}  # loose files received by this scan: name -> document
    for entry in sorted(inbox.rglob("*")):
        if entry.name.startswith(".") or entry.name.endswith(_PARTIAL_SUFFIXES):
            continue
        if entry.is_dir() and not entry.is_symlink():
            continue
        name = str(entry.relative_to(inbox))
        refused = None
        if entry.is_symlink():
            try:
                target = entry.resolve(strict=True)
            except (OSError, RuntimeError):  # dangling, or a loop
                target, refused = None, "symbolic link that leads nowhere (dangling or a loop)"
            if target is not None and not target.is_relative_to(inbox):
                refused = "symbolic link pointing outside the inbox; not followed"
            elif target is not None and not target.is_file():
                refused = "symbolic link to something that is not a file; not followed"
        elif not entry.exists():
            continue  # taken by another worker scanning the same inbox
        elif not entry.is_file():
            # A named pipe would block the reader for ever; a device could be endless.
            refused = "not a regular file (a pipe, socket or device); not read"
        data = b""
        if refused is None:
            try:
                # Read at most one byte over the limit: enough to know it is too big.
                with entry.open("rb") as fh:
                    data = fh.read(max_bytes + 1)
            except FileNotFoundError:
                continue  # taken by another worker scanning the same inbox
            except OSError as exc:
                refused = f"cannot read the file ({exc.strerror or type(exc).__name__})"
        if refused is not None:
            marker = f"{refused}: {name}".encode()
            doc = _quarantine(session, name=name, data=marker,
                              sha=hashlib.sha256(b"refused:" + marker).hexdigest(),
                              reason=refused, root=quarantine_dir, source="inbox", batch=batch)
            result.quarantined.append(doc.id)
            if case_from_path(name):
                _join(session, case_from_path(name), batch, doc)
            session.commit()
            if remove:
                _take_away(entry)
            continue
        received = len(result.received)
        _ingest_committed(session, data, name, documents_dir=documents_dir,
                          quarantine_dir=quarantine_dir, max_bytes=max_bytes, batch=batch,
                          result=result, case=case_from_path(name))
        if len(result.received) > received and not case_from_path(name):
            taken[name] = result.received[-1]
        if remove:
            _take_away(entry)
    _pair_id_sides(session, taken)
    if remove:
        for folder in sorted((p for p in inbox.rglob("*") if p.is_dir()), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
    return result


def _pair_id_sides(session: Session, taken: dict[str, int]) -> None:
    """An ID card's front and back taken in one scan and named as its two sides
    (``0001_front.jpg`` / ``0001_back.jpg``) become one identity case
    (:func:`backoffice.cases.pair_identity`)."""
    from backoffice.cases import id_side_pairs, pair_identity

    for front, back in id_side_pairs(taken):
        pair_identity(session, session.get(Document, taken[front]),
                      session.get(Document, taken[back]))
        session.commit()


def _ingest_committed(session: Session, data: bytes, name: str, *, result: IntakeResult,
                      **kwargs) -> None:
    """Ingest and commit one file; if another worker committed the same bytes first (the
    UNIQUE (sha256, page) constraint), it is a duplicate, not an error."""
    mark = (len(result.received), len(result.duplicates), len(result.quarantined))
    try:
        ingest_bytes(session, data, name, source="inbox", result=result, **kwargs)
        session.commit()
    except IntegrityError:
        session.rollback()
        del result.received[mark[0]:], result.duplicates[mark[1]:], result.quarantined[mark[2]:]
        ingest_bytes(session, data, name, source="inbox", result=result, **kwargs)
        session.commit()


def copy_tree(src: Path, dst: Path) -> int:
    """Copy a folder of documents into an inbox (used by the demo)."""
    count = 0
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            count += 1
    return count
