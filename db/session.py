"""Engine and session factory: Postgres from ``DATABASE_URL``, else SQLite under ``data/``.

One engine and one sessionmaker per database URL and process; the schema is brought to the
newest Alembic revision the first time a URL is used. Callers own the transaction::

    with get_sessionmaker().begin() as session:
        ...  # one user action; committed on success, rolled back on any error
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from core.domain.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_lock = threading.Lock()
_factories: dict[str, sessionmaker[Session]] = {}


def database_url(settings: Settings | None = None) -> str:
    """``settings.database_url``, or a SQLite file ``<data_dir>/headlight.db`` (created on use)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.data_dir / 'headlight.db'}"


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's legacy transaction handling skips BEGIN for SELECT, DDL and SAVEPOINT, which
    # breaks savepoints and transactional migrations; SQLAlchemy emits BEGIN itself instead.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL lets readers proceed while one writer commits; the timeout waits out short locks.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the SQLite pragmas or Postgres pool settings applied."""
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    # pre_ping replaces connections the server closed (restart, idle timeout) before use.
    # JIT compilation adds tens of milliseconds to the short queries this app runs and saves
    # nothing on them. Custom plans always: the best plan for a search depends on how
    # common its words are, and a generic plan (used after psycopg prepares a statement
    # that has run five times) would serve a rare word's plan to a frequent one.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"options": "-c jit=off -c plan_cache_mode=force_custom_plan"},
    )


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic configuration without an ini file; ``engine`` is the database to migrate."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


# Dialect-specific search objects are created by the migration, not mapped in the ORM, so
# autogenerate and the schema comparison in the tests must leave them alone.
_SEARCH_OBJECTS = {
    "search_vector",
    "filter_terms",
    "grantee_terms",
    "tag_terms",
    "ix_visualizations_search_vector",
    "ix_visualizations_search",
}


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter: everything except the full-text search objects."""
    if name in _SEARCH_OBJECTS:
        return False
    return not (type_ == "table" and name is not None and name.startswith("visualizations_fts"))


def init_db(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest migration (cheap when current)."""
    command.upgrade(alembic_config(engine), "head")


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """The process-wide session factory for ``url`` (default: `database_url`), migrated once."""
    url = url or database_url()
    with _lock:
        factory = _factories.get(url)
        if factory is None:
            engine = make_engine(url)
            try:
                init_db(engine)
            except Exception:
                # Leave nothing cached, so the next action retries once the database is back.
                engine.dispose()
                raise
            # Objects stay readable after commit: pages render them after the transaction.
            factory = sessionmaker(engine, expire_on_commit=False)
            _factories[url] = factory
        return factory


def dispose_all() -> None:
    """Close every cached engine and forget it (tests switch databases between runs)."""
    with _lock:
        for factory in _factories.values():
            engine = factory.kw["bind"]
            engine.dispose()
        _factories.clear()
