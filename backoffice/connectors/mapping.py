"""Field mappings: turn a message's payload into the body a target wants.

>>> from backoffice.connectors.base import Outgoing
>>> msg = Outgoing("k", "claims", 7, {"document_ref": "bo-7", "fields": {
...     "policy_number": "P1", "accident_date": "2025-03-10"}})
>>> map_payload({"POLICY_NO": "policy_number",
...              "ACCIDENT_DT": {"from": "accident_date", "transform": "compact_date"},
...              "EXT_REF": {"from": "$document_ref"}}, msg)
{'POLICY_NO': 'P1', 'ACCIDENT_DT': '20250310', 'EXT_REF': 'bo-7'}

``legacy_id`` asks the target's lookup side for the person under both forms and sends
the form the target's own record holds (preferring the record matching ``prefer``):

>>> def find(entity, criteria):
...     return [{"policy_number": "P1", "id_number": "110105491231002"}]
>>> msg = Outgoing("k", "claims", 7, {"fields": {"policy_number": "P1",
...     "insured_id_number": "11010519491231002X"}})
>>> map_payload({"INSURED_IDNO": {"from": "insured_id_number", "transform": "legacy_id",
...              "prefer": {"policy_number": "policy_number"}}}, msg, find)
{'INSURED_IDNO': '110105491231002'}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from stdnum.exceptions import ValidationError

from backoffice.connectors.base import LookupUnavailable, Outgoing, PermanentError, TransientError
from backoffice.connectors.config import FieldMapping, FieldSource
from domain import gb11643

Finder = Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]


def _source(message: Outgoing, name: str | None) -> Any:
    if name is None:
        return None
    if name.startswith("$"):
        attrs = {"$document_ref": message.document_ref, "$key": message.key,
                 "$document_id": message.document_id, "$doc_type": message.doc_type,
                 "$target": message.target, "$payload_version": message.payload_version}
        if name not in attrs:
            raise PermanentError(f"mapping names an unknown message attribute {name}")
        return attrs[name]
    return message.fields.get(name)


def compact_date(value: str) -> str:
    """2025-03-10 → 20250310 (a value already compact is kept)."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value.replace("-", "")
    return value


def legacy_id(value: str, spec: FieldSource, message: Outgoing, find: Finder | None) -> str:
    """The 15-digit form of ``value`` if the target's record of the person holds it."""
    if find is None:
        raise PermanentError("legacy_id mapping on a target without a lookup side")
    try:
        number = gb11643.compact(value)
        kind = gb11643.kind(number)
    except ValidationError:  # not an identity number: let the target judge it
        return value
    if kind != "18":
        return number
    try:
        short = gb11643.to_15(number)
    except ValidationError:  # born 2000 or later, or invalid: there is no 15-digit form
        return number
    try:
        records = find(spec.lookup, {"id_number": [number, short]})
    except LookupUnavailable as exc:
        raise TransientError(f"legacy_id lookup failed: {exc}") from None
    for key, field in spec.prefer.items():
        wanted = message.fields.get(field)
        preferred = [r for r in records if r.get(key) == wanted]
        records = preferred or records
    stored = {str(r.get("id_number")) for r in records}
    if short in stored and number not in stored:
        return short
    return number


_SIMPLE: dict[str, Callable[[str], str]] = {
    "compact_date": compact_date,
    "strip": str.strip,
    "upper": str.upper,
    "digits": lambda v: re.sub(r"\D", "", v),
}
TRANSFORMS = frozenset(_SIMPLE) | {"legacy_id"}


def map_payload(mapping: FieldMapping | Mapping[str, Any], message: Outgoing, find: Finder | None = None
                ) -> dict[str, Any]:
    """The target's body for ``message`` under ``mapping`` (target field -> source)."""
    body: dict[str, Any] = {}
    for target_field, spec in mapping.items():
        if isinstance(spec, str):
            spec = FieldSource(source=spec)
        elif isinstance(spec, dict):
            spec = FieldSource.model_validate(spec)
        value = _source(message, spec.source)
        if value is None or value == "":
            body[target_field] = spec.default
            continue
        if spec.transform is not None:
            if spec.transform not in TRANSFORMS:
                raise PermanentError(f"unknown transform {spec.transform!r} for {target_field}")
            text = str(value)
            if spec.transform == "legacy_id":
                value = legacy_id(text, spec, message, find)
            else:
                value = _SIMPLE[spec.transform](text)
        body[target_field] = value
    return body
