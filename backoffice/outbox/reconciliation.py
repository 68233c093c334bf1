"""Reconciling the outbox against the downstream systems.

:func:`reconcile` compares, per target, what the outbox says was posted with what the target
holds (its connector's ``held()``): messages posted here but missing there, held more than
once, held under another remote id, dead here but held anyway, or broken there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from backoffice.connectors.base import Connector, LookupUnavailable
from backoffice.outbox.table import OUTBOX, OutboxStatus
from domain.masking import mask_text


@dataclass
class TargetReconciliation:
    """Outbox against downstream for one target. Problems make ``ok`` false."""

    target: str
    posted: int = 0
    held: int = 0
    missing: list[str] = field(default_factory=list)       # posted here, absent there
    duplicates: list[str] = field(default_factory=list)    # held more than once
    mismatched: list[str] = field(default_factory=list)    # held under another remote id
    dead_but_held: list[str] = field(default_factory=list)  # dead here, there anyway
    broken: list[str] = field(default_factory=list)        # e.g. checksum mismatch
    in_progress_held: list[str] = field(default_factory=list)  # info: reply still pending
    not_in_outbox: list[str] = field(default_factory=list)     # info: purged or foreign
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not (self.missing or self.duplicates or self.mismatched
                                           or self.dead_but_held or self.broken)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ok"] = self.ok
        return out


@dataclass
class Reconciliation:
    targets: dict[str, TargetReconciliation]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets.values())

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "targets": {n: t.as_dict() for n, t in self.targets.items()}}


def reconcile(engine: Engine, connectors: Mapping[str, Connector] | Any,
              targets: Iterable[str] | None = None) -> Reconciliation:
    """Compare what the outbox says was posted with what each target holds."""
    names = list(targets) if targets is not None else list(connectors)
    result = Reconciliation({})
    c = OUTBOX.c
    for name in names:
        rec = TargetReconciliation(name)
        result.targets[name] = rec
        with engine.connect() as conn:
            ours = {r.idempotency_key: (OutboxStatus(r.status), r.remote_id) for r in
                    conn.execute(sa_select(c.idempotency_key, c.status, c.remote_id)
                                 .where(c.target == name))}
        rec.posted = sum(1 for s, _ in ours.values() if s is OutboxStatus.POSTED)
        try:
            held = list(connectors[name].held())
        except (LookupUnavailable, OSError, SQLAlchemyError) as exc:
            rec.error = mask_text(f"cannot read {name}: {exc}")
            continue
        rec.held = len(held)
        seen: dict[str, int] = {}
        for h in held:
            seen[h.key] = seen.get(h.key, 0) + 1
            if h.problem:
                rec.broken.append(f"{h.key}: {h.problem}")
            mine = ours.get(h.key)
            if mine is None:
                rec.not_in_outbox.append(h.key)
            elif mine[0] is OutboxStatus.DEAD:
                rec.dead_but_held.append(h.key)
            elif mine[0] is not OutboxStatus.POSTED:
                rec.in_progress_held.append(h.key)
            elif mine[1] is not None and h.remote_id is not None and mine[1] != h.remote_id:
                rec.mismatched.append(h.key)
        rec.duplicates = sorted(k for k, n in seen.items() if n > 1)
        rec.missing = sorted(k for k, (s, _) in ours.items()
                             if s is OutboxStatus.POSTED and k not in seen)
    return result
