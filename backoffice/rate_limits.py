"""Per-target rate limits as Prefect global concurrency limits, created by the project.

A limit named ``backoffice-post-<target>`` holds ``ceil(rate)`` slots that decay at
``rate`` per second (a token bucket of one second's burst); the drain takes one slot per
message before posting (``prefect.concurrency.sync.rate_limit``), in one call per batch.
Prefect silently does not limit under a name that does not exist, so the limits are
created (or corrected) by :func:`ensure_rate_limits` before a drain, and taken with
``strict=True``: a missing limit is an error, never a silent "no limit".
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from backoffice.connectors.config import TargetsConfig
from backoffice.outbox import Throttle

PREFIX = "backoffice-post-"


def limit_name(target: str) -> str:
    return f"{PREFIX}{target}"


def ensure_rate_limits(config: TargetsConfig, targets: Iterable[str],
                       overrides: dict[str, float] | None = None) -> dict[str, int]:
    """Create or update the limits of ``targets`` that have a rate; return their burst sizes."""
    from prefect.client.orchestration import get_client

    bursts: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for target in targets:
            rate = (overrides or {}).get(target, config.targets[target].rate_limit_per_second)
            if not rate:
                continue
            burst = max(1, math.ceil(rate))
            client.upsert_global_concurrency_limit_by_name(limit_name(target), burst,
                                                           slot_decay_per_second=float(rate))
            found = client.read_global_concurrency_limit_by_name(limit_name(target))
            if not found.active or found.limit != burst:
                raise RuntimeError(f"rate limit {limit_name(target)} is not as configured")
            bursts[target] = burst
    return bursts


def prefect_throttle(bursts: dict[str, int], timeout_seconds: float | None = 300) -> Throttle:
    """A drain throttle: waits for up to one burst of slots and grants that many posts."""
    from prefect.concurrency.sync import rate_limit

    def throttle(target: str, n: int) -> int:
        burst = bursts.get(target)
        if burst is None:
            return n
        take = min(n, burst)  # at most one second's worth per round: rounds stay short
        rate_limit(limit_name(target), occupy=take, timeout_seconds=timeout_seconds,
                   strict=True)
        return take

    return throttle
