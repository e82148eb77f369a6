"""Saving crafted analyses quickly in db tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.domain.identity import Viewer
from core.store import analyses as library
from db.models import Visualization
from tests.factories import make_analysis

BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def save(
    session: Session,
    viewer: Viewer,
    text: str,
    *,
    title: str = "",
    tags: str = "",
    model_id: str = "smol",
    day: int | None = None,
    public: bool = False,
    generated: str = "",
) -> Visualization:
    """Save a tiny analysis of ``text`` as ``viewer``; ``day`` sets created_at to BASE_TIME + day."""
    analysis = make_analysis(text, generated=generated, model_id=model_id, n_layers=1, n_heads=2)
    record_id = library.save_analysis(
        session=session, viewer=viewer, analysis=analysis, title=title, tags=tags
    )
    record = session.get(Visualization, record_id)
    assert record is not None
    record.is_public = public
    if day is not None:
        record.created_at = BASE_TIME + timedelta(days=day)
    session.flush()
    return record
