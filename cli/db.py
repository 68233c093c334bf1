"""`backoffice db …`: the store's schema, migrated by Alembic (:mod:`backoffice.migrations`).

Mounted by the main CLI with ``app.add_typer(db_app, name="db")``. The server, the workers
and every command that opens the store upgrade it too; ``db upgrade`` does it alone (before
a start, after an install).
"""

from __future__ import annotations

import json
import sys

import typer

from backoffice.settings import apply_environment

db_app = typer.Typer(help="The store's schema: upgrade it, show its revision.",
                     no_args_is_help=True)


def _engine():
    from backoffice.store import make_engine

    return make_engine(apply_environment().database_url, prepare=False)


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="The revision to reach (default: the newest)."),
) -> None:
    """Upgrade the store's schema (a store made before migrations is adopted; an empty
    one is created). Prints the revision before and after, and what was done."""
    from backoffice.migrations import upgrade

    engine = _engine()
    try:
        change = upgrade(engine, revision)
    finally:
        engine.dispose()
    sys.stdout.write(json.dumps({"before": change.before, "after": change.after,
                                 "action": change.action}) + "\n")


@db_app.command("current")
def db_current() -> None:
    """Print the store's revision (null: no version table yet) and the newest one."""
    from backoffice.migrations import current, head

    engine = _engine()
    try:
        at = current(engine)
    finally:
        engine.dispose()
    newest = head()
    sys.stdout.write(json.dumps({"current": at, "head": newest,
                                 "up_to_date": at == newest}) + "\n")
