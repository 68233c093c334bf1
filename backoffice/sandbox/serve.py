"""Serve one sandbox system: ``python -m backoffice.sandbox.serve core|claims --db FILE ...``.

The runner starts this in a subprocess and hands over an already-bound listening socket
(``--fd``), so there is no race for the port. Access logs are off: query strings carry
identity numbers.
"""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import uvicorn

from backoffice.sandbox.common import Faults

SYSTEMS = ("core", "claims")


def create_app(system: str, db: Path, faults: Faults | None = None):
    if system == "core":
        from backoffice.sandbox.core_app import create_app as make
    elif system == "claims":
        from backoffice.sandbox.claims_app import create_app as make
    else:
        raise ValueError(f"unknown system {system!r}; one of {SYSTEMS}")
    return make(db, faults)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("--db", type=Path, required=True, help="The system's SQLite file.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fd", type=int, default=None, help="A bound listening socket.")
    parser.add_argument("--faults", default=None, help="Fault settings as JSON.")
    parser.add_argument("--seed-from", type=Path, default=None, metavar="FIXTURES",
                        help="Seed from this fixtures folder's ground truth first.")
    args = parser.parse_args(argv)

    if args.seed_from is not None:
        from backoffice.sandbox.seed import seed

        seed(args.system, args.db, args.seed_from)
    faults = Faults.model_validate(json.loads(args.faults)) if args.faults else None
    app = create_app(args.system, args.db, faults)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            access_log=False, lifespan="off", timeout_graceful_shutdown=2,
                            limit_concurrency=512, backlog=512)
    server = uvicorn.Server(config)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
        server.run(sockets=[sock])
    else:
        server.run()


if __name__ == "__main__":
    main()
