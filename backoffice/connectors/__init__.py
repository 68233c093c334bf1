"""Connectors to the downstream systems: one protocol (:class:`Connector`), three kinds.

- :class:`~backoffice.connectors.rest.RestConnector` (httpx, Idempotency-Key header),
- :class:`~backoffice.connectors.sql.SqlConnector` (the system's own tables, one transaction),
- :class:`~backoffice.connectors.filedrop.FileDropConnector` (CSV plus a checksummed manifest).

Which targets exist, their addresses and field mappings are configuration
(:mod:`backoffice.connectors.config`, ``targets.json``); :func:`build_connectors` makes the
connectors from it.
"""

from __future__ import annotations

from collections.abc import Iterable

from backoffice.connectors.base import (
    Connector,
    ConnectorSet,
    HeldRecord,
    LookupUnavailable,
    Outgoing,
    PermanentError,
    PostError,
    PostResult,
    TransientError,
)
from backoffice.connectors.config import TargetsConfig, load_targets

__all__ = [
    "Connector",
    "ConnectorSet",
    "HeldRecord",
    "LookupUnavailable",
    "Outgoing",
    "PermanentError",
    "PostError",
    "PostResult",
    "TargetsConfig",
    "TransientError",
    "build_connector",
    "build_connectors",
    "load_targets",
]


def build_connector(name: str, config: TargetsConfig) -> Connector:
    """The connector for target ``name`` of ``config``."""
    target = config.targets[name]
    if target.kind == "rest":
        from backoffice.connectors.rest import RestConnector

        return RestConnector(name, target)
    if target.kind == "sql":
        from backoffice.connectors.sql import SqlConnector

        return SqlConnector(name, target)
    from backoffice.connectors.filedrop import FileDropConnector

    return FileDropConnector(name, target)


def build_connectors(config: TargetsConfig | None = None,
                     names: Iterable[str] | None = None) -> ConnectorSet:
    """Connectors for ``names`` (default: every target routed to by some document type)."""
    config = config or load_targets()
    if names is None:
        names = sorted({n for targets in config.routes.values() for n in targets})
    return ConnectorSet({name: build_connector(name, config) for name in names})
