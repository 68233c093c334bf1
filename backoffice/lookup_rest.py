"""The cross-system rules' :class:`~validators.lookup.SystemLookup`, over the systems' APIs.

It is the lookup side of the connectors: customers from the core target, insured persons,
policies and claims from the claims target. A system that cannot answer raises
:class:`~backoffice.connectors.base.LookupUnavailable` (it is not "not found").

>>> lookup = RestLookup("http://127.0.0.1:8701", "http://127.0.0.1:8702")  # doctest: +SKIP
>>> lookup.find_customer("11010519491231002X")                              # doctest: +SKIP
{'customer_id': 'C0000001', 'id_number': '11010519491231002X', ...}
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from backoffice.connectors.base import Connector
from backoffice.connectors.config import LookupSpec, RestTarget, TargetsConfig
from backoffice.connectors.rest import RestConnector


class ConnectorLookup:
    """A :class:`~validators.lookup.SystemLookup` over two connectors' lookup sides."""

    def __init__(self, core: Connector, claims: Connector) -> None:
        self.core = core
        self.claims = claims

    def __repr__(self) -> str:
        return f"{type(self).__name__}(core={self.core!r}, claims={self.claims!r})"

    def find_customer(self, id18: str) -> dict[str, Any] | None:
        found = self.core.find("customer", {"id_number": id18})
        return found[0] if found else None

    def find_insured(self, id18: str, id15: str | None) -> list[dict[str, Any]]:
        return self.claims.find("insured", {"id_number": [id18, *([id15] if id15 else [])]})

    def find_policy(self, policy_number: str) -> dict[str, Any] | None:
        found = self.claims.find("policy", {"policy_number": policy_number})
        return found[0] if found else None

    def find_claims(self, policy_number: str, accident_date: datetime.date | None,
                    amount: Decimal | None) -> list[dict[str, Any]]:
        return self.claims.find("claim", {
            "policy_number": policy_number,
            "accident_date": accident_date.isoformat() if accident_date else None,
            "amount": str(amount) if amount is not None else None,
        })

    def close(self) -> None:
        self.core.close()
        self.claims.close()


class RestLookup(ConnectorLookup):
    """The lookup against the core and claims systems' HTTP APIs (e.g. the sandbox)."""

    def __init__(self, core_url: str, claims_url: str, *, timeout: float = 5.0) -> None:
        core = RestConnector("core", RestTarget(
            base_url=core_url, post_path="/kyc-records", remote_id_field="kyc_id", mapping={},
            timeout_seconds=timeout, lookups={"customer": LookupSpec(path="/customers")}))
        claims = RestConnector("claims", RestTarget(
            base_url=claims_url, post_path="/claims", remote_id_field="claim_id", mapping={},
            timeout_seconds=timeout, lookups={"insured": LookupSpec(path="/insured"),
                                              "policy": LookupSpec(path="/policies"),
                                              "claim": LookupSpec(path="/claims")}))
        super().__init__(core, claims)

    @classmethod
    def from_targets(cls, config: TargetsConfig, core: str = "core",
                     claims: str = "claims") -> ConnectorLookup:
        """The lookup through the configured targets' connectors (any kind)."""
        from backoffice.connectors import build_connector

        return ConnectorLookup(build_connector(core, config), build_connector(claims, config))
