"""Where the original files are kept, and the one way to read them back.

A document's original is put once, at intake, and referred to by a string kept in
``Document.stored_path`` (the column is unchanged: rows written before this module keep
working). ``BACKOFFICE_DOCUMENT_STORAGE`` chooses where new originals go:

``local`` (default)
    A content-addressed, read-only file under the data folder
    (``documents/<sha[:2]>/<sha>.<fmt>``); the reference is its absolute path. Only the
    host holding that folder can read it: one host. With encryption at rest configured
    the file is the AES-GCM envelope of :mod:`backoffice.file_crypto` (same key ring,
    bound to ``original/<sha>``; ``backoffice keys rotate`` re-encrypts it); files written
    before the key was set stay readable as they are. The name is still the SHA-256 of
    the plaintext: a hash of an image is not personal data, but whoever holds a copy of
    a document can tell whether it is here (the ``document.sha256`` column says the
    same).
``store``
    A :class:`~backoffice.store.DocumentBlob` row in the store's database, which every
    host reaches, written in the intake's own transaction (a document is never recorded
    without its bytes); the reference is ``store:<sha256>``. With encryption at rest
    configured (``BACKOFFICE_ENCRYPTION_KEY``) the bytes are AES-GCM encrypted with the
    same key ring as the personal-data columns, and ``backoffice keys rotate``
    re-encrypts them.
an fsspec URL
    ``<url>/<sha[:2]>/<sha>.<fmt>``, e.g. ``file:///mnt/shared/backoffice`` (a folder
    every host mounts) or ``s3://bucket/prefix``; the reference is the object's full URL.
    An object that exists is never overwritten; on a local or mounted folder the file is
    written under a temporary name, made read-only and linked into place. Only ``file://``
    works out of the box: other filesystems need fsspec's own package for them (``s3fs``,
    ``gcsfs``, ``adlfs``, ``sshfs``...), which this project does not install, and take
    their credentials from that package's usual configuration (environment variables,
    ``~/.aws``...), never from the URL. With encryption at rest configured, objects are
    AES-GCM envelopes like local originals (bound to ``original/<sha>``); ``backoffice
    keys rotate`` does not re-encrypt objects, so keep a retired key in the ring while
    objects under it remain.

:func:`read` looks only at the reference's form (``store:`` prefix, ``scheme://``, else
a local path), never at the setting: a document stored under one setting still reads
after the setting changes. Every failure to read raises an :class:`OSError`
(:class:`BlobError`, or the filesystem's own), which processing treats as the machine's
problem, not the file's: the document is given back and tried again.

Quarantined files are not originals: they stay in the local quarantine folder (encrypted
like local originals, see :mod:`backoffice.intake`).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from backoffice import file_crypto
from backoffice.crypto import DecryptionError, KeyConfigError, active_keyring
from backoffice.settings import Settings
from backoffice.store import DocumentBlob, blob_context

SETTING = "BACKOFFICE_DOCUMENT_STORAGE"
STORE_PREFIX = "store:"
#: The reference of an original deleted by retention or erasure (``erased:<request>``).
ERASED_PREFIX = "erased:"
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_SHA_IN_NAME = re.compile(r"(?:^|/)([0-9a-f]{64})\.[^/]*$")


class StorageConfigError(ValueError):
    """``BACKOFFICE_DOCUMENT_STORAGE`` names a storage this host cannot use."""


class BlobError(OSError):
    """An original cannot be read (or written) where its reference says it is."""


class BlobNotFoundError(BlobError, FileNotFoundError):
    """The reference names an original that is not there."""


# --- references ----------------------------------------------------------------------


def is_store_ref(ref: str) -> bool:
    return ref.startswith(STORE_PREFIX)


def url_scheme(ref: str) -> str | None:
    """The scheme of a URL reference (``file``, ``s3``...); None for a local path."""
    match = _URL.match(ref)
    return match.group(1).lower() if match else None


def _safe(url: str) -> str:
    """A URL fit for a message or a log: any password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _filesystem(url: str, what: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of a URL; :class:`StorageConfigError` naming
    ``what`` (the setting, or a reference) when this host has no implementation for it."""
    import fsspec
    from fsspec.registry import known_implementations

    scheme = url_scheme(url) or "file"
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        package = known_implementations.get(scheme, {}).get("class", "").split(".")[0]
        raise StorageConfigError(
            f"{what}: the {scheme} filesystem needs the {package or 'fsspec plug-in'} "
            f"package, which is not installed ({exc})") from None
    except ValueError:
        raise StorageConfigError(
            f"{what}: fsspec knows no filesystem for {scheme}://; use local, store or a "
            "URL such as file:///mnt/shared/backoffice or s3://bucket/prefix") from None
    try:
        return fsspec.core.url_to_fs(url)
    except Exception as exc:  # noqa: BLE001 - a plug-in's own complaint, reported as setup
        raise StorageConfigError(f"{what}: {type(exc).__name__}: {exc}") from None


# --- where new originals go ------------------------------------------------------------


class DocumentStorage(ABC):
    """Where intake puts new originals (``BACKOFFICE_DOCUMENT_STORAGE``)."""

    #: The setting's value this storage stands for.
    setting: str

    @abstractmethod
    def put(self, session: Session, data: bytes, sha: str, fmt: str | None) -> str:
        """Keep ``data`` (whose SHA-256 is ``sha``); return its reference. ``session`` is
        the intake's transaction (committed by the caller)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.setting!r})"


class LocalStorage(DocumentStorage):
    """Content-addressed, read-only files under a folder of this host."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.setting = "local"

    def put(self, session: Session, data: bytes, sha: str, fmt: str | None) -> str:
        folder = self.root / sha[:2]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{sha}.{fmt or 'bin'}"
        if not path.exists():
            # Encrypted when a key is configured (bound to the plaintext's SHA-256).
            stored = file_crypto.maybe_seal(data, file_crypto.original_context(sha),
                                            active_keyring())
            # A name of our own: another worker may be storing the same bytes right now.
            tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_bytes(stored)
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        return str(path)


class StoreStorage(DocumentStorage):
    """Rows of the store's database (:class:`~backoffice.store.DocumentBlob`)."""

    setting = "store"

    def put(self, session: Session, data: bytes, sha: str, fmt: str | None) -> str:
        there = session.exec(select(DocumentBlob.sha256)
                             .where(DocumentBlob.sha256 == sha)).first()
        if there is None:
            # Two workers adding the same bytes: the second's commit fails on the primary
            # key like its document's would; intake retries and records a duplicate.
            ring = active_keyring()
            kid = None if ring is None else ring.primary
            stored = data if ring is None else ring.encrypt_bytes(data, blob_context(sha))
            session.add(DocumentBlob(sha256=sha, format=fmt, size_bytes=len(data), kid=kid,
                                     data=stored))
        return STORE_PREFIX + sha


class UrlStorage(DocumentStorage):
    """Objects under an fsspec URL (see the module's docstring)."""

    def __init__(self, url: str) -> None:
        self.setting = url
        what = f"{SETTING}={_safe(url)}"
        if urlsplit(url).password is not None:
            raise StorageConfigError(
                f"{what}: no password in the URL (it would be copied into every document's "
                "reference); configure the filesystem's credentials its own way")
        self.url = url.rstrip("/")
        self.fs, root = _filesystem(self.url, what)
        self.root = root.rstrip("/")

    @property
    def _local(self) -> bool:
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)

    def put(self, session: Session, data: bytes, sha: str, fmt: str | None) -> str:
        name = f"{sha[:2]}/{sha}.{fmt or 'bin'}"
        ref, path = f"{self.url}/{name}", f"{self.root}/{name}"
        # Encrypted when a key is configured, as local originals are.
        stored = file_crypto.maybe_seal(data, file_crypto.original_context(sha),
                                        active_keyring())
        try:
            if self._local:
                _write_once(Path(path), stored)
            elif not self.fs.exists(path):
                # An object store makes an object appear whole when its upload ends; two
                # workers racing here write the same bytes (the name is their hash).
                with self.fs.open(path, "wb") as fh:
                    fh.write(stored)
        except OSError:
            raise
        except Exception as exc:  # a plug-in's error: the storage, not the file
            raise BlobError(f"{_safe(ref)}: cannot write ({type(exc).__name__}: {exc})") from exc
        return ref


def _write_once(path: Path, data: bytes) -> None:
    """A read-only file at ``path`` holding ``data``, unless one is there already: written
    under a name of our own, then hard-linked into place (never replacing a file)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker stored the same bytes first
        except OSError:
            # A share without hard links: a rename, which replaces only a racing twin.
            if not path.exists():
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def storage_from(value: str, documents_dir: Path) -> DocumentStorage:
    """The storage a ``BACKOFFICE_DOCUMENT_STORAGE`` value names (``local`` puts files in
    ``documents_dir``); :class:`StorageConfigError` when this host cannot use it."""
    value = value.strip()
    if value.lower() == "local":
        return LocalStorage(documents_dir)
    if value.lower() == "store":
        return StoreStorage()
    if url_scheme(value):
        return UrlStorage(value)
    raise StorageConfigError(
        f"{SETTING}={value!r}: expected local, store or an fsspec URL such as "
        "file:///mnt/shared/backoffice or s3://bucket/prefix")


def storage_for(settings: Settings) -> DocumentStorage:
    """The storage of these settings: call it at start-up to report a bad setting early."""
    return storage_from(settings.document_storage, settings.documents_dir)


def as_storage(where: Path | str | DocumentStorage) -> DocumentStorage:
    """A storage as intake is given it: a storage, or a folder (``local``, as before)."""
    return where if isinstance(where, DocumentStorage) else LocalStorage(Path(where))


# --- reading -----------------------------------------------------------------------


def read(ref: str, db: Engine | Session | None = None) -> bytes:
    """The original bytes a reference names, whatever the current setting. ``db`` (an
    engine or a session of the store) is needed for ``store:`` references only.

    Raises :class:`OSError` when they cannot be had: :class:`BlobNotFoundError` (a
    :class:`FileNotFoundError`) when they are not there, :class:`BlobError` otherwise.
    """
    if ref.startswith(ERASED_PREFIX):
        raise BlobNotFoundError(f"the original was erased ({ref[:80]}): retention or a "
                                "customer's erasure request")
    if is_store_ref(ref):
        return _read_store(ref, db)
    if url_scheme(ref):
        return _read_url(ref)
    return _read_local(ref)


def delete(ref: str, session: Session) -> None:
    """Delete the original a reference names (retention, erasure): a store row (in the
    caller's transaction), an object, or a local file (with a quarantined file's
    ``.reason.json``). One already gone is no error."""
    if ref.startswith(ERASED_PREFIX):
        return
    if is_store_ref(ref):
        blob = session.get(DocumentBlob, ref[len(STORE_PREFIX):])
        if blob is not None:
            session.delete(blob)
        return
    if url_scheme(ref):
        fs, path = _filesystem(ref, f"deleting {_safe(ref)}")
        try:
            if fs.exists(path):
                fs.rm(path)
        except Exception as exc:  # a plug-in's error: the storage, not the file
            raise BlobError(f"{_safe(ref)}: cannot delete ({type(exc).__name__})") from exc
        return
    path = Path(ref)
    path.unlink(missing_ok=True)
    if path.suffix == ".bin":
        path.with_name(f"{path.stem}.reason.json").unlink(missing_ok=True)


def _read_local(ref: str) -> bytes:
    """A local original: decrypted (and its SHA-256 checked) when it is an envelope,
    as it is when it was written before a key was set."""
    data = Path(ref).read_bytes()
    if not file_crypto.is_sealed(data):
        return data
    match = _SHA_IN_NAME.search(Path(ref).as_posix())
    if match is None:
        raise BlobError(f"{ref}: an encrypted original whose name is not its SHA-256")
    sha = match.group(1)
    try:
        plain = file_crypto.open_sealed(active_keyring(), data,
                                        file_crypto.original_context(sha), ref)
    except (DecryptionError, KeyConfigError) as exc:
        raise BlobError(str(exc)) from exc
    return _checked(ref, sha, plain)


def _checked(ref: str, sha: str, data: bytes) -> bytes:
    if hashlib.sha256(data).hexdigest() != sha:
        raise BlobError(f"{_safe(ref)}: the bytes read are not the original (SHA-256 "
                        "differs): altered or damaged")
    return data


def _read_store(ref: str, db: Engine | Session | None) -> bytes:
    sha = ref[len(STORE_PREFIX):]
    if not _SHA.match(sha):
        raise BlobNotFoundError(f"{ref[:80]!r} is not a stored original's reference")
    if db is None:
        raise BlobError(f"{ref}: reading an original kept in the store needs the store")
    pick = select(DocumentBlob.kid, DocumentBlob.data).where(DocumentBlob.sha256 == sha)
    try:
        if isinstance(db, Session):
            row = db.exec(pick).first()
        else:
            with db.connect() as conn:
                row = conn.execute(pick).first()
    except SQLAlchemyError as exc:
        raise BlobError(f"{ref}: the store cannot be read ({type(exc).__name__})") from exc
    if row is None:
        raise BlobNotFoundError(f"{ref}: no such original in the store (document_blob)")
    data = bytes(row.data)
    if row.kid is not None:
        try:
            ring = active_keyring()
            if ring is None:
                raise BlobError(f"{ref}: the original is encrypted (key {row.kid!r}) but no "
                                "key is configured: set BACKOFFICE_ENCRYPTION_KEY or "
                                "BACKOFFICE_ENCRYPTION_KEY_FILE")
            data = ring.decrypt_bytes(data, blob_context(sha))
        except (DecryptionError, KeyConfigError) as exc:
            raise BlobError(f"{ref}: {exc}") from exc
    return _checked(ref, sha, data)


def _read_url(ref: str) -> bytes:
    try:
        fs, path = _filesystem(ref, f"{_safe(ref)}")
    except StorageConfigError as exc:
        raise BlobError(str(exc)) from exc
    try:
        with fs.open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:
        raise BlobNotFoundError(f"{_safe(ref)}: no such original") from exc
    except OSError:
        raise
    except Exception as exc:  # a plug-in's error: the storage, not the file
        raise BlobError(f"{_safe(ref)}: cannot read ({type(exc).__name__}: {exc})") from exc
    match = _SHA_IN_NAME.search(urlsplit(ref).path)
    if file_crypto.is_sealed(data):
        if match is None:
            raise BlobError(f"{_safe(ref)}: an encrypted original whose name is not its "
                            "SHA-256")
        try:
            data = file_crypto.open_sealed(active_keyring(), data,
                                           file_crypto.original_context(match.group(1)),
                                           _safe(ref))
        except (DecryptionError, KeyConfigError) as exc:
            raise BlobError(str(exc)) from exc
    return _checked(ref, match.group(1), data) if match else data
