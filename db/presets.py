"""Presets and their favourites. Keyword-only ``session``, never a commit; lists take a
required ``readable`` WHERE clause from `core.access.permissions.preset_filter`."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from db.models import Preset, PresetFavourite, PresetScreen, User


def list_presets(
    *, session: Session, readable: ColumnElement[bool], screen: PresetScreen | None = None
) -> list[tuple[Preset, str]]:
    """Readable presets with their owner's username, newest change first."""
    query = select(Preset, User.username).join(User, User.id == Preset.owner_id).where(readable)
    if screen is not None:
        query = query.where(Preset.screen == screen)
    rows = session.execute(query.order_by(Preset.updated_at.desc(), Preset.id.desc()))
    return [(preset, username) for preset, username in rows]


def favourite_ids(*, session: Session, user_id: int) -> set[int]:
    query = select(PresetFavourite.preset_id).where(PresetFavourite.user_id == user_id)
    return set(session.scalars(query))


def set_favourite(*, session: Session, user_id: int, preset_id: int, favourite: bool) -> None:
    """Star or unstar; starring twice is harmless (two sessions may click at once)."""
    if not favourite:
        session.execute(
            delete(PresetFavourite).where(
                PresetFavourite.user_id == user_id, PresetFavourite.preset_id == preset_id
            )
        )
        return
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        dialect_insert(PresetFavourite)
        .values(user_id=user_id, preset_id=preset_id)
        .on_conflict_do_nothing(index_elements=["user_id", "preset_id"])
    )
