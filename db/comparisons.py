"""Reads and writes of saved comparisons, in the manner of `db.queries`: every function takes
a keyword-only ``session`` and never commits; reads take a required ``readable`` WHERE
clause from `core.access.permissions` (built for `Comparison`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from core.domain.owned import ComparisonRow
from db.models import Comparison


def create_comparison(
    *, session: Session, owner_id: int, fields: dict[str, Any], title: str, is_public: bool = False
) -> Comparison:
    """Insert a comparison from `core.store.comparisons.record_fields` output; returns it with its id."""
    record = Comparison(owner_id=owner_id, title=title, is_public=is_public, **fields)
    session.add(record)
    session.flush()
    return record


def list_comparisons(
    *,
    session: Session,
    readable: ColumnElement[bool],
    text: str = "",
    model_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ComparisonRow]:
    """Comparisons that ``readable`` admits, newest first: ``limit`` of them after ``offset``.

    ``text`` matches the title or the compared text (case-insensitive substring: comparisons
    are few next to analyses, so no full-text index); ``model_id`` either side.
    """
    query = select(
        Comparison.id,
        Comparison.title,
        Comparison.model_a_id,
        Comparison.model_b_id,
        Comparison.owner_id,
        Comparison.is_public,
        Comparison.created_at,
    ).where(readable)
    if text.strip():
        pattern = "%" + _escape_like(text.strip()) + "%"
        query = query.where(
            or_(Comparison.title.ilike(pattern, escape="\\"), Comparison.text.ilike(pattern, escape="\\"))
        )
    if model_id:
        query = query.where(or_(Comparison.model_a_id == model_id, Comparison.model_b_id == model_id))
    found = session.execute(
        query.order_by(Comparison.created_at.desc(), Comparison.id.desc()).limit(limit).offset(offset)
    )
    return [ComparisonRow(**row._asdict()) for row in found]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
