"""The audit trail: an append-only, keyed hash chain, anchored in the store and in
published checkpoints that the store's writers cannot change.

**Events.** Each event's ``hash`` covers the previous event's hash, its time, actor,
document, action and ``data_digest``: a digest of its ``data`` (encrypted at rest like the
fields) under a random per-event ``data_salt``. With an audit key
(``BACKOFFICE_AUDIT_KEY`` or ``BACKOFFICE_AUDIT_KEY_FILE``: a key ring in the format of
the encryption key's; the first key hashes new events, the others still verify older
ones) both are HMAC-SHA256 under it, so someone with database access but not the key
cannot re-hash an edited event. ``scheme`` records what made each hash: ``h1:<kid>``
(keyed), ``s1`` (unkeyed SHA-256), empty (written before data digests: that hash covers
the plaintext ``data`` and is checked with :func:`event_hash`). A trail started unkeyed
and keyed later, or hashed under a rotated key, verifies; a scheme never goes back, so an
unkeyed event after a keyed one is reported (a forger's downgrade, or a key removed from
the settings). The scheme is a column rather than a note in the checkpoints because
events written after the last checkpoint, or under several keys between two, must say
themselves which key checks them.

**Head.** :class:`AuditHead`, moved in the same transaction as every append, records the
chain's last event and length, so a trail cut off at the end shows too.

**Erasure.** :func:`erase_event_data` replaces events' data by ``{"erased": request}``
and drops their salt, and records the erasure as an event: the digest, and so the chain,
stays intact, while nobody (key holders included) can test a guess of the erased values
against the digest any more: the salt was the only way to it.

**Checkpoints.** :func:`write_checkpoint` publishes the head (count, last id and hash,
time, audit key id, and the first 16 hex of each event's hash since the previous one,
to name the first event that differs) as a file in a write-once folder
(``BACKOFFICE_AUDIT_CHECKPOINT_DIR``, default ``<data>/audit-checkpoints``): created with
``O_CREAT|O_EXCL``, mode 0444, never overwritten, each naming its predecessor's digest.
Signed with Ed25519 when ``BACKOFFICE_AUDIT_SIGNING_KEY_FILE`` names a private key (the
holder of the database and the audit key still cannot sign); else HMAC-SHA256 under the
audit key; else unsigned (reported as a warning). Whoever rewrites the chain
consistently, even with the audit key, no longer matches a published checkpoint. The
folder is only as write-once as its storage: put it on WORM storage or another account's
share; the file modes here stop accidents, not root.

:func:`audit_report` checks all of it (problems, warnings, notes); :func:`verify_audit_chain`
is its list of problems.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, event, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from backoffice.crypto import EncryptedJSON, KeyConfigError, KeyRing, cached_keyring


def utcnow() -> datetime:
    # Whole microseconds in UTC: the same instant reads back identically on SQLite and
    # PostgreSQL, which the audit hash relies on.
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite gives them back naive)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _utc_text(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat()


#: Serialises appends to the chain on PostgreSQL (the chain needs one writer): taken by
#: :func:`append_audit`, and by the outbox's drain before :func:`append_audit_batch`.
AUDIT_LOCK_KEY = 0x626F5F6175646974  # "bo_audit"

#: ``scheme`` of an event hashed without a key (SHA-256); keyed ones are ``h1:<kid>``.
UNKEYED = "s1"
KEYED_PREFIX = "h1:"
#: The action of the event recording an erasure (data: request id and event ids).
ERASE_ACTION = "audit.erased"
CHECKPOINT_FORMAT = "backoffice-audit-checkpoint/1"
_DATA_TAG = b"backoffice audit data v1\x00"
_CHAIN_TAG = "backoffice audit event v1"
_CHECKPOINT_TAG = b"backoffice audit checkpoint v1\x00"
_PUBLISHED_HEX = 16  # hex characters of each event's hash kept in a checkpoint


class AuditEvent(SQLModel, table=True):
    """An append-only, hash-chained record of a state change."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor: str = "system"
    document_id: int | None = Field(default=None, index=True)
    action: str
    # Events may carry the before/after values of a reviewed field: encrypted at rest
    # like the fields. The hash covers data_digest, a salted (and, with an audit key,
    # keyed) digest of the plaintext: it verifies under any encryption key, survives a
    # rotation, and survives erasure (data replaced, salt dropped). An altered ciphertext
    # reads as a marker and fails the digest.
    data: dict[str, Any] | None = Field(
        default=None, sa_column=Column(EncryptedJSON("auditevent.data", on_tamper="mark")))
    prev_hash: str = ""
    hash: str = Field(default="", max_length=64)
    # What made `hash`: "h1:<kid>", "s1", or None (before data digests: hash covers data).
    scheme: str | None = Field(default=None, max_length=48)
    data_digest: str | None = Field(default=None, max_length=64)
    data_salt: str | None = Field(default=None, max_length=32)


class AuditHead(SQLModel, table=True):
    """The anchor of the audit chain: its last event and length, written in the same
    transaction as every append. A hash chain alone cannot show that its newest events
    were cut off; the head can."""

    id: int = Field(default=1, primary_key=True)
    last_id: int = 0
    last_hash: str = Field(default="", max_length=64)
    count: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


def _advance_audit_head(session: Session, _flush_context) -> None:
    """After each flush that added audit events, move the head (any appender, one place)."""
    added = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if not added:
        return
    last = max(added, key=lambda ev: ev.id)
    conn = session.connection()
    values = {"last_id": last.id, "last_hash": last.hash, "n": len(added), "at": utcnow()}
    moved = conn.execute(text(
        "UPDATE audithead SET last_id = :last_id, last_hash = :last_hash, "
        "count = count + :n, updated_at = :at WHERE id = 1"), values)
    if moved.rowcount == 0:
        # First append (or a trail older than the head): count what is there.
        total = conn.execute(text("SELECT count(*) FROM auditevent")).scalar_one()
        conn.execute(text(
            "INSERT INTO audithead (id, last_id, last_hash, count, updated_at) "
            "VALUES (1, :last_id, :last_hash, :total, :at)"), {**values, "total": total})


event.listen(Session, "after_flush", _advance_audit_head)


# --- hashing -------------------------------------------------------------------------


def _canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str).encode("utf-8")


def _mac(key: bytes | None, message: bytes) -> str:
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def event_hash(prev_hash: str, at: datetime, actor: str, document_id: int | None,
               action: str, data: dict[str, Any] | None) -> str:
    """The hash of an event written before data digests (``scheme`` empty): SHA-256 of
    the plaintext data with the rest. Still used to check those events."""
    payload = json.dumps(
        [prev_hash, _utc_text(at), actor, document_id, action, data or {}],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def data_digest(data: dict[str, Any] | None, salt: str, key: bytes | None = None) -> str:
    """The digest of an event's data under its salt (hex): HMAC-SHA256 under ``key``,
    SHA-256 without one."""
    return _mac(key, _DATA_TAG + bytes.fromhex(salt) + _canonical(data))


def chain_hash(prev_hash: str, at: datetime, actor: str, document_id: int | None,
               action: str, digest: str, scheme: str, key: bytes | None = None) -> str:
    """The hash of an event with a data digest: HMAC-SHA256 under ``key`` (scheme
    ``h1:<kid>``), SHA-256 without one (``s1``)."""
    return _mac(key, _canonical([_CHAIN_TAG, scheme, prev_hash, _utc_text(at), actor,
                                 document_id, action, digest]))


# --- the audit key ---------------------------------------------------------------------

_key_cache: dict[tuple, KeyRing | None] = {}


def audit_keyring() -> KeyRing | None:
    """The audit key ring of the current settings (None: the chain is not keyed)."""
    from backoffice.settings import get_settings

    settings = get_settings()
    return cached_keyring(settings.audit_key, settings.audit_key_file, _key_cache,
                          "audit key (BACKOFFICE_AUDIT_KEY[_FILE])")


def _writer(ring: KeyRing | None) -> tuple[str, bytes | None]:
    if ring is None:
        return UNKEYED, None
    return KEYED_PREFIX + ring.primary, ring.keys[ring.primary]


def _new_event(prev: str, action: str, document_id: int | None, actor: str,
               data: dict[str, Any] | None, scheme: str, key: bytes | None) -> AuditEvent:
    at = utcnow()
    salt = secrets.token_hex(16)
    digest = data_digest(data, salt, key)
    return AuditEvent(at=at, actor=actor, document_id=document_id, action=action, data=data,
                      prev_hash=prev, scheme=scheme, data_salt=salt, data_digest=digest,
                      hash=chain_hash(prev, at, actor, document_id, action, digest, scheme,
                                      key))


# --- appending -------------------------------------------------------------------------


def append_audit(session: Session, action: str, *, document_id: int | None = None,
                 actor: str = "system", data: dict[str, Any] | None = None) -> AuditEvent:
    """Append an audit event chained to the previous one (within the caller's transaction).

    On PostgreSQL a transaction-scoped advisory lock serialises appenders, so two
    workers never chain onto the same predecessor (SQLite serialises writers itself).
    """
    scheme, key = _writer(audit_keyring())
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    elif bind.dialect.name == "sqlite":
        # Take the write lock before reading the head: a transaction whose first
        # statement is this read would otherwise chain onto a head that another
        # process replaces before our insert (two workers forked the chain).
        session.execute(text("UPDATE auditevent SET id = id WHERE id = -1"))
    last = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    ev = _new_event(last.hash if last else "", action, document_id, actor, data, scheme, key)
    session.add(ev)
    return ev


def append_audit_batch(session: Session, events: list[tuple[str, int | None, str, dict]]
                       ) -> None:
    """Append several audit events, chained, with one read of the chain's head.

    The same chain as :func:`append_audit`, without a query per event: the outbox's drain
    records dozens at a time. The caller already holds the chain's write lock: on PostgreSQL
    the advisory lock :data:`AUDIT_LOCK_KEY`, on SQLite a write earlier in the transaction
    (the drain's lease fence).
    """
    if not events:
        return
    scheme, key = _writer(audit_keyring())
    session.flush()
    last = session.exec(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    prev = last.hash if last else ""
    for action, document_id, actor, data in events:
        ev = _new_event(prev, action, document_id, actor, data, scheme, key)
        session.add(ev)
        prev = ev.hash
    session.flush()


# --- erasure ---------------------------------------------------------------------------


class AuditErasureError(ValueError):
    """Events that cannot be erased (none is, then)."""


def _erasure_of(ev: AuditEvent) -> str | None:
    """The request id if the event's data were erased, else None."""
    if not ev.scheme or ev.data_salt is not None:
        return None
    data = ev.data
    if isinstance(data, dict) and len(data) == 1 and isinstance(data.get("erased"), str):
        return data["erased"]
    return None


def erase_event_data(session: Session, event_ids: Iterable[int], request_id: str, *,
                     actor: str = "system") -> list[int]:
    """Erase the data of these events for an erasure request (e.g. a customer's), in the
    caller's transaction, and record it as an ``audit.erased`` event.

    Each event's data becomes ``{"erased": request_id}`` and its salt is dropped: the data
    digest and the chain stay intact (``audit verify`` reports the erasure as information),
    and the erased values can no longer be read or tested against the digest. Events
    already erased are left alone. Returns the ids erased now. Raises
    :class:`AuditErasureError`, erasing nothing, for unknown ids, events written before
    data digests (their hash covers the data itself) and erasure records.
    """
    request_id = str(request_id).strip()
    if not request_id or len(request_id) > 200:
        raise AuditErasureError("an erasure needs a request id (1 to 200 characters)")
    ids = sorted({int(i) for i in event_ids})
    if not ids:
        return []
    events = list(session.exec(select(AuditEvent).where(AuditEvent.id.in_(ids))))
    found = {ev.id for ev in events}
    if missing := [i for i in ids if i not in found]:
        raise AuditErasureError(f"no audit events {_ranges(missing)}")
    if legacy := [ev.id for ev in events if not ev.scheme]:
        raise AuditErasureError(
            f"audit events {_ranges(legacy)} were written before data digests: their hash "
            "covers the data itself, so erasing it would break the chain")
    if records := [ev.id for ev in events if ev.action == ERASE_ACTION]:
        raise AuditErasureError(f"audit events {_ranges(records)} record erasures: they "
                                "hold no personal data and are not erased")
    todo = sorted((ev for ev in events if _erasure_of(ev) is None), key=lambda ev: ev.id)
    if not todo:
        return []
    # The record first: append_audit takes the chain's write lock.
    append_audit(session, ERASE_ACTION, actor=actor,
                 data={"request": request_id, "events": [ev.id for ev in todo]})
    for ev in todo:
        ev.data = {"erased": request_id}
        ev.data_salt = None
        session.add(ev)
    session.flush()
    return [ev.id for ev in todo]


# --- verification ----------------------------------------------------------------------


@dataclass
class AuditReport:
    """What :func:`audit_report` found: ``problems`` (the trail is not intact),
    ``warnings`` (intact, but weaker than it could be) and ``notes`` (information)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0
    checkpoints: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems


def _describe(ev: AuditEvent) -> str:
    return f"event {ev.id} ({ev.action}, document {ev.document_id}, at {_utc_text(ev.at)})"


def _missing_ids(after: int, before: int) -> str:
    if before - after <= 1:
        return ""
    span = f"{after + 1}" if before - after == 2 else f"{after + 1}-{before - 1}"
    return f"; ids {span} are missing"


def _ranges(ids: Iterable[int], limit: int = 12) -> str:
    """``1-40, 45, 47-50`` (at most ``limit`` runs, then how many more)."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text_runs = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    more = len(text_runs) - limit
    return ", ".join(text_runs[:limit]) + (f" and {more} more runs" if more > 0 else "")


def _events(n: int) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


def _rank(scheme: str | None) -> int:
    """0: before data digests, 1: unkeyed, 2: keyed (or unknown): never goes down."""
    return 0 if not scheme else 1 if scheme == UNKEYED else 2


def _content_problem(ev: AuditEvent, ring: KeyRing | None,
                     unverifiable: dict[str, list[int]]) -> str | None:
    scheme = ev.scheme or ""
    if not scheme:
        want = event_hash(ev.prev_hash, ev.at, ev.actor, ev.document_id, ev.action, ev.data)
        return None if hmac.compare_digest(want, ev.hash or "") else "content altered"
    if scheme == UNKEYED:
        key = None
    elif scheme.startswith(KEYED_PREFIX):
        kid = scheme[len(KEYED_PREFIX):]
        key = ring.keys.get(kid) if ring is not None else None
        if key is None:
            unverifiable.setdefault(kid, []).append(ev.id)
            return None
    else:
        return "content altered (unknown hashing scheme)"
    if _erasure_of(ev) is None:
        if not ev.data_salt or not ev.data_digest:
            return "content altered (its data digest or salt is missing)"
        try:
            digest = data_digest(ev.data, ev.data_salt, key)
        except ValueError:
            return "content altered (its salt is not hex)"
        if not hmac.compare_digest(digest, ev.data_digest):
            return "content altered (its data does not match its digest)"
    want = chain_hash(ev.prev_hash, ev.at, ev.actor, ev.document_id, ev.action,
                      ev.data_digest or "", scheme, key)
    return None if hmac.compare_digest(want, ev.hash or "") else "content altered"


def _chain_problems(events: list[AuditEvent], head: AuditHead | None, ring: KeyRing | None,
                    report: AuditReport) -> None:
    problems = report.problems
    by_hash = {ev.hash: ev for ev in events}
    inserted: dict[int, str] = {}
    unverifiable: dict[str, list[int]] = {}
    top: AuditEvent | None = None  # the first event of the highest scheme so far
    for i, ev in enumerate(events):
        altered = _content_problem(ev, ring, unverifiable)
        if altered:
            problems.append(f"{_describe(ev)}: {altered}")
        if top is not None and _rank(ev.scheme) < _rank(top.scheme):
            if _rank(ev.scheme) == 0:
                what = "in the format before data digests"
            else:
                what = ("not keyed (forged or re-hashed without the audit key, or the key "
                        "was removed from the settings)")
            problems.append(f"{_describe(ev)}: {what}, after event {top.id} "
                            f"({'keyed' if _rank(top.scheme) == 2 else 'with a data digest'})")
        elif top is None or _rank(ev.scheme) > _rank(top.scheme):
            top = ev
        prev = events[i - 1] if i else None
        expected = prev.hash if prev else ""
        if ev.prev_hash == expected or ev.id in inserted:
            continue
        anchor = by_hash.get(ev.prev_hash)
        following = events[i + 1] if i + 1 < len(events) else None
        if anchor is not None and prev is not None and anchor.id < prev.id:
            # Chained to an older event: everything in between was slipped in later.
            for other in events:
                if anchor.id < other.id < ev.id:
                    inserted[other.id] = (f"{_describe(other)}: inserted (event {ev.id} is "
                                          f"chained to event {anchor.id}); chain broken")
        elif following is not None and following.prev_hash == expected and prev is not None:
            inserted[ev.id] = (f"{_describe(ev)}: inserted (event {following.id} is chained "
                               f"to event {prev.id}); chain broken")
        elif prev is None:
            problems.append(f"event {ev.id}: chain broken; the event(s) before it were removed")
        elif head is not None and head.count == len(events) and not inserted:
            problems.append(f"{_describe(prev)}: content altered and re-hashed (event {ev.id} "
                            "still links to its original hash); chain broken")
        else:
            problems.append(f"event {ev.id}: chain broken; event(s) removed between event "
                            f"{prev.id} and event {ev.id}{_missing_ids(prev.id, ev.id)}")
    problems.extend(inserted[k] for k in sorted(inserted))
    for kid, ids in sorted(unverifiable.items()):
        problems.append(f"{_ranges_of_events(ids)} keyed with audit key {kid!r}, which is not "
                        "configured (BACKOFFICE_AUDIT_KEY): they cannot be checked")
    _erasures(events, report)
    _key_state(events, ring, report)
    _head_problems(events, head, inserted, problems)


def _ranges_of_events(ids: list[int]) -> str:
    return f"{'event' if len(ids) == 1 else 'events'} {_ranges(ids)} ({len(ids)})"


def _erasures(events: list[AuditEvent], report: AuditReport) -> None:
    recorded: dict[str, set[int]] = {}
    erased: dict[str, list[int]] = {}
    for ev in events:
        request = _erasure_of(ev)
        if request is not None:
            erased.setdefault(request, []).append(ev.id)
        elif ev.action == ERASE_ACTION and ev.scheme and isinstance(ev.data, dict):
            ids = ev.data.get("events")
            if isinstance(ids, list):
                recorded.setdefault(str(ev.data.get("request")), set()).update(
                    i for i in ids if isinstance(i, int))
    for request, ids in erased.items():
        unrecorded = [i for i in ids if i not in recorded.get(request, ())]
        if unrecorded:
            report.problems.append(
                f"{_ranges_of_events(unrecorded)}: data erased (request {request!r}) but the "
                "trail records no such erasure")
        if done := len(ids) - len(unrecorded):
            report.notes.append(f"{_events(done)} erased (request {request})")


def _key_state(events: list[AuditEvent], ring: KeyRing | None, report: AuditReport) -> None:
    legacy = [ev.id for ev in events if not ev.scheme]
    unkeyed = [ev.id for ev in events if _rank(ev.scheme) < 2]
    if legacy:
        report.notes.append(f"{_ranges_of_events(legacy)} predate data digests: checked "
                            "under the old formula; their data cannot be erased")
    if ring is None:
        if events and len(unkeyed) == len(events):
            report.warnings.append(
                "the audit chain is not keyed (no BACKOFFICE_AUDIT_KEY): whoever can write to "
                "the database can rewrite it consistently; only published checkpoints show it")
    elif unkeyed:
        report.warnings.append(
            f"{_ranges_of_events(unkeyed)} are not keyed (written before the audit key was "
            "set): only the checkpoints published since protect them from a consistent "
            "rewrite")


def _head_problems(events: list[AuditEvent], head: AuditHead | None,
                   inserted: dict[int, str], problems: list[str]) -> None:
    if head is None:
        if events:
            problems.append("audit head missing: the trail's end and length cannot be checked")
        return
    ids = {ev.id for ev in events}
    last = events[-1] if events else None
    if head.last_id and head.last_id not in ids:
        end = f"it now ends at event {last.id}" if last else "it is now empty"
        problems.append(f"event {head.last_id} (the last one recorded in the head) was "
                        f"removed: the trail was cut off; {end}")
    elif last is not None and last.id != head.last_id:
        later = [ev for ev in events if ev.id > head.last_id]
        for ev in later:
            if ev.id not in inserted:
                problems.append(f"{_describe(ev)}: inserted after the recorded end "
                                f"(event {head.last_id})")
    elif last is not None and last.hash != head.last_hash:
        problems.append(f"{_describe(last)}: content altered and re-hashed (the head "
                        "holds another hash)")
    if head.count != len(events):
        problems.append(f"the head records {head.count} events, the trail holds {len(events)}")


def _load(session: Session) -> tuple[list[AuditEvent], AuditHead | None]:
    events = list(session.exec(select(AuditEvent).order_by(AuditEvent.id)))
    return events, session.get(AuditHead, 1)


def audit_report(session: Session, checkpoint_dir: Path | str | None = None, *,
                 keyring: Any = ..., verify_keys: Any = ...) -> AuditReport:
    """Check the audit trail: every event's hash and data digest, the chain's links, the
    head, erasures, and (with ``checkpoint_dir``) every checkpoint published there.

    ``keyring`` (default: the configured audit key ring) checks keyed events and HMAC
    signatures; ``verify_keys`` (default: from the settings) Ed25519 signatures. For a
    consistent view of a live trail, read through :func:`snapshot_session`.
    """
    ring = audit_keyring() if keyring is ... else keyring
    events, head = _load(session)
    return _report(events, head, ring, checkpoint_dir, verify_keys)


def _report(events: list[AuditEvent], head: AuditHead | None, ring: KeyRing | None,
            checkpoint_dir: Path | str | None, verify_keys: Any) -> AuditReport:
    report = AuditReport(events=len(events))
    _chain_problems(events, head, ring, report)
    if checkpoint_dir is not None:
        keys = checkpoint_verify_keys() if verify_keys is ... else (verify_keys or {})
        _check_checkpoints(events, Path(checkpoint_dir), ring, keys, report)
    return report


def verify_audit_chain(session: Session, checkpoint_dir: Path | str | None = None) -> list[str]:
    """Problems in the audit trail, each naming the event; an empty list means intact.

    Finds altered events (hash, data digest), events removed or inserted in the middle
    (chain links), events removed from or added at the end (the head record), erasures
    not recorded, and, with ``checkpoint_dir``, a trail that no longer matches a published
    checkpoint. Warnings and notes: :func:`audit_report`.
    """
    return audit_report(session, checkpoint_dir).problems


@contextmanager
def snapshot_session(engine: Engine) -> Iterator[Session]:
    """A read-only session seeing one snapshot of the store (the events and the head as
    of one instant, while workers go on appending): REPEATABLE READ on PostgreSQL, one
    read transaction on SQLite."""
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        elif engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN")
        try:
            yield session
        finally:
            session.rollback()


# --- checkpoints -----------------------------------------------------------------------


class AuditCheckpointError(RuntimeError):
    """No checkpoint was written: the trail does not verify (``problems``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the audit trail does not verify, no checkpoint published: "
                         + "; ".join(problems[:5])
                         + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))


def _public_key_id(public_key: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_signing_key(path: Path | str) -> Any:
    """The Ed25519 private key of a PEM file (PKCS#8, unencrypted)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise KeyConfigError(f"cannot read the audit signing key {path}: {exc.strerror}") \
            from None
    except (ValueError, TypeError):
        raise KeyConfigError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigError(f"{path}: not an Ed25519 key")
    return key


def load_verify_keys(path: Path | str) -> dict[str, Any]:
    """Ed25519 public keys by key id, from a file of one or more PEM public keys."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise KeyConfigError(f"cannot read the audit verify keys {path}: {exc.strerror}") \
            from None
    keys = {}
    for pem in re.findall(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", blob,
                          re.DOTALL):
        try:
            key = load_pem_public_key(pem)
        except ValueError:
            raise KeyConfigError(f"{path}: a PEM block is not a public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyConfigError(f"{path}: not an Ed25519 public key")
        keys[_public_key_id(key)] = key
    if not keys:
        raise KeyConfigError(f"{path}: no PEM public key in it")
    return keys


def checkpoint_signing_key() -> Any:
    """The configured Ed25519 signing key (None: checkpoints are signed with HMAC under
    the audit key, or not at all)."""
    from backoffice.settings import get_settings

    path = get_settings().audit_signing_key_file
    return load_signing_key(path) if path else None


def checkpoint_verify_keys() -> dict[str, Any]:
    """The Ed25519 keys checking checkpoint signatures: ``BACKOFFICE_AUDIT_VERIFY_KEY_FILE``,
    else the public half of the signing key."""
    from backoffice.settings import get_settings

    settings = get_settings()
    if settings.audit_verify_key_file:
        return load_verify_keys(settings.audit_verify_key_file)
    if settings.audit_signing_key_file:
        public = load_signing_key(settings.audit_signing_key_file).public_key()
        return {_public_key_id(public): public}
    return {}


def generate_signing_key(private_path: Path | str) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair: the private key (PEM, mode 0400, never overwritten)
    and its public key beside it (``.pub.pem``). Returns both paths and the key id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    key = Ed25519PrivateKey.generate()
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.stem + ".pub.pem")
    _write_once(private_path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                NoEncryption()), mode=0o400)
    _write_once(public_path, key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), mode=0o444)
    return private_path, public_path, _public_key_id(key.public_key())


def _write_once(path: Path, content: bytes, mode: int = 0o444) -> Path:
    """Create ``path`` (never an existing file: O_CREAT|O_EXCL), write, sync, make it
    read-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(path, mode)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def _sign(body: dict[str, Any], signing_key: Any, ring: KeyRing | None) -> dict[str, str]:
    message = _CHECKPOINT_TAG + _canonical(body)
    if signing_key is not None:
        return {"alg": "ed25519", "key_id": _public_key_id(signing_key.public_key()),
                "value": base64.b64encode(signing_key.sign(message)).decode()}
    if ring is not None:
        return {"alg": "hmac-sha256", "key_id": ring.primary,
                "value": _mac(ring.keys[ring.primary], message)}
    return {"alg": "none", "sha256": hashlib.sha256(message).hexdigest()}


@dataclass
class _Published:
    path: Path
    raw: bytes
    body: dict[str, Any]
    signature: dict[str, Any]

    @property
    def order(self) -> tuple[int, str, str]:
        return (self.body["count"], str(self.body["time"]), self.path.name)


def _checkpoint_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith("audit-")
                  and p.name.endswith(".json"))


def _parse(path: Path) -> _Published:
    raw = path.read_bytes()
    doc = json.loads(raw)
    body, signature = doc["checkpoint"], doc["signature"]
    if body.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("unknown format")
    for name, kind in (("count", int), ("last_id", int), ("last_hash", str),
                       ("first_position", int), ("events", list), ("time", str)):
        if not isinstance(body.get(name), kind):
            raise TypeError(f"no {name}")
    if not isinstance(signature, dict):
        raise TypeError("no signature")
    return _Published(path, raw, body, signature)


def _load_checkpoints(directory: Path, report: AuditReport | None = None) -> list[_Published]:
    loaded = []
    for path in _checkpoint_files(directory):
        try:
            loaded.append(_parse(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if report is not None:
                report.problems.append(f"checkpoint {path.name}: unreadable or malformed "
                                       f"({type(exc).__name__}); it cannot be checked")
    return sorted(loaded, key=lambda cp: cp.order)


def _signature_state(cp: _Published, ring: KeyRing | None, verify_keys: dict[str, Any]
                     ) -> tuple[bool, str | None]:
    """(signed, problem)."""
    sig = cp.signature
    message = _CHECKPOINT_TAG + _canonical(cp.body)
    alg, key_id = sig.get("alg"), str(sig.get("key_id"))
    name = cp.path.name
    if alg == "none":
        ok = hmac.compare_digest(str(sig.get("sha256")), hashlib.sha256(message).hexdigest())
        return False, None if ok else f"checkpoint {name}: its content was altered"
    if alg == "hmac-sha256":
        key = ring.keys.get(key_id) if ring is not None else None
        if key is None:
            return True, (f"checkpoint {name}: signed with audit key {key_id!r}, which is not "
                          "configured: its signature cannot be checked")
        if not hmac.compare_digest(str(sig.get("value")), _mac(key, message)):
            return True, f"checkpoint {name}: signature does not verify (altered or forged)"
        return True, None
    if alg == "ed25519":
        from cryptography.exceptions import InvalidSignature

        public = verify_keys.get(key_id)
        if public is None:
            return True, (f"checkpoint {name}: signed by Ed25519 key {key_id}, which is not "
                          "among the verify keys (BACKOFFICE_AUDIT_VERIFY_KEY_FILE): its "
                          "signature cannot be checked")
        try:
            public.verify(base64.b64decode(str(sig.get("value")), validate=True), message)
        except (InvalidSignature, ValueError):
            return True, f"checkpoint {name}: signature does not verify (altered or forged)"
        return True, None
    return False, f"checkpoint {name}: unknown signature algorithm"


def _first_difference(events: list[AuditEvent], published: dict[int, tuple[int, str]],
                      upto: int) -> str:
    for position in sorted(p for p in published if p <= upto):
        ev_id, prefix = published[position]
        if position > len(events):
            return f"event {ev_id} (position {position}) is missing"
        ev = events[position - 1]
        if ev.id != ev_id:
            return (f"event {ev_id} (position {position}) is missing; {_describe(ev)} is "
                    "there now")
        if not ev.hash.startswith(prefix):
            return f"{_describe(ev)}: its hash differs from the published one"
    return "not found among the published hashes"


def _check_checkpoints(events: list[AuditEvent], directory: Path, ring: KeyRing | None,
                       verify_keys: dict[str, Any], report: AuditReport) -> None:
    checkpoints = _load_checkpoints(directory, report)
    report.checkpoints = len(checkpoints)
    if not _checkpoint_files(directory):
        report.warnings.append(
            f"no published checkpoints in {directory}: a consistent rewrite of the "
            "database would not be seen (`backoffice audit checkpoint`, or the "
            "audit-checkpoint deployment)")
        return
    published: dict[int, tuple[int, str]] = {}
    for cp in checkpoints:
        for offset, pair in enumerate(cp.body["events"]):
            if (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int)
                    and isinstance(pair[1], str)):
                published.setdefault(cp.body["first_position"] + offset, (pair[0], pair[1]))
    by_name = {cp.path.name: cp for cp in checkpoints}
    first_signed: _Published | None = None
    unsigned: list[str] = []
    for cp in checkpoints:
        name, body = cp.path.name, cp.body
        signed, problem = _signature_state(cp, ring, verify_keys)
        if problem:
            report.problems.append(problem)
        if signed and first_signed is None:
            first_signed = cp
        elif not signed:
            unsigned.append(name)
            if first_signed is not None:
                report.problems.append(f"checkpoint {name}: not signed, after the signed "
                                       f"checkpoint {first_signed.path.name}")
        previous = body.get("previous")
        if isinstance(previous, dict):
            before = by_name.get(str(previous.get("file")))
            if before is None:
                report.problems.append(f"checkpoint {name} follows {previous.get('file')}, "
                                       f"which is no longer in {directory} (removed)")
            elif not hmac.compare_digest(hashlib.sha256(before.raw).hexdigest(),
                                         str(previous.get("sha256"))):
                report.problems.append(f"checkpoint {name} follows {before.path.name}, "
                                       "whose content has changed since")
        count = body["count"]
        at = events[count - 1] if 0 < count <= len(events) else None
        if at is not None and at.id == body["last_id"] and at.hash == body["last_hash"]:
            continue
        if count > len(events):
            what = (f"records {count} events up to event {body['last_id']}; the trail holds "
                    f"{len(events)}")
        else:
            what = (f"the trail no longer matches it (event {body['last_id']} at position "
                    f"{count})")
        report.problems.append(f"checkpoint {name} (published {body['time']}): {what}; first "
                               f"differing event: {_first_difference(events, published, count)}")
    if unsigned and (ring is not None or verify_keys):
        report.warnings.append(f"{len(unsigned)} checkpoint(s) not signed (published before a "
                               f"signing key was set), e.g. {unsigned[0]}")
    elif unsigned:
        report.warnings.append(f"{len(unsigned)} checkpoint(s) not signed: no audit key nor "
                               "BACKOFFICE_AUDIT_SIGNING_KEY_FILE")


@dataclass
class CheckpointResult:
    """A published checkpoint (``written``: a new file; else the head had not moved since
    the latest one, which ``path`` names; ``path`` None: the trail is empty)."""

    path: Path | None
    written: bool
    count: int
    last_id: int | None
    last_hash: str | None
    signature: str | None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "written": self.written,
                "count": self.count, "last_id": self.last_id, "last_hash": self.last_hash,
                "signature": self.signature, "warnings": self.warnings}


def write_checkpoint(session: Session, directory: Path | str, *, keyring: Any = ...,
                     signing_key: Any = ..., verify_keys: Any = ...,
                     now: datetime | None = None) -> CheckpointResult:
    """Verify the trail (against the checkpoints already published too) and publish its
    head as a new checkpoint file in ``directory``; raises :class:`AuditCheckpointError`
    (publishing nothing) if it does not verify. Nothing is written if the head has not
    moved since the latest checkpoint.

    ``keyring``, ``signing_key`` (Ed25519 private key) and ``verify_keys`` default to the
    settings.
    """
    directory = Path(directory)
    ring = audit_keyring() if keyring is ... else keyring
    signer = checkpoint_signing_key() if signing_key is ... else signing_key
    if verify_keys is ...:
        verify_keys = checkpoint_verify_keys()
    if signer is not None:
        verify_keys = {**verify_keys, _public_key_id(signer.public_key()): signer.public_key()}
    events, head = _load(session)
    report = _report(events, head, ring, directory, verify_keys)
    if report.problems:
        raise AuditCheckpointError(report.problems)
    report.warnings = [w for w in report.warnings if not w.startswith("no published")]
    if not events:
        return CheckpointResult(None, False, 0, None, None, None, report.warnings)
    last = events[-1]
    existing = _load_checkpoints(directory)
    latest = existing[-1] if existing else None
    if latest is not None and latest.body["count"] == len(events) \
            and latest.body["last_hash"] == last.hash:
        return CheckpointResult(latest.path, False, len(events), last.id, last.hash,
                                latest.signature.get("alg"), report.warnings)
    since = latest.body["count"] if latest is not None else 0
    now = (now or datetime.now(UTC)).astimezone(UTC)
    body = {
        "format": CHECKPOINT_FORMAT,
        "count": len(events),
        "last_id": last.id,
        "last_hash": last.hash,
        "last_scheme": last.scheme,
        "audit_kid": ring.primary if ring is not None else None,
        "time": now.isoformat().replace("+00:00", "Z"),
        "previous": ({"file": latest.path.name,
                      "sha256": hashlib.sha256(latest.raw).hexdigest()} if latest else None),
        "first_position": since + 1,
        "events": [[ev.id, ev.hash[:_PUBLISHED_HEX]] for ev in events[since:]],
    }
    signature = _sign(body, signer, ring)
    content = json.dumps({"checkpoint": body, "signature": signature}, ensure_ascii=False,
                         sort_keys=True, separators=(", ", ": ")).encode("utf-8") + b"\n"
    stem = f"audit-{len(events):012d}-{now:%Y%m%dT%H%M%S%f}Z"
    for attempt in range(100):
        path = directory / (f"{stem}.json" if not attempt else f"{stem}-{attempt}.json")
        try:
            _write_once(path, content)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a hundred checkpoints of one head in one microsecond
        raise FileExistsError(f"{directory / stem}.json")
    return CheckpointResult(path, True, len(events), last.id, last.hash, signature["alg"],
                            report.warnings)


def publish_checkpoint(engine: Engine | None = None,
                       directory: Path | str | None = None) -> dict[str, Any]:
    """Verify the store's audit trail and publish a checkpoint of its head into the
    configured write-once folder (``BACKOFFICE_AUDIT_CHECKPOINT_DIR``); what the
    audit-checkpoint flow and ``backoffice audit checkpoint`` run."""
    from backoffice.settings import get_settings

    settings = get_settings()
    if engine is None:
        from backoffice.runtime import get_db

        engine = get_db(settings)
    with snapshot_session(engine) as session:
        result = write_checkpoint(session, directory or settings.audit_checkpoints_dir)
    return result.as_dict()
