"""Alembic environment: migrates the engine handed over by `db.session.init_db`, or the
configured database when run from the ``alembic`` command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from db.models import Base
from db.session import database_url, include_object, make_engine


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode re-creates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together migrate one at a time.
            connection.execute(text("SELECT pg_advisory_xact_lock(7351002)"))
        context.run_migrations()


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    owned = engine is None
    if owned:
        engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported: search objects depend on the dialect.")
run_migrations_online()
