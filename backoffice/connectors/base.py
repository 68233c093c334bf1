"""The connector protocol: one object per downstream target, with two sides.

- The **lookup side** (:meth:`Connector.find`) is read-only: the cross-system rules reach
  it through :class:`validators.lookup.SystemLookup` (see :mod:`backoffice.lookup_rest`),
  and the ``legacy_id`` mapping consults it.
- The **post side** (:meth:`Connector.post`) sends one outbox message under its
  idempotency key. It returns a :class:`PostResult` or raises :class:`TransientError`
  (nothing happened, or we cannot know: send again with the same key) or
  :class:`PermanentError` (the system refuses this payload: dead-letter it).
- :meth:`Connector.held` lists what the system holds under our keys, for reconciliation.

Error messages never carry payload values: they are built from status codes, field
locations and exception types, and masked once more with :func:`backoffice.masking.mask_text`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

from domain.masking import mask_text


def request_hash(body: Mapping[str, Any]) -> str:
    """The SHA-256 of a request body in canonical JSON (to tell a key's reuse for another
    payload from a repeat)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str,
                                     separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Outgoing:
    """One outbox message as a connector sees it."""

    key: str
    target: str
    document_id: int
    payload: Mapping[str, Any]
    payload_version: int = 1

    @property
    def document_ref(self) -> str:
        return str(self.payload.get("document_ref") or f"doc-{self.document_id}")

    @property
    def doc_type(self) -> str | None:
        return self.payload.get("doc_type")

    @property
    def fields(self) -> Mapping[str, Any]:
        return self.payload.get("fields") or {}

    def __repr__(self) -> str:  # never show the payload
        return f"Outgoing(key={self.key!r}, target={self.target!r})"


@dataclass(frozen=True)
class PostResult:
    """The system took the message (now or on an earlier attempt: ``replayed``)."""

    remote_id: str | None
    replayed: bool = False
    status_code: int | None = None


@dataclass(frozen=True)
class HeldRecord:
    """A record the downstream system holds under one of our idempotency keys."""

    key: str
    remote_id: str | None
    source_ref: str | None = None
    problem: str | None = None  # e.g. a file whose checksum does not match its manifest


class PostError(Exception):
    """Posting failed; ``message`` is safe to store and log (no personal data)."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 status_code: int | None = None) -> None:
        self.message = mask_text(message)
        self.retry_after = retry_after
        self.status_code = status_code
        super().__init__(self.message)


class TransientError(PostError):
    """Try again later with the same key: nothing happened, or the outcome is unknown."""


class PermanentError(PostError):
    """The system refuses this payload; retrying cannot help."""


class LookupUnavailable(RuntimeError):
    """The lookup side could not answer (system down, timeout): not the same as "not found"."""


@runtime_checkable
class Connector(Protocol):
    """A downstream target: read-only lookups and idempotent posting."""

    target: str

    def find(self, entity: str, criteria: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Records of ``entity`` matching ``criteria`` (a list value means any of)."""
        ...

    def post(self, message: Outgoing) -> PostResult:
        """Send one message under ``message.key``; a repeat must create nothing."""
        ...

    def held(self) -> Iterator[HeldRecord]:
        """Everything the system holds under an idempotency key."""
        ...

    def close(self) -> None:
        ...


@dataclass
class ConnectorSet:
    """The connectors of a run, by target name; closes them all at the end."""

    connectors: dict[str, Connector] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Connector:
        return self.connectors[name]

    def __contains__(self, name: object) -> bool:
        return name in self.connectors

    def __iter__(self):
        return iter(self.connectors)

    def items(self):
        return self.connectors.items()

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
