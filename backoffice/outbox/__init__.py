"""The outbox: approve a document and its messages in one transaction; drain them exactly once.

One module a job:

- :mod:`~backoffice.outbox.table`: the ``outbox_message`` table (:class:`OutboxMessage`,
  :class:`OutboxStatus`, :func:`ensure_schema`);
- :mod:`~backoffice.outbox.enqueue`: writing, :func:`approve_document` and
  :func:`enqueue_document`, with the document ref and idempotency key;
- :mod:`~backoffice.outbox.drain`: draining, :func:`drain_once` and :func:`run_drain`,
  under leases, retries and dead-lettering;
- :mod:`~backoffice.outbox.operate`: operating, :func:`counts`, :func:`list_messages`,
  :func:`redrive` and :func:`purge`;
- :mod:`~backoffice.outbox.reconciliation`: :func:`reconcile`, the outbox against what the
  downstream systems hold.

Importing this package registers the table with ``SQLModel.metadata``, so ``make_engine``
creates it.
"""

from backoffice.outbox.drain import (
    DrainPolicy,
    DrainReport,
    Throttle,
    drain_once,
    new_owner,
    outstanding,
    run_drain,
)
from backoffice.outbox.enqueue import (
    PAYLOAD_SCHEMA,
    approve_document,
    document_payload,
    document_ref,
    enqueue_document,
    idempotency_key,
)
from backoffice.outbox.operate import counts, list_messages, purge, redrive
from backoffice.outbox.reconciliation import Reconciliation, TargetReconciliation, reconcile
from backoffice.outbox.table import OUTBOX, OutboxMessage, OutboxStatus, ensure_schema, utcnow

__all__ = [
    "OUTBOX",
    "PAYLOAD_SCHEMA",
    "DrainPolicy",
    "DrainReport",
    "OutboxMessage",
    "OutboxStatus",
    "Reconciliation",
    "TargetReconciliation",
    "Throttle",
    "approve_document",
    "counts",
    "document_payload",
    "document_ref",
    "drain_once",
    "enqueue_document",
    "ensure_schema",
    "idempotency_key",
    "list_messages",
    "new_owner",
    "outstanding",
    "purge",
    "reconcile",
    "redrive",
    "run_drain",
    "utcnow",
]
