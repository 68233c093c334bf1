"""Files encrypted at rest with the key ring: originals, quarantined files, exports.

The personal-data columns are encrypted by :mod:`backoffice.crypto`; this module does the
same for the files the product keeps or writes, with the same key ring (so the same
``BACKOFFICE_ENCRYPTION_KEY``, the same rotation, the same error types), using
``cryptography``'s AES-GCM (no hand-written primitive):

* the originals of local storage (:class:`backoffice.blobs.LocalStorage`,
  ``documents/<sha[:2]>/<sha>.<fmt>``), read back only through :func:`backoffice.blobs.read`;
* quarantined files (``quarantine/<sha>.bin``, :mod:`backoffice.intake`);
* the payments drop's CSV files (:mod:`backoffice.connectors.filedrop`) and the
  reconciliation's ``exceptions.csv`` (:mod:`backoffice.reconcile_job`).

Without a key nothing changes: files are written as they always were. With one, a file
is written as an envelope (version 1) ::

    magic       8 bytes   89 42 4F 46 0D 0A 1A 0A  ("\\x89BOF\\r\\n\\x1a\\n", PNG-style:
                          binary, and line-ending mangling is detected)
    version     1 byte    1
    kid         1 byte (length) + ASCII: the key's id in the ring
    key check   8 bytes   ASCII hex (crypto.key_check): a wrong key is told from an
                          altered file
    context     2 bytes (length, big-endian) + UTF-8: what the file is, e.g.
                ``original/<sha256>``, ``quarantine/<sha256>``, ``filedrop/<name>.csv``,
                ``reconcile/exceptions.csv`` (never personal data)
    nonce       12 bytes, random
    ciphertext  AES-GCM of the whole file, then its 16-byte tag

The associated data is the whole header (magic to context): the kid, the key check and
the context are authenticated, so a file renamed or moved to another purpose (an
original copied over another document's name) does not decrypt where it is expected.
Readers that know what they expect (``blobs.read``: ``original/<the sha in the name>``)
check the context; ``backoffice keys decrypt-file`` and the rotation take it from the
header (it is authenticated: it cannot be changed without the key).

One AES-GCM call per file, the whole file in memory (as intake already holds it):
originals are at most the intake's size limit (``BACKOFFICE_MAX_FILE_BYTES``, 40 MB by
default), a file quarantined from the inbox at most one byte more, drop
files are a row, and ``exceptions.csv`` is built in memory before it is sealed (two to
three times its size at the peak). AES-GCM takes up to 64 GiB in one call. The nonces are
random 96-bit values, like the columns': NIST SP 800-38D's 2^32 messages per key counts
files and values together; rotating the key resets it.

Reading accepts both forms: a file without the magic is returned as it is (written
before a key was set; ``backoffice keys rotate`` encrypts it). A wrong key, a missing key
or an altered file raises :class:`~backoffice.crypto.WrongKeyError`,
:class:`~backoffice.crypto.MissingKeyError` or
:class:`~backoffice.crypto.TamperedValueError`; messages name the context, the file (by
its path, which holds only a hash or a file name of ours) and key ids, never contents.
"""

from __future__ import annotations

import hmac
import os
import re
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backoffice.crypto import (
    DecryptionError,
    EncryptionError,
    KeyRing,
    MissingKeyError,
    TamperedValueError,
    WrongKeyError,
    active_keyring,
    key_check,
)

MAGIC = b"\x89BOF\r\n\x1a\n"
VERSION = 1
_NONCE = 12
_TAG = 16
_SHA_NAME = re.compile(r"^([0-9a-f]{64})\.[A-Za-z0-9]+$")

#: The context of the reconciliation's exceptions file.
EXPORT_CONTEXT = "reconcile/exceptions.csv"


def original_context(sha256: str) -> str:
    """An original kept in local storage: bound to the SHA-256 of its plaintext, which
    is also its file name."""
    return f"original/{sha256}"


def quarantine_context(sha256: str) -> str:
    return f"quarantine/{sha256}"


def drop_context(file_name: str) -> str:
    """A drop file of a file-fed target, by its name (which derives from the message's
    idempotency key, no personal data)."""
    return f"filedrop/{file_name}"


# --- the envelope ----------------------------------------------------------------------


@dataclass(frozen=True)
class FileHeader:
    version: int
    kid: str
    check: str
    context: str
    length: int  # bytes of header (the associated data); the nonce follows


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` is a file envelope (else: a plaintext file)."""
    return bytes(data[:len(MAGIC)]) == MAGIC


def parse_header(data: bytes, where: str = "file") -> FileHeader:
    """The header of an envelope; :class:`TamperedValueError` when it is not one."""
    def bad(why: str) -> TamperedValueError:
        return TamperedValueError(f"{where}: malformed encrypted file ({why})")

    if not is_sealed(data):
        raise bad("no envelope magic")
    pos = len(MAGIC)
    try:
        version = data[pos]
        if version != VERSION:
            raise bad(f"version {version}, this release reads {VERSION}")
        n = data[pos + 1]
        kid = bytes(data[pos + 2:pos + 2 + n]).decode("ascii")
        pos += 2 + n
        check = bytes(data[pos:pos + 8]).decode("ascii")
        pos += 8
        m = int.from_bytes(data[pos:pos + 2], "big")
        context = bytes(data[pos + 2:pos + 2 + m]).decode("utf-8")
        pos += 2 + m
    except (IndexError, UnicodeDecodeError):
        raise bad("truncated header") from None
    if not kid or len(check) != 8 or len(context) == 0 or len(data) < pos + _NONCE + _TAG:
        raise bad("truncated")
    return FileHeader(version, kid, check, context, pos)


def seal(ring: KeyRing, plaintext: bytes, context: str) -> bytes:
    """The envelope of ``plaintext`` under the ring's primary key."""
    kid = ring.primary
    key = ring.keys[kid]
    kid_b, ctx_b = kid.encode("ascii"), context.encode("utf-8")
    if len(ctx_b) > 0xFFFF:
        raise EncryptionError("file context too long")
    header = (MAGIC + bytes([VERSION, len(kid_b)]) + kid_b + key_check(key).encode("ascii")
              + len(ctx_b).to_bytes(2, "big") + ctx_b)
    nonce = os.urandom(_NONCE)
    return header + nonce + AESGCM(key).encrypt(nonce, bytes(plaintext), header)


def open_sealed(ring: KeyRing | None, data: bytes, context: str | None,
                where: str = "file") -> bytes:
    """The plaintext of an envelope. ``context``: what the caller expects the file to be
    (None: whatever its authenticated header says)."""
    head = parse_header(data, where)
    if context is not None and head.context != context:
        raise TamperedValueError(
            f"{where}: the file was encrypted as {head.context!r}, not {context!r} "
            "(renamed, or moved from elsewhere)")
    if ring is None:
        raise MissingKeyError(
            f"{where}: the file is encrypted (key {head.kid!r}) but no key is configured: "
            "set BACKOFFICE_ENCRYPTION_KEY or BACKOFFICE_ENCRYPTION_KEY_FILE")
    key = ring.keys.get(head.kid)
    if key is None:
        raise MissingKeyError(
            f"{where}: file encrypted with key {head.kid!r}, which is not in the configured "
            f"key ring ({', '.join(ring.keys)}); add it to BACKOFFICE_ENCRYPTION_KEY")
    if not hmac.compare_digest(key_check(key).encode(), head.check.encode()):
        raise WrongKeyError(
            f"{where}: the configured key {head.kid!r} (check {key_check(key)}) is not the "
            f"key this file was encrypted with (check {head.check})")
    nonce = bytes(data[head.length:head.length + _NONCE])
    try:
        return AESGCM(key).decrypt(nonce, bytes(data[head.length + _NONCE:]),
                                   bytes(data[:head.length]))
    except InvalidTag:
        raise TamperedValueError(
            f"{where}: file fails authentication under key {head.kid!r} (altered or "
            "truncated)") from None


def unseal(data: bytes, context: str | None, *, ring: KeyRing | None = None,
           where: str = "file") -> bytes:
    """``data`` as it was written: an envelope opened (with ``ring``, default the
    configured one), a plaintext file as it is."""
    if not is_sealed(data):
        return bytes(data)
    return open_sealed(ring if ring is not None else active_keyring(), data, context, where)


def maybe_seal(data: bytes, context: str, ring: KeyRing | None) -> bytes:
    """What to write: the envelope with a key ring, the data as it is without one."""
    return bytes(data) if ring is None else seal(ring, data, context)


# --- files -----------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """``path`` holding ``data``, or as it was: written under a name of our own, flushed
    to disk, given ``mode``, then renamed over ``path`` (the folder synced)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_file(path: Path | str, context: str | None = None,
              ring: KeyRing | None = None) -> bytes:
    """A file as written by us, decrypted when it is an envelope (``ring``: default the
    configured one; ``context``: what it must be, None to accept its header's)."""
    path = Path(path)
    return unseal(path.read_bytes(), context, ring=ring, where=str(path))


def write_file(path: Path | str, data: bytes, context: str, *, ring: KeyRing | None = None,
               mode: int | None = None) -> bool:
    """Write ``data`` atomically, encrypted when a key is configured (``ring``: default
    the configured one). Returns whether it was encrypted."""
    ring = ring if ring is not None else active_keyring()
    write_atomically(Path(path), maybe_seal(data, context, ring), mode)
    return ring is not None


# --- rotation --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSet:
    """Files the rotation re-encrypts: ``kind`` says which files of ``root`` are ours
    and what their context is when they are still plaintext.

    ``original``: ``<root>/<sha[:2]>/<sha>.<fmt>``; ``quarantine``: ``<root>/<sha>.bin``;
    ``filedrop``: the data files the manifests of ``root`` name; ``export``: every
    ``exceptions.csv`` under ``root``. Files already encrypted anywhere under ``root``
    are re-keyed whatever their name (their context is in their header).
    """

    kind: str
    root: Path


@dataclass
class FileRotation:
    """What a rotation of files did: files re-encrypted per kind, the kids (or
    ``(plaintext)``) they were under before, and those that could not be."""

    rewritten: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def _plain_context(kind: str, path: Path) -> str | None:
    """The context of a plaintext file of ``kind``; None: not one of ours (left alone)."""
    match = _SHA_NAME.match(path.name)
    if kind == "original":
        return original_context(match.group(1)) if match else None
    if kind == "quarantine":
        return quarantine_context(match.group(1)) if match and path.suffix == ".bin" else None
    if kind == "export":
        return EXPORT_CONTEXT if path.name == "exceptions.csv" else None
    return None


def _filedrop_files(root: Path) -> dict[Path, str]:
    import json

    named: dict[Path, str] = {}
    for manifest in sorted(root.glob("*.manifest.json")):
        try:
            name = json.loads(manifest.read_text(encoding="utf-8")).get("file", "")
        except (OSError, ValueError, AttributeError):
            continue
        if name and "/" not in name and not name.startswith("."):
            named[root / name] = drop_context(name)
    return named


def _walk(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(".tmp"):
                continue
            yield Path(dirpath) / name


def rekey_file(path: Path, ring: KeyRing, plain_context: str | None,
               expected: str | None = None) -> str | None:
    """Re-encrypt one file under the ring's primary key, in place (atomically, keeping
    its permissions). Returns the kid it was under, ``(plaintext)``, or None when left
    alone (not ours). ``plain_context``: its context if it is still plaintext (None:
    a plaintext file is not ours); ``expected``: the context an envelope must have."""
    with open(path, "rb") as fh:
        data = fh.read(4096)
        if is_sealed(data):
            try:
                head = parse_header(data, str(path))
            except TamperedValueError:
                head = None  # a header longer than the first block: read it all
            if head is not None and head.kid == ring.primary and (
                    expected is None or head.context == expected):
                return head.kid  # already under the primary key: not read further
        data += fh.read()
    if is_sealed(data):
        head = parse_header(data, str(path))
        if expected is not None and head.context != expected:
            raise TamperedValueError(f"{path}: the file was encrypted as {head.context!r}, "
                                     f"not {expected!r} (renamed, or moved from elsewhere)")
        plain, context, before = open_sealed(ring, data, head.context, str(path)), \
            head.context, head.kid
    elif plain_context is None:
        return None
    else:
        plain, context, before = data, plain_context, "(plaintext)"
    _replace(path, seal(ring, plain, context))
    return before


def _replace(path: Path, data: bytes) -> None:
    """Swap ``path`` for a file holding ``data`` with the same permissions: a read-only
    original stays read-only. The rename needs the folder writable, not the file; a
    read-only folder is made writable for the swap and put back."""
    mode = stat.S_IMODE(path.stat().st_mode)
    folder = path.parent
    folder_mode = stat.S_IMODE(folder.stat().st_mode)
    opened = False
    if not os.access(folder, os.W_OK):
        os.chmod(folder, folder_mode | stat.S_IWUSR)
        opened = True
    try:
        write_atomically(path, data, mode)
    finally:
        if opened:
            os.chmod(folder, folder_mode)


def rotate_files(ring: KeyRing, sets: Iterable[FileSet],
                 refs: Iterable[tuple[Path, str]] = (),
                 report: FileRotation | None = None) -> FileRotation:
    """Re-encrypt, under the primary key, the files of ``sets`` and the files ``refs``
    names (path, context), plaintext ones included. Files already under the primary key
    are left after a look at their header (like the columns' rows: a re-run, or a
    rotation interrupted half way, costs little); a file that cannot be decrypted is
    reported in ``failed`` and left as it is (the old key must then stay). Safe to run
    again."""
    report = report or FileRotation()

    def one(kind: str, path: Path, plain: str | None, expected: str | None) -> None:
        key = str(path.resolve()) if path.exists() else str(path)
        if key in report.seen or path.is_symlink() or not path.is_file():
            return
        report.seen.add(key)
        try:
            before = rekey_file(path, ring, plain, expected)
        except (DecryptionError, OSError) as exc:
            report.failed.append({"path": str(path), "error": str(exc)})
            return
        if before is None:
            return
        report.found[before] = report.found.get(before, 0) + 1
        name = f"files:{kind}"
        report.rewritten.setdefault(name, 0)
        if before != ring.primary:
            report.rewritten[name] += 1

    for path, context in refs:
        kind = context.split("/", 1)[0]
        one(kind, Path(path), context, context)
    for fileset in sets:
        root = Path(fileset.root)
        report.rewritten.setdefault(f"files:{fileset.kind}", 0)
        if fileset.kind == "filedrop":
            named = _filedrop_files(root) if root.is_dir() else {}
            for path, context in named.items():
                one("filedrop", path, context, context)
            for path in _walk(root):  # envelopes of files no manifest names any more
                one("filedrop", path, None, None)
            continue
        for path in _walk(root):
            plain = _plain_context(fileset.kind, path)
            # Our own names carry their context: an envelope there must match it.
            one(fileset.kind, path, plain, plain if fileset.kind != "export" else None)
    return report

