"""The transaction boundary: one unit of work per user action.

Services open it; the UI never does. Database failures become `StorageError` with a
message fit for the screen, and nothing of the action is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.domain.errors import StorageError
from db.session import database_url, get_sessionmaker

logger = logging.getLogger(__name__)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction for one user action; database errors become `StorageError`."""
    try:
        with get_sessionmaker().begin() as session:
            yield session
    except IntegrityError as exc:
        logger.exception("database refused a change")
        raise StorageError("The database refused the change, so nothing was saved. Try again.") from exc
    except SQLAlchemyError as exc:
        logger.exception("database error")
        raise StorageError(
            "The database is unavailable right now, so nothing was saved or loaded. "
            "Anything on screen is kept; try again in a moment."
        ) from exc


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """The sessions of the configured database (or ``url``), migrated to head on first use.

    For the composition roots (the app's resources, the Celery worker) that hand a session
    factory to background work; a user action uses `unit_of_work`.
    """
    return get_sessionmaker(url)


def configured_database_url() -> str:
    """The database URL the process uses (``DATABASE_URL``, else the embedded SQLite file)."""
    return database_url()


def database_reachable(url: str | None = None) -> tuple[bool, str]:
    """Whether ``SELECT 1`` succeeds, and the dialect (with the error's type when not)."""
    target = url or database_url()
    dialect = target.split(":", 1)[0]
    try:
        with get_sessionmaker(target)() as session:
            session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("database not ready", extra={"error": str(exc)})
        return False, f"{dialect}: {type(exc).__name__}"
    return True, dialect
