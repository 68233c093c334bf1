"""Outbox drain benchmark: messages per second against the sandbox with faults off, and
the cost of the rate limit (Prefect global concurrency limits).

    .venv/bin/python bench/bench_drain.py [--documents 2000] [--store sqlite|postgres]
                                          [--no-prefect] [--json]

Scenarios, each on a fresh store with the same synthetic documents (about 1.5 messages a
document: ID card fronts go to the core, claim forms to claims and the payments drop):

- ``no limit``: the drain without a throttle;
- ``limit, not binding``: every target under a Prefect rate limit far above what the
  sandbox can take: the cost of taking slots (one API call per target per round);
- ``limit, binding``: the rates of ``targets.json`` (core 50/s, claims 20/s, payments
  unlimited): what the limit lets through.

One drain process (8 posting threads, batch 64) and the two sandbox systems share the
machine's cores; the Prefect server is a temporary local one (SQLite).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backoffice.settings import apply_environment

apply_environment()

from backoffice.connectors import build_connectors
from backoffice.outbox import DrainPolicy, run_drain
from backoffice.sandbox.runner import run_sandbox
from backoffice.sandbox.synthetic import make_documents
from backoffice.store import make_engine

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class CountingThrottle:
    def __init__(self, inner):
        self.inner, self.calls, self.seconds = inner, 0, 0.0

    def __call__(self, target: str, n: int) -> int:
        start = time.perf_counter()
        try:
            return self.inner(target, n)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - start


def _store(kind: str, work: Path, name: str):
    if kind == "sqlite":
        return make_engine(f"sqlite:///{work / f'{name}.db'}"), None
    import psycopg

    db = f"bo_bench_{name}_{int(time.time())}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    return make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"), db


def _drop(db: str | None) -> None:
    if db:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def scenario(name: str, sandbox, config, args, work: Path, throttle=None) -> dict:
    engine, db = _store(args.store, work, name.replace(" ", "_").replace(",", ""))
    try:
        make_documents(engine, args.documents, seed=42, bad_rate=0, config=config, tag=name)
        policy = DrainPolicy(batch_size=64, max_workers=8, lease_seconds=60)
        with build_connectors(config) as connectors:
            start = time.perf_counter()
            report = run_drain(engine, connectors, policy=policy, throttle=throttle)
            seconds = time.perf_counter() - start
    finally:
        engine.dispose()
        _drop(db)
    row = {"scenario": name, "messages": report.posted, "dead": report.dead,
           "seconds": round(seconds, 2), "messages_per_s": round(report.posted / seconds, 1)}
    if isinstance(throttle, CountingThrottle):
        row["throttle_calls"] = throttle.calls
        row["throttle_seconds"] = round(throttle.seconds, 2)
        row["ms_per_throttle_call"] = round(1000 * throttle.seconds / max(throttle.calls, 1), 1)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--no-prefect", action="store_true", help="skip the rate-limit runs")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        work = Path(tmp)
        with run_sandbox(work / "sandbox") as sandbox:
            config = sandbox.targets_config()
            rows.append(scenario("no limit", sandbox, config, args, work))
            if not args.no_prefect:
                from prefect.testing.utilities import prefect_test_harness

                from backoffice.rate_limits import ensure_rate_limits, prefect_throttle

                names = sorted({n for t in config.routes.values() for n in t})
                with prefect_test_harness(server_startup_timeout=120):
                    fast = ensure_rate_limits(config, names,
                                              overrides={n: 100_000.0 for n in names})
                    rows.append(scenario("limit, not binding", sandbox, config, args, work,
                                         CountingThrottle(prefect_throttle(fast))))
                    real = ensure_rate_limits(config, names)
                    limits = {n: config.targets[n].rate_limit_per_second for n in real}
                    row = scenario("limit, binding", sandbox, config, args, work,
                                   CountingThrottle(prefect_throttle(real)))
                    row["limits_per_s"] = limits
                    rows.append(row)
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            extra = "".join(f", {k} {v}" for k, v in row.items()
                            if k not in ("scenario", "messages", "seconds", "messages_per_s"))
            print(f"{row['scenario']:>20}: {row['messages']} messages in {row['seconds']} s "
                  f"= {row['messages_per_s']}/s{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
