"""`drain-outbox`: post the outbox's messages to the downstream systems, rate-limited."""

from __future__ import annotations

from backoffice.settings import apply_environment

apply_environment()

from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from pydantic import Field

from backoffice.connectors import build_connectors, load_targets
from backoffice.log_masking import mask_exceptions
from backoffice.outbox import DrainPolicy, ensure_schema, run_drain
from backoffice.rate_limits import ensure_rate_limits, limit_name, prefect_throttle
from backoffice.runtime import get_db
from backoffice.settings import get_settings


def _routed(config) -> list[str]:
    return sorted({n for names in config.routes.values() for n in names})


@task(name="ensure-rate-limits", retries=2, retry_delay_seconds=2)
@mask_exceptions
def ensure_limits(targets_file: str | None, targets: list[str]) -> dict[str, int]:
    """Create the targets' global concurrency limits (an unknown name would not limit)."""
    return ensure_rate_limits(load_targets(targets_file), targets)


@task(name="drain")
@mask_exceptions
def drain(targets_file: str | None, targets: list[str], bursts: dict[str, int],
          policy: dict, until_empty: bool, max_seconds: float | None) -> dict:
    logger = get_run_logger()
    config = load_targets(targets_file)
    engine = get_db(get_settings())
    ensure_schema(engine)
    throttle = prefect_throttle(bursts) if bursts else None
    drain_policy = DrainPolicy(**policy, max_attempts_by_target={
        n: t.max_attempts for n, t in config.targets.items() if t.max_attempts})
    with build_connectors(config, targets) as connectors:
        report = run_drain(engine, connectors, policy=drain_policy, throttle=throttle,
                           until_empty=until_empty, max_seconds=max_seconds, logger=logger)
    return report.as_dict()


@flow(name="drain-outbox")
def drain_outbox(
    targets: list[str] | None = None,
    until_empty: bool = True,
    max_seconds: Annotated[float | None, Field(gt=0, le=24 * 3600)] = 600.0,
    rate_limits: bool = True,
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 64,
    workers: Annotated[int, Field(ge=1, le=64)] = 8,
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8,
    lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 60.0,
    backoff_base: Annotated[float, Field(gt=0, le=600)] = 1.0,
    backoff_max: Annotated[float, Field(gt=0, le=24 * 3600)] = 300.0,
    targets_file: str | None = None,
) -> dict:
    """Post pending outbox messages (retries, backoff, dead-letter) until none is left.

    Args:
        targets: Target systems to post to; empty means every routed target of the
            targets file.
        until_empty: Keep draining until no message is due (else one round).
        max_seconds: Stop after this many seconds even if messages are left.
        rate_limits: Respect each target's rate limit (Prefect global concurrency limits).
        batch_size: Messages claimed per round (1 to 1000).
        workers: Parallel posts (1 to 64).
        max_attempts: Transient failures before a message is dead-lettered (1 to 100).
        lease_seconds: How long a claimed message is ours before another drain may take it.
        backoff_base: First retry delay in seconds (doubles each attempt, with jitter).
        backoff_max: Longest retry delay in seconds.
        targets_file: Targets configuration; empty means BACKOFFICE_TARGETS_FILE or the
            packaged targets.json.
    """
    logger = get_run_logger()
    config = load_targets(targets_file)
    names = targets or _routed(config)
    bursts = ensure_limits(targets_file, names) if rate_limits else {}
    for name in bursts:
        logger.info("rate limit %s: %s/s", limit_name(name),
                    config.targets[name].rate_limit_per_second)
    policy = {"batch_size": batch_size, "max_workers": workers, "max_attempts": max_attempts,
              "lease_seconds": lease_seconds, "backoff_base": backoff_base,
              "backoff_max": backoff_max}
    report = drain(targets_file, names, bursts, policy, until_empty, max_seconds)
    rate = report["posted"] / report["seconds"] if report["seconds"] else 0.0
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report.items()]
    create_markdown_artifact(
        key="drain-outbox-summary",
        markdown="## Outbox drain\n\n" + "\n".join(lines) + f"\n\n{rate:.1f} posted/s; "
        f"targets: {', '.join(names)}; rate limits: {bursts or 'off'}",
        description="Counts only: no personal data")
    logger.info("drain: %s", report)
    return report
