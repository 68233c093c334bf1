"""Alembic's environment for the store (see :mod:`backoffice.migrations`): the migrations
run on the connection the caller holds (in its transaction, under the schema lock), or
write SQL for a URL offline (``--sql``)."""

from __future__ import annotations

from alembic import context

from backoffice.migrations import VERSION_TABLE, render_item, schema_transaction, store_metadata


def _run(**connect: object) -> None:
    context.configure(target_metadata=store_metadata(), version_table=VERSION_TABLE,
                      render_as_batch=True, render_item=render_item, compare_type=True,
                      **connect)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if context.is_offline_mode():
        _run(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    elif connection is not None:
        _run(connection=connection)
    else:
        from backoffice.store import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url"), prepare=False)
        try:
            with schema_transaction(engine) as conn:
                _run(connection=conn)
        finally:
            engine.dispose()


# Run by Alembic; imported as a plain module (a walk of the package), it does nothing.
if hasattr(context, "config"):
    main()
