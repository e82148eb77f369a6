"""What every owned row shares, whatever its table: fetching one by id under a WHERE clause,
the grants that share it, the Trash (``deleted_at``) and the public switch.

In the manner of `db.queries`: keyword-only ``session``, never a commit; reads take a
``readable`` WHERE clause from `core.access.permissions`. `core.store.owned` says which
table each kind of record lives in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.base import ExecutableOption

from db.models import Atlas, Comparison, Grant, Visualization, utcnow

# The `grants` column that points at rows of each table that can be shared with one user.
GRANT_TARGETS: dict[type[Any], InstrumentedAttribute[int | None]] = {
    Visualization: Grant.visualization_id,
    Comparison: Grant.comparison_id,
    Atlas: Grant.atlas_id,
}


def get(
    *,
    session: Session,
    model: type[Any],
    record_id: int,
    readable: ColumnElement[bool],
    options: Sequence[ExecutableOption] = (),
) -> Any | None:
    """The row of ``model`` with that id if ``readable`` admits it (``options`` load relations)."""
    return session.scalar(select(model).where(model.id == record_id, readable).options(*options))


def granted_ids(*, session: Session, model: type[Any], user_id: int, record_ids: Sequence[int]) -> set[int]:
    """Which of ``record_ids`` (rows of ``model``) are shared with ``user_id`` by a live grant."""
    if not record_ids:
        return set()
    target = GRANT_TARGETS[model]
    found = session.scalars(
        select(target).where(Grant.grantee_id == user_id, Grant.revoked_at.is_(None), target.in_(record_ids))
    )
    return {i for i in found if i is not None}


def set_deleted(*, session: Session, record: Any, deleted: bool) -> None:
    """Move a row to the Trash (``deleted_at`` now) or bring it back."""
    record.deleted_at = utcnow() if deleted else None
    session.flush()


def set_public(*, session: Session, record: Any, public: bool) -> None:
    """Turn a row's public flag on or off (its ``updated_at`` follows where it has one)."""
    record.is_public = public
    if hasattr(record, "updated_at"):
        record.updated_at = utcnow()
    session.flush()
