"""A processing worker: take an inbox, then claim and process documents under leases.

Any number of workers may run against one store and one inbox: intake turns a file
another worker took first into a duplicate, claims never hand one document to two
workers, and documents of a worker that died are recovered when their lease runs out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backoffice import leases
from backoffice.intake import scan_inbox
from backoffice.processing import process_claimed
from backoffice.settings import Settings
from domain.masking import mask_text

log = logging.getLogger("backoffice.worker")


@dataclass
class WorkerReport:
    owner: str
    received: int = 0
    duplicates: int = 0
    quarantined_at_intake: int = 0
    processed: list[int] = field(default_factory=list)
    failed: int = 0
    requeued: int = 0
    quarantined_poison: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["processed"] = len(self.processed)
        return out


def take_inbox(engine: Engine, inbox: Path, settings: Settings, report: WorkerReport,
               batch: str | None = None) -> None:
    with Session(engine) as session:
        result = scan_inbox(session, inbox, documents_dir=settings.documents_dir,
                            quarantine_dir=settings.quarantine_dir,
                            max_bytes=settings.max_file_bytes, batch=batch)
    report.received += len(result.received)
    report.duplicates += len(result.duplicates)
    report.quarantined_at_intake += len(result.quarantined)


def run_worker(engine: Engine, recognizer, settings: Settings, *, inbox: Path | None = None,
               owner: str | None = None, once: bool = False, batch: str | None = None,
               max_seconds: float | None = None, stop: Callable[[], bool] | None = None,
               today: date | None = None,
               on_claim: Callable[[leases.Claim], None] | None = None) -> WorkerReport:
    """Loop: intake, recover expired leases, claim and process until nothing is claimable.

    ``once``: return when no document is waiting or in progress anywhere (in progress
    under another worker's lease is waited for: it finishes, or its lease expires and
    this worker takes it over). Otherwise poll every ``worker_poll_seconds`` until
    ``stop()`` or ``max_seconds``.
    """
    report = WorkerReport(owner=owner or leases.new_owner())
    start = time.monotonic()
    scanned = False
    recovery_every = max(settings.worker_poll_seconds * 10, 5.0)
    last_recovery = 0.0

    def recover() -> None:
        nonlocal last_recovery
        last_recovery = time.monotonic()
        found = leases.recover_expired(engine, max_attempts=settings.processing_max_attempts,
                                       actor=report.owner)
        report.requeued += len(found.requeued)
        report.quarantined_poison += len(found.quarantined)

    while not (stop and stop()):
        if inbox is not None and (not once or not scanned):
            take_inbox(engine, inbox, settings, report, batch)
            scanned = True
        recover()
        while not (stop and stop()):
            if time.monotonic() - last_recovery > recovery_every:
                recover()  # a queue that never empties must not starve expired leases
            held = leases.claim(engine, report.owner,
                                lease_seconds=settings.processing_lease_seconds)
            if held is None:
                break
            if on_claim is not None:
                on_claim(held)
            try:
                report.processed += process_claimed(engine, held, recognizer, settings, today)
            except Exception as exc:  # noqa: BLE001 - one bad document must not stop the worker
                report.failed += 1
                log.error("document %s failed (attempt %s): %s", held.document_id,
                          held.attempt, mask_text(f"{type(exc).__name__}: {exc}"))
            if max_seconds is not None and time.monotonic() - start > max_seconds:
                break
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            break
        if once and leases.count_active(engine) == {"received": 0, "processing": 0}:
            break
        time.sleep(settings.worker_poll_seconds)
    report.seconds = time.monotonic() - start
    return report
