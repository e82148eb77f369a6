"""The transaction boundary: one unit of work per user action.

Services open it; the UI never does. Database failures become `StorageError` with a
message fit for the screen, and nothing of the action is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from core.domain.errors import StorageError
from db.session import get_sessionmaker

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
