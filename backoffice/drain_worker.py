"""A drain as a plain process, without Prefect: ``python -m backoffice.drain_worker``.

For tests that kill a drain with SIGKILL half way, and for sites that run the drain
under their own supervisor. Prints its :class:`~backoffice.outbox.DrainReport` as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from backoffice.connectors import build_connectors, load_targets
from backoffice.outbox import DrainPolicy, ensure_schema, run_drain
from backoffice.store import make_engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the store.")
    parser.add_argument("--targets-file", type=Path, default=None)
    parser.add_argument("--target", action="append", default=None,
                        help="Drain only this target (repeatable); default: all routed.")
    parser.add_argument("--owner", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--lease-seconds", type=float, default=60)
    parser.add_argument("--max-attempts", type=int, default=8)
    parser.add_argument("--backoff-base", type=float, default=1.0)
    parser.add_argument("--backoff-max", type=float, default=300.0)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--forever", action="store_true", help="Keep polling when empty.")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    stopping = False

    def _stop(signum, frame):  # SIGTERM: finish the round, then stop
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    engine = make_engine(args.db)
    ensure_schema(engine)
    config = load_targets(args.targets_file)
    policy = DrainPolicy(batch_size=args.batch_size, max_workers=args.workers,
                         lease_seconds=args.lease_seconds, max_attempts=args.max_attempts,
                         backoff_base=args.backoff_base, backoff_max=args.backoff_max,
                         max_attempts_by_target={n: t.max_attempts for n, t in
                                                 config.targets.items() if t.max_attempts})
    with build_connectors(config, args.target) as connectors:
        report = run_drain(engine, connectors, owner=args.owner, policy=policy,
                           until_empty=not args.forever, max_seconds=args.max_seconds,
                           stop=lambda: stopping)
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
