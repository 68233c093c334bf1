"""File-drop connector: a CSV file plus a manifest with its checksum, for batch-fed systems.

Each message becomes ``<key>.csv`` (header and one row, in the target's field names) and
``<key>.manifest.json`` (file name, SHA-256, byte and row counts, columns, key, source
reference). Both are written to a temporary name, flushed to disk and renamed into
place, the manifest last: the manifest is the commit marker, and a legacy system picks up
only files that have one and whose checksum matches. A message whose manifest is already
there was posted by an earlier attempt (replay). The file names derive from the key, so
a repeat overwrites identical bytes at worst.

**Encryption at rest.** The CSV holds what the payments system needs in clear (payee,
account number, amount): masking is not an option, so with a key ring configured
(``BACKOFFICE_ENCRYPTION_KEY``) the CSV file is written as the AES-GCM envelope of
:mod:`backoffice.file_crypto` (same key ring as the store, bound to
``filedrop/<key>.csv``). The manifest stays plaintext JSON: it holds no personal data
(file name, checksum, counts, column names, the idempotency key and the document's
reference ``bo-<id>-<hash prefix>``), and it is the commit marker a consumer polls for.

* Its ``sha256`` and ``bytes`` are those of the **plaintext CSV**, as without a key:
  what the payments system loads, checked after decryption (:func:`read_dropped`). The
  envelope's own GCM tag covers the file as stored (a truncated or altered file fails
  to decrypt). So a rotation (``backoffice keys rotate`` re-encrypts the CSV files in
  place, atomically) never touches the manifest, and a consumer reading during one sees
  the old or the new file, both valid. (A SHA-256 of a whole row of payee, bank,
  account, amount and policy number is not a usable guessing oracle.)
* Whether a data file is encrypted is told by its first bytes (the envelope's magic),
  not by the manifest: files dropped before a key was set stay plaintext until a
  rotation encrypts them.
* The consumer (the payments system; :func:`read_dropped` is the reference reader the
  tests use as its stand-in) decrypts with the shared key ring; an operator can look at
  one file with ``backoffice keys decrypt-file PATH``. Sharing the ring lets that system
  decrypt the store too: a per-target export key would be the next step if that
  matters (not done).
* A system that cannot decrypt must be fed by a deployment without a key, or read
  through a decrypting hand-over on its side: the drop folder itself keeps no clear
  personal data once a key is set.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backoffice import file_crypto
from backoffice.connectors.base import (
    HeldRecord,
    LookupUnavailable,
    Outgoing,
    PostResult,
    TransientError,
)
from backoffice.connectors.config import FileDropTarget
from backoffice.connectors.mapping import map_payload
from backoffice.crypto import DecryptionError, KeyRing, active_keyring

MANIFEST_SUFFIX = ".manifest.json"


class DropFileError(ValueError):
    """A dropped file cannot be taken: missing, undecryptable, or not what its manifest says."""


@dataclass
class DroppedFile:
    """A dropped message as its consumer takes it: the manifest and the CSV's rows."""

    manifest: dict[str, Any]
    header: list[str]
    rows: list[list[str]]
    encrypted: bool


def _drop_data(directory: Path, manifest: Mapping[str, Any],
               ring: KeyRing | None) -> tuple[bytes, bool]:
    """The plaintext of the data file a manifest names, checked against its checksum."""
    name = str(manifest.get("file", ""))
    if not name or "/" in name or name.startswith("."):
        raise DropFileError("the manifest names no data file of this folder")
    try:
        stored = (directory / name).read_bytes()
    except OSError:
        raise DropFileError("data file missing") from None
    try:
        data = file_crypto.unseal(stored, file_crypto.drop_context(name), ring=ring,
                                  where=name)
    except DecryptionError as exc:
        raise DropFileError(f"cannot be decrypted: {exc}") from None
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise DropFileError("checksum does not match the manifest")
    return data, file_crypto.is_sealed(stored)


def read_dropped(manifest_path: Path | str, ring: KeyRing | None = None,
                 delimiter: str = ",") -> DroppedFile:
    """Take one dropped message as the consuming system does: read the manifest, decrypt
    the CSV if it is an envelope (``ring``: the shared key ring, default the configured
    one), check the plaintext's SHA-256 against the manifest, parse it.
    :class:`DropFileError` when it cannot be taken (not yet complete, or damaged)."""
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DropFileError("manifest missing or unreadable") from None
    data, encrypted = _drop_data(manifest_path.parent, manifest,
                                 ring if ring is not None else active_keyring())
    text = data.decode(manifest.get("encoding") or "utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return DroppedFile(manifest=manifest, header=rows[0] if rows else [], rows=rows[1:],
                       encrypted=encrypted)


def file_stem(key: str) -> str:
    """A file-system-safe name for an idempotency key."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class FileDropConnector:
    """A target fed by files dropped into a folder."""

    def __init__(self, target: str, config: FileDropTarget) -> None:
        self.target = target
        self.config = config
        self.directory = Path(config.directory)

    def __repr__(self) -> str:
        return f"FileDropConnector({self.target!r}, {str(self.directory)!r})"

    def find(self, entity: str, criteria: Mapping[str, Any]) -> list[dict[str, Any]]:
        raise LookupUnavailable(f"{self.target} is fed by files and cannot be queried")

    def render(self, body: Mapping[str, Any]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.config.delimiter, lineterminator="\r\n")
        writer.writerow(list(body))
        writer.writerow(["" if v is None else str(v) for v in body.values()])
        return out.getvalue().encode(self.config.encoding)

    def post(self, message: Outgoing) -> PostResult:
        stem = file_stem(message.key)
        manifest_path = self.directory / f"{stem}{MANIFEST_SUFFIX}"
        if manifest_path.exists():
            return PostResult(remote_id=stem, replayed=True)
        body = map_payload(self.config.mapping, message, None)
        data = self.render(body)
        manifest = {
            "file": f"{stem}.csv",
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "rows": 1,
            "columns": list(body),
            "encoding": self.config.encoding,
            "idempotency_key": message.key,
            "source_ref": message.document_ref,
            "created_at": datetime.now(UTC).isoformat(),
        }
        stored = file_crypto.maybe_seal(data, file_crypto.drop_context(f"{stem}.csv"),
                                        active_keyring())
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.directory / f"{stem}.csv", stored)
            _write_atomically(manifest_path, json.dumps(manifest, ensure_ascii=False,
                                                        indent=1).encode("utf-8"))
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise TransientError(f"cannot write to the drop folder ({exc.strerror})") from None
        return PostResult(remote_id=stem)

    def held(self) -> Iterator[HeldRecord]:
        if not self.directory.is_dir():
            return
        ring = active_keyring()
        for manifest_path in sorted(self.directory.glob(f"*{MANIFEST_SUFFIX}")):
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            problem = None
            try:
                _drop_data(self.directory, manifest, ring)
            except DropFileError as exc:
                problem = str(exc)
            yield HeldRecord(key=manifest["idempotency_key"],
                             remote_id=manifest_path.name[:-len(MANIFEST_SUFFIX)],
                             source_ref=manifest.get("source_ref"), problem=problem)

    def close(self) -> None:
        return None
