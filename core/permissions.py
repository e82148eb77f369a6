"""The one place that decides who may read and write saved records.

Records are private by default. Rules, by role:

- admin: reads every live record, writes every record;
- analyst: reads their own, public and shared-with-them records; writes their own;
- viewer: reads their own, public and shared-with-them records; writes nothing;
- guest (or no user): reads public records only; writes nothing.

"Shared with" means a live row in ``grants``. A soft-deleted record is readable by no one;
it appears only in its owner's (or an admin's) Trash, from where it can be restored.

The Python checks (`can_read`, `can_write`, ...) judge one loaded record; the SQL builders
(`read_filter`, `list_filter`, `trash_filter`) express the same rules as WHERE clauses so
that every list query shows exactly what `can_read` allows. Tests hold the two in step.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import ColumnElement, false, select, true

from db.models import (
    PG_FILTER_TERMS,
    PUBLIC_TERM,
    Annotation,
    Comparison,
    Grant,
    Role,
    Visualization,
    grantee_term,
    owner_term,
)

SavedModel = type[Visualization] | type[Comparison]


class Scope(StrEnum):
    """Which readable records a list shows."""

    ALL = "all"
    MINE = "mine"
    PUBLIC = "public"
    SHARED = "shared"


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a user id (None when anonymous) and a role."""

    user_id: int | None
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN and self.user_id is not None


ANONYMOUS = Viewer(user_id=None, role=Role.GUEST)


class SavedRecord(Protocol):
    """What the checks need from a visualization or comparison."""

    id: int
    owner_id: int
    is_public: bool
    deleted_at: datetime | None


def _reads_private(viewer: Viewer) -> bool:
    return viewer.user_id is not None and viewer.role is not Role.GUEST


def can_create(viewer: Viewer) -> bool:
    """Whether the viewer may save new records (and import them)."""
    return viewer.user_id is not None and viewer.role in (Role.ADMIN, Role.ANALYST)


def can_read(viewer: Viewer, record: SavedRecord, *, shared_ids: Collection[int] = ()) -> bool:
    """Whether the viewer may see a live record; ``shared_ids`` are ids granted to them."""
    if record.deleted_at is not None:
        return False
    if record.is_public or viewer.is_admin:
        return True
    if not _reads_private(viewer):
        return False
    return record.owner_id == viewer.user_id or record.id in shared_ids


def can_write(viewer: Viewer, record: SavedRecord) -> bool:
    """Whether the viewer may change, delete or restore a record (live or in the Trash)."""
    if viewer.is_admin:
        return True
    return viewer.role is Role.ANALYST and viewer.user_id is not None and record.owner_id == viewer.user_id


def can_annotate(viewer: Viewer, record: SavedRecord, *, shared_ids: Collection[int] = ()) -> bool:
    """Whether the viewer may add an annotation: they read it and may create content."""
    return can_create(viewer) and can_read(viewer, record, shared_ids=shared_ids)


def can_edit_annotation(viewer: Viewer, annotation: Annotation) -> bool:
    """Authors edit and delete their own annotations; admins any."""
    if viewer.is_admin:
        return True
    return can_create(viewer) and annotation.author_id == viewer.user_id


def _uses_terms(model: SavedModel, dialect: str | None) -> bool:
    """Whether to express the rules through Postgres's indexed filter terms."""
    return dialect == "postgresql" and model is Visualization


def shared_filter(viewer: Viewer, model: SavedModel, *, dialect: str | None = None) -> ColumnElement[bool]:
    """Rows of ``model`` granted to the viewer and not revoked."""
    if viewer.user_id is None:
        return false()
    if _uses_terms(model, dialect):
        return PG_FILTER_TERMS.contains([grantee_term(viewer.user_id)])
    target = Grant.visualization_id if model is Visualization else Grant.comparison_id
    granted = select(target).where(Grant.grantee_id == viewer.user_id, Grant.revoked_at.is_(None))
    return model.id.in_(granted)


def read_filter(
    viewer: Viewer, model: SavedModel = Visualization, *, dialect: str | None = None
) -> ColumnElement[bool]:
    """WHERE clause: the live rows of ``model`` that `can_read` allows.

    With ``dialect="postgresql"`` visualizations are filtered through their indexed filter
    terms (`db.models.PG_FILTER_TERMS`), which state the same facts, so the full-text index
    applies the rule before any row is read.
    """
    live = model.deleted_at.is_(None)
    if viewer.is_admin:
        return live
    if _uses_terms(model, dialect):
        terms = [PUBLIC_TERM]
        if _reads_private(viewer):
            assert viewer.user_id is not None
            terms += [owner_term(viewer.user_id), grantee_term(viewer.user_id)]
        return live & PG_FILTER_TERMS.overlap(terms)
    if not _reads_private(viewer):
        return live & (model.is_public == true())
    return live & (
        (model.is_public == true()) | (model.owner_id == viewer.user_id) | shared_filter(viewer, model)
    )


def trash_filter(viewer: Viewer, model: SavedModel = Visualization) -> ColumnElement[bool]:
    """WHERE clause: soft-deleted rows of ``model`` the viewer may restore (`can_write`)."""
    deleted = model.deleted_at.is_not(None)
    if viewer.is_admin:
        return deleted
    if viewer.role is not Role.ANALYST or viewer.user_id is None:
        return false()
    return deleted & (model.owner_id == viewer.user_id)


def list_filter(
    viewer: Viewer, scope: Scope, model: SavedModel = Visualization, *, dialect: str | None = None
) -> ColumnElement[bool]:
    """WHERE clause for a list in one scope: the rows of `read_filter` in that scope.

    Each scope is a subset of what the viewer reads, stated directly (public rows are
    readable by all; own and granted rows by anyone who reads private rows), so the
    database sees one simple condition rather than two overlapping ones.
    """
    if scope is Scope.ALL:
        return read_filter(viewer, model, dialect=dialect)
    live = model.deleted_at.is_(None)
    terms = _uses_terms(model, dialect)
    if scope is Scope.PUBLIC:
        return live & (PG_FILTER_TERMS.contains([PUBLIC_TERM]) if terms else model.is_public == true())
    if not _reads_private(viewer):
        return false()
    assert viewer.user_id is not None
    if scope is Scope.MINE:
        return live & (
            PG_FILTER_TERMS.contains([owner_term(viewer.user_id)])
            if terms
            else model.owner_id == viewer.user_id
        )
    return live & shared_filter(viewer, model, dialect=dialect)
