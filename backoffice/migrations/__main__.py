"""Alembic's command line on the store of the settings (``BACKOFFICE_DATABASE_URL``).

``python -m backoffice.migrations history``; ``... upgrade head --sql`` (the SQL, not run);
``... revision --autogenerate --rev-id 0003 -m "what changed"`` writes a revision from the
difference between the models and a store at head (a scratch one:
``BACKOFFICE_DATABASE_URL=sqlite:////tmp/rev.db``, upgraded first). Commands that touch
the store run on one connection under the schema lock.
"""

from __future__ import annotations

from alembic.config import CommandLine

from backoffice.migrations import alembic_config, schema_transaction
from backoffice.settings import get_settings
from backoffice.store import make_engine


def main(argv: list[str] | None = None) -> None:
    cli = CommandLine(prog="python -m backoffice.migrations")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    url = get_settings().database_url
    if getattr(options, "sql", False):
        cfg = alembic_config(url=url)
        cfg.cmd_opts = options
        cli.run_cmd(cfg, options)
        return
    engine = make_engine(url, prepare=False)
    try:
        with schema_transaction(engine) as conn:
            cfg = alembic_config(connection=conn)
            cfg.cmd_opts = options
            cli.run_cmd(cfg, options)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
