"""Reads and writes of saved comparisons, in the manner of `db.queries`: every function takes
a keyword-only ``session`` and never commits; reads take a required ``readable`` WHERE
clause from `core.access.permissions` (built for `Comparison`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from db.models import Comparison, Grant, utcnow


@dataclass(frozen=True)
class ComparisonRow:
    """One line of a list of comparisons (the result blob is not loaded for it)."""

    id: int
    title: str
    model_a_id: str
    model_b_id: str
    owner_id: int
    is_public: bool
    created_at: datetime


def create_comparison(
    *, session: Session, owner_id: int, fields: dict[str, Any], title: str, is_public: bool = False
) -> Comparison:
    """Insert a comparison from `core.store.comparisons.record_fields` output; returns it with its id."""
    record = Comparison(owner_id=owner_id, title=title, is_public=is_public, **fields)
    session.add(record)
    session.flush()
    return record


def get_comparison(
    *, session: Session, comparison_id: int, readable: ColumnElement[bool]
) -> Comparison | None:
    """The comparison with that id if ``readable`` admits it."""
    return session.scalar(select(Comparison).where(Comparison.id == comparison_id, readable))


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


def soft_delete(*, session: Session, comparison: Comparison) -> None:
    comparison.deleted_at = utcnow()
    session.flush()


def restore(*, session: Session, comparison: Comparison) -> None:
    comparison.deleted_at = None
    session.flush()


def granted_comparison_ids(*, session: Session, user_id: int, comparison_ids: Sequence[int]) -> set[int]:
    """Which of ``comparison_ids`` are shared with ``user_id`` by a live grant."""
    if not comparison_ids:
        return set()
    found = session.scalars(
        select(Grant.comparison_id).where(
            Grant.grantee_id == user_id,
            Grant.revoked_at.is_(None),
            Grant.comparison_id.in_(comparison_ids),
        )
    )
    return {i for i in found if i is not None}
