"""REST connector: httpx, timeouts, and the message's key in an ``Idempotency-Key`` header.

How replies are read:

- 2xx: taken (``Idempotent-Replayed: true`` means an earlier attempt had already done it);
- 408, 425, 429, 5xx, timeouts, refused or dropped connections: transient (``Retry-After``
  is honoured); after a timeout or a dropped reply the outcome is unknown, and sending
  again under the same key is exactly what makes that safe;
- other 4xx (400, 404, 409 key reused with another payload, 422 rejected payload):
  permanent, so the message goes to dead-letter instead of being retried forever.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from backoffice.connectors.base import (
    HeldRecord,
    LookupUnavailable,
    Outgoing,
    PermanentError,
    PostResult,
    TransientError,
)
from backoffice.connectors.config import RestTarget
from backoffice.connectors.mapping import map_payload

TRANSIENT_STATUS = {408, 425, 429}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def describe_error(response: httpx.Response) -> str:
    """A short reason from an error reply: status, and field locations with messages.

    FastAPI-style ``detail`` lists echo the rejected ``input``: that is personal data,
    so only ``loc`` and ``msg`` are kept.
    """
    reason = f"HTTP {response.status_code}"
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return reason
    if isinstance(detail, str):
        return f"{reason}: {detail[:200]}"
    if isinstance(detail, list):
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", []))
                parts.append(f"{loc}: {str(item.get('msg', ''))[:120]}")
        return f"{reason}: " + "; ".join(parts)
    return reason


class RestConnector:
    """A target reached over HTTP."""

    def __init__(self, target: str, config: RestTarget,
                 client: httpx.Client | None = None) -> None:
        self.target = target
        self.config = config
        self.client = client or httpx.Client(
            base_url=config.base_url,
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=config.max_connections,
                                max_keepalive_connections=config.max_connections),
            headers=config.headers,
        )

    def __repr__(self) -> str:
        return f"RestConnector({self.target!r}, {self.config.base_url!r})"

    # --- lookup side ---------------------------------------------------------------

    def find(self, entity: str, criteria: Mapping[str, Any]) -> list[dict[str, Any]]:
        spec = self.config.lookups.get(entity)
        if spec is None or spec.path is None:
            raise LookupUnavailable(f"{self.target} has no lookup for {entity!r}")
        params = {spec.params.get(name, name): value for name, value in criteria.items()
                  if value is not None}
        try:
            response = self.client.get(spec.path, params=params)
        except httpx.HTTPError as exc:
            raise LookupUnavailable(f"{self.target} lookup {entity}: {type(exc).__name__}") \
                from None
        if response.status_code >= 400:
            raise LookupUnavailable(f"{self.target} lookup {entity}: {describe_error(response)}")
        return list(response.json().get("items", []))

    # --- post side -----------------------------------------------------------------

    def post(self, message: Outgoing) -> PostResult:
        body = map_payload(self.config.mapping, message, self.find)
        try:
            response = self.client.post(self.config.post_path, json=body,
                                        headers={"Idempotency-Key": message.key})
        except httpx.TimeoutException as exc:
            raise TransientError(f"timeout ({type(exc).__name__}); outcome unknown") from None
        except httpx.TransportError as exc:
            raise TransientError(f"connection failed ({type(exc).__name__}): "
                                 f"{str(exc)[:120]}") from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                remote = response.json().get(self.config.remote_id_field)
            except ValueError:
                raise TransientError(f"HTTP {status} with an unreadable body") from None
            return PostResult(remote_id=None if remote is None else str(remote),
                              replayed=response.headers.get("Idempotent-Replayed") == "true",
                              status_code=status)
        reason = describe_error(response)
        if status in TRANSIENT_STATUS or status >= 500:
            raise TransientError(reason, retry_after=_retry_after(response), status_code=status)
        raise PermanentError(reason, status_code=status)

    # --- reconciliation ------------------------------------------------------------

    def held(self) -> Iterator[HeldRecord]:
        after = 0
        while True:
            try:
                response = self.client.get(self.config.inbound_path,
                                           params={"after_id": after, "limit": 2000})
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise LookupUnavailable(f"{self.target} inbound: {type(exc).__name__}") \
                    from None
            page = response.json()
            for item in page["items"]:
                yield HeldRecord(key=item["idempotency_key"],
                                 remote_id=None if item.get("record_id") is None
                                 else str(item["record_id"]),
                                 source_ref=item.get("source_ref"))
            if not page["items"] or page.get("next_after_id") is None:
                return
            after = page["next_after_id"]

    def close(self) -> None:
        self.client.close()
