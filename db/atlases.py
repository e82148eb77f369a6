"""Reads and writes of saved head atlases and the grants that share them.

Every function takes a keyword-only ``session`` and never commits; reads take a
``readable`` WHERE clause from `core.access.permissions`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from db.models import Atlas, Dataset, Grant, User, utcnow


def create_atlas(*, session: Session, owner_id: int, fields: dict[str, Any]) -> Atlas:
    """Insert an atlas; ``fields`` are its columns other than owner and visibility."""
    atlas = Atlas(owner_id=owner_id, **fields)
    session.add(atlas)
    session.flush()
    return atlas


def get_atlas(*, session: Session, atlas_id: int, readable: ColumnElement[bool]) -> Atlas | None:
    return session.scalar(select(Atlas).where(Atlas.id == atlas_id, readable))


def list_atlases(
    *, session: Session, readable: ColumnElement[bool], limit: int = 100
) -> list[tuple[Atlas, str]]:
    """Readable atlases, newest first, with their dataset's name."""
    query = (
        select(Atlas, Dataset.name)
        .join(Dataset, Dataset.id == Atlas.dataset_id)
        .where(readable)
        .order_by(Atlas.created_at.desc(), Atlas.id.desc())
        .limit(limit)
    )
    return [(atlas, name) for atlas, name in session.execute(query).all()]


def grant(*, session: Session, atlas: Atlas, grantee_id: int, granted_by: int) -> Grant:
    """Share ``atlas`` with a user; an earlier revoked grant comes back to life."""
    existing = session.scalar(select(Grant).where(Grant.atlas_id == atlas.id, Grant.grantee_id == grantee_id))
    if existing is not None:
        existing.revoked_at = None
        session.flush()
        return existing
    record = Grant(atlas_id=atlas.id, grantee_id=grantee_id, granted_by=granted_by)
    session.add(record)
    session.flush()
    return record


def revoke(*, session: Session, atlas: Atlas, grantee_id: int) -> bool:
    record = session.scalar(
        select(Grant).where(
            Grant.atlas_id == atlas.id, Grant.grantee_id == grantee_id, Grant.revoked_at.is_(None)
        )
    )
    if record is None:
        return False
    record.revoked_at = utcnow()
    session.flush()
    return True


def grantees(*, session: Session, atlas_id: int) -> list[User]:
    """Users an atlas is shared with (live grants), by username."""
    query = (
        select(User)
        .join(Grant, Grant.grantee_id == User.id)
        .where(Grant.atlas_id == atlas_id, Grant.revoked_at.is_(None))
        .order_by(User.username)
    )
    return list(session.scalars(query))


def user_by_name(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username, User.is_active.is_(True)))
