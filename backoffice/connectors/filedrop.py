"""File-drop connector: a CSV file plus a manifest with its checksum, for batch-fed systems.

Each message becomes ``<key>.csv`` (header and one row, in the target's field names) and
``<key>.manifest.json`` (file name, SHA-256, byte and row counts, columns, key, source
reference). Both are written to a temporary name, flushed to disk and renamed into
place, the manifest last: the manifest is the commit marker, and a legacy system picks up
only files that have one and whose checksum matches. A message whose manifest is already
there was posted by an earlier attempt (replay). The file names derive from the key, so
a repeat overwrites identical bytes at worst.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backoffice.connectors.base import (
    HeldRecord,
    LookupUnavailable,
    Outgoing,
    PostResult,
    TransientError,
)
from backoffice.connectors.config import FileDropTarget
from backoffice.connectors.mapping import map_payload

MANIFEST_SUFFIX = ".manifest.json"


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
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.directory / f"{stem}.csv", data)
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
        for manifest_path in sorted(self.directory.glob(f"*{MANIFEST_SUFFIX}")):
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            data_path = self.directory / manifest.get("file", "")
            problem = None
            try:
                if hashlib.sha256(data_path.read_bytes()).hexdigest() != manifest.get("sha256"):
                    problem = "checksum does not match the manifest"
            except OSError:
                problem = "data file missing"
            yield HeldRecord(key=manifest["idempotency_key"],
                             remote_id=manifest_path.name[:-len(MANIFEST_SUFFIX)],
                             source_ref=manifest.get("source_ref"), problem=problem)

    def close(self) -> None:
        return None
