"""SQL for the live model registry (`registered_models`): keyword-only session, never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from db.models import ModelOrigin, RegisteredModel, utcnow


def list_models(*, session: Session) -> list[RegisteredModel]:
    """Every row: models.yaml's order first, then admin additions oldest first."""
    query = select(RegisteredModel).order_by(
        RegisteredModel.position, RegisteredModel.created_at, RegisteredModel.id
    )
    return list(session.scalars(query))


def by_model_id(*, session: Session, model_id: str, for_update: bool = False) -> RegisteredModel | None:
    query = select(RegisteredModel).where(RegisteredModel.model_id == model_id)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def next_position(*, session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(RegisteredModel.position), -1))) or 0) + 1


def add_model(
    *,
    session: Session,
    spec_fields: dict[str, Any],
    family: str,
    origin: ModelOrigin,
    position: int,
    added_by_id: int | None,
    enabled: bool = True,
    now: datetime | None = None,
) -> RegisteredModel:
    """Insert one row from `ModelSpec.model_dump()`; a taken model id raises IntegrityError.

    ``family`` is `ModelSpec.family`: how an id splits into family and version is the
    registry's rule (`core.models.registry.VERSION_SEPARATOR`), not repeated here.
    """
    now = now or utcnow()
    fields = dict(spec_fields)
    row = RegisteredModel(
        model_id=fields.pop("id"),
        origin=origin,
        position=position,
        added_by_id=added_by_id,
        enabled=enabled,
        is_default=False,
        created_at=now,
        updated_at=now,
        family=family,
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def clear_default(*, session: Session) -> None:
    """Unset the default flag everywhere (the first half of moving it, in one transaction)."""
    session.execute(update(RegisteredModel).where(RegisteredModel.is_default).values(is_default=False))
    session.flush()


def lock_registry(*, session: Session) -> None:
    """Serialise registry writers: on Postgres lock the rows, on SQLite take the write lock.

    Seeding from two processes at once, or two admins moving the default, would otherwise
    race between reading the rows and writing them.
    """
    if session.get_bind().dialect.name == "sqlite":
        # A no-op write makes SQLite take its write lock now rather than fail to upgrade later.
        session.execute(update(RegisteredModel).where(RegisteredModel.id == -1).values(label=""))
    else:
        # A table lock (not row locks) also covers the empty table on first start.
        session.execute(text("LOCK TABLE registered_models IN SHARE ROW EXCLUSIVE MODE"))
