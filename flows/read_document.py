"""The `process-document` task: one document read, validated and routed.

``process-inbox`` runs it in its own process (``BACKOFFICE_DISPATCH=inline``, the embedded
default) or hands it to readers (``readers``): each document becomes a deferred task run
(``task.delay``) on the Prefect server, which any ``backoffice reader`` on any host takes.
A reader is a Prefect task worker (:func:`serve_readers`) that loads the OCR models once
and keeps them; the store's lease (``backoffice.leases``) stays the guard that a document
is recorded once, whoever runs it and however often it is handed out.

Prefect keeps a deferred run's parameters (a document id and the run's options) and its
small result in a file system that both the intake host and the reader must reach:
:func:`shared_task_storage`, chosen by ``BACKOFFICE_DOCUMENT_STORAGE`` as the original
files are (the store's database, or the same fsspec URL).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from backoffice.settings import Settings, apply_environment, get_settings

apply_environment()

from prefect import task
from prefect.cache_policies import CachePolicy
from prefect.filesystems import LocalFileSystem, RemoteFileSystem, WritableFileSystem

from backoffice import payloads
from backoffice.log_masking import mask_exceptions
from backoffice.processing import process_document
from backoffice.runtime import get_db, get_recognizer

TASK_NAME = "process-document"


def host_id() -> str:
    """This process as Prefect's task workers name themselves (``TaskWorker.client_id``):
    the lease owner's prefix, so a reader that vanishes from the server's list of task
    workers is known by the documents it holds."""
    return f"{socket.gethostname()}-{os.getpid()}"


def lease_owner() -> str:
    """``<host>-<pid>/<task run id>``: who holds a document, and in which Prefect run."""
    from prefect.runtime import task_run

    run_id = task_run.id
    return f"{host_id()}/{run_id}" if run_id else host_id()


def owner_host(owner: str) -> str:
    return owner.split("/", 1)[0]


def owner_run(owner: str) -> str | None:
    return owner.split("/", 1)[1] if "/" in owner else None


def run_settings(confidence_threshold: float | None) -> Settings:
    settings = get_settings()
    if confidence_threshold is None:
        return settings
    # The run's own threshold wins over a configured target error.
    return settings.model_copy(update={"review_min_field_confidence": confidence_threshold,
                                       "review_target_error": None})


@task(name=TASK_NAME, task_run_name="process-document-{doc_id}", retries=2,
      retry_delay_seconds=5)
@mask_exceptions
def process(doc_id: int, confidence_threshold: float | None = None,
            doc_types: list[str] | None = None) -> list[int]:
    """Claim the document (if it is still `received`), read, validate and route it.
    Returns its pages' document ids; [] when another run holds or finished it."""
    settings = run_settings(confidence_threshold)
    return process_document(get_db(settings), doc_id, get_recognizer(settings), settings,
                            owner=lease_owner(),
                            doc_types=set(doc_types) if doc_types else None)


class StoreTaskStorage(WritableFileSystem):
    """Prefect's parameter and result storage for deferred runs, in the store's database
    (``backoffice.payloads``): reachable by every host that reaches the store."""

    _block_type_name = "Backoffice Store Task Storage"
    _block_type_slug = "backoffice-store-task-storage"

    def read_path(self, path: str) -> bytes:
        return payloads.read(get_db(), path)

    def write_path(self, path: str, content: bytes) -> str:
        payloads.write(get_db(), path, content)
        return path

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read_path, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(self.write_path, path, content)


class _NeverCached(CachePolicy):
    """A document handed out again (its reader died) must run again, never come back as
    the cached result of the run that died; Prefect's task workers replace ``NO_CACHE``
    with their default policy, so the policy says it in its own type."""

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        return None


def _task_storage_block(settings: Settings) -> WritableFileSystem:
    where = settings.document_storage
    if where == "store":
        return StoreTaskStorage()
    if where == "local":
        # One host only: readers must share this data folder.
        return LocalFileSystem(basepath=str(settings.data_dir / "prefect-tasks"))
    if where.startswith("file://"):
        return LocalFileSystem(basepath=where.removeprefix("file://").rstrip("/")
                               + "/prefect-tasks")
    return RemoteFileSystem(basepath=where.rstrip("/") + "/prefect-tasks")


_saved: dict[str, WritableFileSystem] = {}


def shared_task_storage(settings: Settings | None = None) -> WritableFileSystem:
    """Where deferred runs' parameters and results live, by ``document_storage``: a block
    saved on the Prefect server (Prefect requires that), named by its configuration so
    that every host using the same storage uses the same block. The saved instance is
    kept: given as an object (not a slug) Prefect does not look it up again for every
    run (four API calls a document)."""
    import hashlib

    settings = settings or get_settings()
    block = _task_storage_block(settings)
    config = block.model_dump_json()
    name = "backoffice-tasks-" + hashlib.sha256(config.encode()).hexdigest()[:10]
    if name not in _saved:
        try:
            block.save(name, overwrite=True)
        except Exception:  # noqa: BLE001 - another host saved it at the same moment
            block = type(block).load(name)  # it exists now; anything else raises here
        _saved[name] = block
    return _saved[name]


def reader_task(settings: Settings | None = None):
    """The `process-document` task as readers serve it and ``process-inbox`` defers it:
    the same task key on both sides, shared storage, never answered from a cache."""
    return process.with_options(result_storage=shared_task_storage(settings),
                                cache_policy=_NeverCached(), persist_result=True)


def serve_readers(settings: Settings | None = None, *, limit: int = 1,
                  timeout: float | None = None) -> None:
    """Run a reader: load the OCR models, then take `process-document` runs from the
    Prefect server at ``PREFECT_API_URL`` (``limit`` at a time) until stopped."""
    from prefect.task_worker import serve

    settings = settings or get_settings()
    get_recognizer(settings)  # warm: the models load once per reader, not per document
    get_db(settings)
    serve(reader_task(settings), limit=limit, timeout=timeout)
