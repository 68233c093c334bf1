"""Encryption at rest of personal-data columns: AES-GCM under a key ring, as column types.

Off unless a key is configured (``BACKOFFICE_ENCRYPTION_KEY`` or
``BACKOFFICE_ENCRYPTION_KEY_FILE``); then :class:`EncryptedText` and
:class:`EncryptedJSON` columns are written as an envelope ::

    enc1:<kid>:<key check>:<base64url(nonce || ciphertext || tag)>

``enc1`` is the format version; ``kid`` names the key (so old keys keep decrypting after
a rotation); the key check (8 hex of a keyed hash, nothing about the data) tells a
wrong key from an altered value. The associated data binds the ciphertext to its
column (``fieldvalue.value``...) and kid: a value copied into another column does not
decrypt. (Not to its row: the outbox claims messages with a plain ``UPDATE ...
RETURNING`` whose result carries no row to bind to; the audit chain and the
uniqueness of (document, field) cover row swaps where it matters.)

With encryption off the columns store exactly what they stored before. Plaintext rows
written before a key was configured still read; ``backoffice keys rotate`` encrypts them.
Equality search on these columns cannot work (every write has a fresh nonce), so the
column types refuse comparisons other than ``IS [NOT] NULL`` whether a key is set or not:
code that would silently find nothing with a key fails loudly without one too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, String
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

VERSION = "enc1"
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_NONCE = 12


class EncryptionError(RuntimeError):
    """A problem with keys or ciphertext. Messages name columns and key ids, never values."""


class KeyConfigError(EncryptionError):
    """The configured key ring cannot be used."""


class DecryptionError(EncryptionError):
    """A stored value cannot be decrypted."""


class MissingKeyError(DecryptionError):
    """The value was encrypted with a key that is not configured."""


class WrongKeyError(DecryptionError):
    """A key is configured under the value's kid, but it is not the key used."""


class TamperedValueError(DecryptionError):
    """The key is right but the value fails authentication: altered or moved."""


def key_check(key: bytes) -> str:
    """A public fingerprint of a key (8 hex): identifies it without revealing it."""
    return hmac.new(key, b"backoffice key check", hashlib.sha256).hexdigest()[:8]


def generate_key() -> str:
    """A new random 256-bit key, base64."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        padded = text + "=" * (-len(text) % 4)
        key = (base64.urlsafe_b64decode(padded) if ("-" in text or "_" in text)
               else base64.b64decode(padded, validate=True))
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{where}: not base64") from None
    if len(key) not in (16, 24, 32):
        raise KeyConfigError(f"{where}: decodes to {len(key)} bytes; an AES key has 16, 24 "
                             "or 32 (use `backoffice keys generate`)")
    return key


@dataclass(frozen=True)
class KeyRing:
    """Keys by kid; ``primary`` encrypts, all decrypt."""

    keys: dict[str, bytes]
    primary: str

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """``kid:base64,kid2:base64`` (commas or newlines; ``#`` comments); first is primary."""
        entries = [e.strip() for line in spec.splitlines()
                   for e in line.split("#", 1)[0].split(",") if e.strip()]
        if not entries:
            raise KeyConfigError("the encryption key ring is empty")
        keys: dict[str, bytes] = {}
        for n, entry in enumerate(entries, 1):
            kid, sep, material = entry.partition(":")
            if not sep:
                material = kid
                key = _decode_key(material, f"key {n}")
                kid = f"k{key_check(key)}"
            else:
                kid = kid.strip()
                if not _KID.match(kid):
                    raise KeyConfigError(f"key {n}: a kid is letters, digits, '.', '_' or '-'")
                key = _decode_key(material, f"key {n} ({kid})")
            if kid in keys:
                raise KeyConfigError(f"key id {kid!r} appears twice in the key ring")
            keys[kid] = key
        return cls(keys=keys, primary=next(iter(keys)))

    def describe(self) -> list[dict[str, Any]]:
        return [{"kid": k, "check": key_check(v), "bits": len(v) * 8,
                 "primary": k == self.primary} for k, v in self.keys.items()]

    def encrypt(self, plaintext: bytes, context: str) -> str:
        kid = self.primary
        key = self.keys[kid]
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, plaintext, _aad(context, kid))
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{VERSION}:{kid}:{key_check(key)}:{body}"

    def decrypt(self, envelope: str, context: str) -> bytes:
        _version, kid, check, body = _split(envelope, context)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return self._open(raw, kid, check, context)

    def encrypt_bytes(self, plaintext: bytes, context: str) -> bytes:
        """The binary envelope, for large values such as original files (no base64):
        ``enc1:<kid>:<key check>:`` then nonce || ciphertext || tag."""
        kid = self.primary
        key = self.keys[kid]
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, plaintext, _aad(context, kid))
        return f"{VERSION}:{kid}:{key_check(key)}:".encode() + nonce + sealed

    def decrypt_bytes(self, envelope: bytes, context: str) -> bytes:
        parts = bytes(envelope).split(b":", 3)
        if len(parts) != 4 or parts[0] != VERSION.encode() or len(parts[3]) <= _NONCE:
            raise TamperedValueError(f"{context}: malformed encrypted value")
        kid, check = (p.decode("ascii", "replace") for p in parts[1:3])
        return self._open(parts[3], kid, check, context)

    def _open(self, raw: bytes, kid: str, check: str, context: str) -> bytes:
        key = self.keys.get(kid)
        if key is None:
            raise MissingKeyError(
                f"{context}: value encrypted with key {kid!r}, which is not in the configured "
                f"key ring ({', '.join(self.keys)}); add it to BACKOFFICE_ENCRYPTION_KEY")
        if not hmac.compare_digest(key_check(key).encode(), check.encode()):
            raise WrongKeyError(
                f"{context}: the configured key {kid!r} (check {key_check(key)}) is not the "
                f"key this value was encrypted with (check {check})")
        try:
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(context, kid))
        except InvalidTag:
            raise TamperedValueError(
                f"{context}: value fails authentication under key {kid!r} (altered in the "
                "database, or copied from another column)") from None


def _aad(context: str, kid: str) -> bytes:
    return f"{VERSION}|{context}|{kid}".encode()


def is_envelope(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(VERSION + ":")


def envelope_kid(value: str) -> str:
    return value.split(":", 2)[1]


def _split(envelope: str, context: str) -> tuple[str, str, str, str]:
    parts = envelope.split(":")
    if len(parts) != 4 or parts[0] != VERSION or not parts[3]:
        raise TamperedValueError(f"{context}: malformed encrypted value")
    return parts[0], parts[1], parts[2], parts[3]


# --- the configured key ring ------------------------------------------------------

_cache: dict[tuple, KeyRing | None] = {}


def keyring_from(key: str | None, key_file: Path | None) -> KeyRing | None:
    """The key ring of a key setting and/or key file (both: the setting's keys first)."""
    specs = []
    if key:
        specs.append(key)
    if key_file is not None:
        try:
            specs.append(Path(key_file).read_text())
        except OSError as exc:
            raise KeyConfigError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    if not specs:
        return None
    return KeyRing.parse("\n".join(specs))


def cached_keyring(secret, path, cache: dict, what: str | None = None) -> KeyRing | None:
    """The key ring of a secret setting and a key-file setting, read once per change of
    either (the file by its modification time); ``what`` names the setting in errors."""
    text = secret.get_secret_value() if secret else None
    stamp = None
    if path is not None:
        try:
            stamp = Path(path).stat().st_mtime_ns
        except OSError:
            stamp = -1
    cache_key = (hashlib.sha256((text or "").encode()).hexdigest(), str(path), stamp)
    if cache_key not in cache:
        try:
            ring = keyring_from(text, path)
        except KeyConfigError as exc:
            if what is None:
                raise
            raise KeyConfigError(f"{what}: {exc}") from None
        cache.clear()
        cache[cache_key] = ring
    return cache[cache_key]


def active_keyring() -> KeyRing | None:
    """The key ring of the current settings (None: encryption off); re-read when they change."""
    from backoffice.settings import get_settings

    settings = get_settings()
    return cached_keyring(settings.encryption_key, settings.encryption_key_file, _cache)


# --- column types --------------------------------------------------------------------


class EncryptedColumnComparisonError(EncryptionError, TypeError):
    pass


class _NoSearch(TypeDecorator.Comparator):
    def operate(self, op, *other, **kwargs):
        if op in (operators.is_, operators.is_not) or (
                op in (operators.eq, operators.ne) and other and other[0] is None):
            return super().operate(op, *other, **kwargs)
        raise EncryptedColumnComparisonError(
            f"{self.type.context} is encrypted at rest (random nonce): it cannot be searched "
            "or compared in SQL; select by another column and compare in Python")

    def reverse_operate(self, op, other, **kwargs):
        raise EncryptedColumnComparisonError(f"{self.type.context} cannot be compared in SQL")


class EncryptedText(TypeDecorator):
    """A text column encrypted at rest when a key is configured (plain VARCHAR otherwise)."""

    impl = String
    cache_ok = True
    comparator_factory = _NoSearch

    def __init__(self, context: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return _seal(value, self.context, str)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if not is_envelope(value):
            return value
        return _ring_for(self.context).decrypt(value, self.context).decode("utf-8")


class EncryptedJSON(TypeDecorator):
    """A JSON column encrypted at rest when a key is configured (the envelope is a JSON
    string, so the column keeps its JSON type and existing stores need no migration).

    ``on_tamper="mark"``: an altered value reads as ``{"__undecryptable__": reason}``
    instead of raising, for the audit trail, whose verification then names the event.
    """

    impl = JSON
    cache_ok = True
    comparator_factory = _NoSearch

    def __init__(self, context: str, on_tamper: str = "raise", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context
        self.on_tamper = on_tamper

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return _seal(value, self.context, lambda v: json.dumps(
            v, ensure_ascii=False, separators=(",", ":"), default=str))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if not is_envelope(value):
            return value
        try:
            plain = _ring_for(self.context).decrypt(value, self.context)
        except TamperedValueError as exc:
            if self.on_tamper == "mark":
                return {"__undecryptable__": str(exc)}
            raise
        return json.loads(plain)


def _seal(value: Any, context: str, serialise: Callable[[Any], str]) -> Any:
    """What a column stores: the value as it is without a key, its envelope with one."""
    if value is None:
        return None
    ring = active_keyring()
    if ring is None:
        return value
    return ring.encrypt(serialise(value).encode("utf-8"), context)


def _ring_for(context: str) -> KeyRing:
    ring = active_keyring()
    if ring is None:
        raise MissingKeyError(
            f"{context} holds encrypted values but no key is configured: set "
            "BACKOFFICE_ENCRYPTION_KEY or BACKOFFICE_ENCRYPTION_KEY_FILE")
    return ring


# --- rotation ----------------------------------------------------------------------


@dataclass
class RotationReport:
    """Rows re-encrypted per column and the kids they were under before."""

    columns: dict[str, int]
    before: dict[str, int]
    primary: str

    def as_dict(self) -> dict[str, Any]:
        return {"primary": self.primary, "rewritten": self.columns, "found_under": self.before}


def encrypted_columns(metadata) -> Iterable[tuple[Any, Any]]:
    """(table, column) of every encrypted column in ``metadata``."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText | EncryptedJSON):
                yield table, column
