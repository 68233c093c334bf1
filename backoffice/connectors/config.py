"""Targets and field mappings: configuration, not code.

The file (default: ``backoffice/connectors/targets.json``; another with
``BACKOFFICE_TARGETS_FILE``) names the downstream targets, how to reach each (REST, SQL,
file drop), how our fields map onto its fields, its rate limit, and which document types
go where (``routes``). String values may use ``${VAR}`` or ``${VAR:-default}``, expanded
from the environment when the file is loaded.

A mapping entry is either the name of one of our fields, or an object:
``{"from": FIELD, "transform": NAME, "default": VALUE}``. ``from`` may also name a
message attribute: ``$document_ref``, ``$key``, ``$document_id``, ``$doc_type``,
``$target``, ``$payload_version``. Transforms: ``compact_date`` (2025-03-10 → 20250310),
``strip``, ``upper``, ``digits``, and ``legacy_id``: the 15-digit form of an identity
number *where the target's own record of that person has one* (found through the
target's lookup side; see :mod:`backoffice.connectors.mapping`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_TARGETS_FILE = Path(__file__).with_name("targets.json")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class FieldSource(BaseModel):
    """Where a target field's value comes from."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    source: str | None = Field(None, alias="from")
    transform: str | None = None
    default: Any = None
    lookup: str = Field("insured", description="legacy_id: the lookup entity to consult.")
    prefer: dict[str, str] = Field(
        default_factory=dict,
        description="legacy_id: prefer records whose key (record field) equals our field.")


FieldMapping = dict[str, str | FieldSource]


class LookupSpec(BaseModel):
    """How to ask a target for records of one entity (the read-only side)."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="REST: GET path answering {'items': [...]}.")
    params: dict[str, str] = Field(
        default_factory=dict, description="criterion name -> query parameter (REST) or column "
        "(SQL); unnamed criteria are passed under their own name.")
    table: str | None = Field(None, description="SQL: table to read.")
    columns: list[str] = Field(default_factory=list, description="SQL: columns to return.")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(f"not an SQL identifier: {value!r}")
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _IDENTIFIER.match(name):
                raise ValueError(f"not an SQL identifier: {name!r}")
        return value


class _TargetBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    mapping: FieldMapping
    rate_limit_per_second: float | None = Field(
        None, gt=0, description="Posts per second, enforced through a Prefect global "
        "concurrency limit named backoffice-post-<target>; none: no limit.")
    max_attempts: int | None = Field(None, ge=1, description="Override of the drain's default.")
    lookups: dict[str, LookupSpec] = Field(default_factory=dict)


class RestTarget(_TargetBase):
    kind: Literal["rest"] = "rest"
    base_url: str
    post_path: str
    remote_id_field: str = Field(description="Field of the 2xx reply that identifies the record.")
    inbound_path: str = Field("/inbound", description="Paged list of what the system received "
                              "(idempotency_key, record_id, source_ref), for reconciliation.")
    timeout_seconds: float = Field(10.0, gt=0)
    connect_timeout_seconds: float = Field(3.0, gt=0)
    max_connections: int = Field(16, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)


class SqlTarget(_TargetBase):
    kind: Literal["sql"] = "sql"
    url: str = Field(description="SQLAlchemy URL of the system's own database.")
    table: str
    id_column: str
    key_column: str = "idempotency_key"
    ref_column: str | None = None
    idempotency_table: str = Field(
        "idempotency", description="Table (key, request_hash, status_code, response, "
        "created_at) shared with the system's API, so both honour the same keys.")

    @field_validator("table", "id_column", "key_column", "ref_column", "idempotency_table")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(f"not an SQL identifier: {value!r}")
        return value


class FileDropTarget(_TargetBase):
    kind: Literal["filedrop"] = "filedrop"
    directory: Path
    encoding: str = "utf-8"
    delimiter: str = ","


TargetConfig = Annotated[RestTarget | SqlTarget | FileDropTarget, Field(discriminator="kind")]


class TargetsConfig(BaseModel):
    """All targets, and which document types go to which."""

    model_config = ConfigDict(extra="forbid")

    routes: dict[str, list[str]] = Field(default_factory=dict)
    targets: dict[str, TargetConfig]

    def targets_for(self, doc_type: str | None) -> list[str]:
        return list(self.routes.get(doc_type or "", []))

    def model_post_init(self, _context: Any) -> None:
        for doc_type, names in self.routes.items():
            unknown = [n for n in names if n not in self.targets]
            if unknown:
                raise ValueError(f"route {doc_type!r} names unknown targets {unknown}")


def expand(value: Any, env: dict[str, str] | None = None) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a JSON value."""
    environ = {**os.environ, **(env or {})}

    def one(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ and environ[name] != "":
                return environ[name]
            if default is None:
                raise KeyError(f"targets configuration needs the environment variable {name}")
            return default

        return _VAR.sub(sub, text)

    if isinstance(value, str):
        return one(value)
    if isinstance(value, list):
        return [expand(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, env) for k, v in value.items()}
    return value


def targets_file() -> Path:
    """The targets file of the settings (``BACKOFFICE_TARGETS_FILE``), or the bundled one."""
    from backoffice.settings import get_settings

    return get_settings().targets_file or DEFAULT_TARGETS_FILE


def load_targets(path: Path | str | None = None,
                 env: dict[str, str] | None = None) -> TargetsConfig:
    """Read and validate a targets file (default: :func:`targets_file`)."""
    raw = json.loads(Path(path or targets_file()).read_text(encoding="utf-8"))
    raw.pop("$comment", None)
    for target in raw.get("targets", {}).values():
        if isinstance(target, dict):
            target.pop("$comment", None)
    return TargetsConfig.model_validate(expand(raw, env))
