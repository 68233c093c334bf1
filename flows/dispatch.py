"""Hand a run's documents to readers and see each one through (``BACKOFFICE_DISPATCH=readers``).

Each document becomes a deferred ``process-document`` task run on the Prefect server
(shown under the ``process-inbox`` run in the UI); readers on any host take them. This
loop watches the store (the truth about a document) and Prefect (the truth about a run)
until every document has left ``received``/``processing``, and hands a document out again
when its run cannot finish it:

- its reader vanished from the server's list of task workers while holding it (killed,
  host lost): the lease is ended, the document requeued (``backoffice.leases``), the
  dead run marked *Crashed* with the reason, and a new run created;
- its run started but the document was never claimed, and a reader vanished since (it
  died between the two);
- its run failed or crashed and the document is back in ``received``;
- its run is still *Scheduled* while runs created after it have started (the queue is
  first in, first out): a reader that died had taken it from the server's queue without
  starting it. Handed out again at once after a reader vanished, else after
  ``stall_seconds`` (a live reader finishing its document may hold one such run).

A document handed out twice is still recorded once: the second run finds it taken (the
store's claim). Documents still waiting after ``max_wait_seconds`` stay ``received`` for
the next run, and the flow says so.
"""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterId
from prefect.states import Cancelled, Crashed

from backoffice import leases, payloads
from backoffice.batch import statuses, with_pages
from backoffice.runtime import get_db
from backoffice.settings import Settings
from backoffice.store import Status
from flows.read_document import owner_host, owner_run, reader_task

#: How long Prefect's payloads of deferred runs are kept in the store (``task_payload``).
PAYLOAD_RETENTION = timedelta(days=7)
_FINAL_BAD = {"FAILED", "CRASHED", "CANCELLED"}
_ACTIVE = {Status.RECEIVED, Status.PROCESSING}


@dataclass
class Dispatch:
    """What happened to a run's documents on the readers."""

    done: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    handed_out: int = 0
    handed_out_again: int = 0
    crashed_runs: list[str] = field(default_factory=list)


def _mark(client, task_run_id: UUID, state) -> None:
    """Record a final state for a run its reader cannot finish, as Prefect's own engine
    records task-run states: an event the server's recorder applies. (Setting it through
    the REST API detaches the run from its flow run in Prefect 3.8: the server's event for
    it names no flow run.)"""
    from prefect.utilities.engine import emit_task_run_state_change_event

    run = client.read_task_run(task_run_id)
    state.state_details.task_run_id = task_run_id
    emit_task_run_state_change_event(task_run=run, initial_state=run.state,
                                     validated_state=state)


def connected_readers(client) -> set[str]:
    """Ids (``host-pid``) of the task workers connected to the server now."""
    response = client.request("POST", "/task_workers/filter", json={})
    return {w["identifier"] for w in response.json()}


def run_on_readers(doc_ids: list[int], settings: Settings, *,
                   confidence_threshold: float | None = None,
                   doc_types: list[str] | None = None, poll_seconds: float = 2.0,
                   vanished_grace_seconds: float = 5.0, stall_seconds: float = 60.0,
                   max_wait_seconds: float | None = None,
                   hand_out_threads: int = 8) -> Dispatch:
    logger = get_run_logger()
    engine = get_db(settings)
    task = reader_task(settings)
    out = Dispatch()
    runs: dict[int, UUID] = {}
    created: dict[UUID, float] = {}

    def record(doc_id: int, run_id: UUID, at: float) -> None:
        if doc_id in runs:
            out.handed_out_again += 1
        runs[doc_id] = run_id
        created[run_id] = at
        out.handed_out += 1

    def named(doc_id: int):
        # Named for its document from the start (Prefect names a deferred run by its
        # position until a reader starts it and applies the name template).
        return task.with_options(name=f"process-document-{doc_id}")

    def hand_out(doc_id: int) -> None:
        future = named(doc_id).delay(doc_id, confidence_threshold, doc_types)
        record(doc_id, future.task_run_id, time.monotonic())

    # Creating a deferred run is an API call and a payload write (~0.1-0.2 s): a batch is
    # handed out by several threads, in order (``created`` keeps the submission order).
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(hand_out_threads, len(doc_ids)))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, named(doc_id).delay, doc_id,
                               confidence_threshold, doc_types) for doc_id in doc_ids]
        for i, (doc_id, future) in enumerate(zip(doc_ids, futures, strict=True)):
            record(doc_id, future.result().task_run_id, start + i * 1e-6)
    logger.info("%d documents handed to readers (process-document runs)", len(doc_ids))
    pending = set(doc_ids)
    missing_since: dict[str, float] = {}
    started = time.monotonic()
    last_nag = 0.0
    newest_started = 0.0
    last_vanish = float("-inf")  # a reader that vanished may also have taken a run unstarted
    with get_client(sync_client=True) as client:
        while pending:
            time.sleep(poll_seconds)
            now = time.monotonic()
            state_of = {
                r.id: r.state_type.value if r.state_type else "SCHEDULED"
                for r in client.read_task_runs(task_run_filter=TaskRunFilter(
                    id=TaskRunFilterId(any_=[runs[d] for d in pending])))}
            status = statuses(engine, sorted(pending))
            # Readers that vanished while holding documents.
            alive = connected_readers(client)
            holders = {d: o for d, o in leases.holders(engine).items() if d in pending}
            for owner in {o for o in holders.values()}:
                host = owner_host(owner)
                if host in alive:
                    missing_since.pop(host, None)
                else:
                    missing_since.setdefault(host, now)
            gone = [d for d, o in holders.items()
                    if now - missing_since.get(owner_host(o), now) >= vanished_grace_seconds]
            leases.expire(engine, gone)
            # Also leases that ran out on their own (a reader hung past its lease).
            found = leases.recover_expired(engine, max_attempts=settings.processing_max_attempts,
                                           actor="process-inbox")
            if gone:
                last_vanish = now
                for doc_id in gone:
                    run_id = owner_run(holders[doc_id])
                    host = owner_host(holders[doc_id])
                    if run_id and state_of.get(UUID(run_id), "RUNNING") not in (
                            _FINAL_BAD | {"COMPLETED"}):
                        _mark(client, UUID(run_id), Crashed(
                            message=f"reader {host} stopped while processing document "
                            f"{doc_id} (gone from the server's task workers); the document "
                            "was requeued"))
                        out.crashed_runs.append(run_id)
                    logger.warning("reader %s vanished holding document %s: requeued",
                                   host, doc_id)
            if found.requeued or found.quarantined:
                status.update(statuses(engine, found.requeued + found.quarantined))
            for doc_id in found.requeued:
                if doc_id in pending:
                    hand_out(doc_id)
            for run_id, run_state in state_of.items():
                if run_state != "SCHEDULED":  # a reader took it off the queue
                    newest_started = max(newest_started, created[run_id])
            for doc_id in sorted(pending):
                st = status.get(doc_id)
                run_state = state_of.get(runs[doc_id], "SCHEDULED")
                if st not in _ACTIVE:
                    pending.discard(doc_id)
                    out.done.append(doc_id)
                elif st == Status.RECEIVED and run_state == "COMPLETED":
                    # Left for later by the run's type filter: not an error.
                    pending.discard(doc_id)
                elif st == Status.RECEIVED and run_state in _FINAL_BAD:
                    hand_out(doc_id)
                elif st == Status.RECEIVED and run_state == "SCHEDULED" and \
                        newest_started > created[runs[doc_id]] and (
                            now - created[runs[doc_id]] > stall_seconds
                            or created[runs[doc_id]] < last_vanish):
                    # Runs created after it started, and the queue is first in, first
                    # out: a reader that died had taken it without starting it.
                    lost = runs[doc_id]
                    hand_out(doc_id)
                    _mark(client, lost, Cancelled(
                        message=f"taken off the queue by a reader that never started it; "
                        f"document {doc_id} handed out again as run {runs[doc_id]}"))
                elif st == Status.RECEIVED and run_state in ("PENDING", "RUNNING") and \
                        created[runs[doc_id]] < last_vanish and \
                        now - last_vanish > vanished_grace_seconds:
                    # Started, not yet claimed, and a reader has vanished since: it may
                    # have died between the two. Handed out again; if its reader lives
                    # after all, the claim lets only one of the two runs record it.
                    hand_out(doc_id)
            if not alive and now - last_nag > 30:
                last_nag = now
                logger.warning("no reader is connected to the Prefect server: %d documents "
                               "wait (start `backoffice reader` on a host)", len(pending))
            if max_wait_seconds is not None and now - started > max_wait_seconds and pending:
                out.waiting = sorted(pending)
                logger.warning("%d documents still waiting after %.0f s; they stay received "
                               "for the next run", len(pending), max_wait_seconds)
                break
    out.done = with_pages(engine, sorted(out.done))
    # Finished runs' payloads (document ids, options, small results) are not read again.
    purged = payloads.purge(engine, PAYLOAD_RETENTION)
    if purged:
        logger.info("%d task payloads older than %s removed", purged, PAYLOAD_RETENTION)
    return out
