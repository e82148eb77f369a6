"""The one place that decides who may read and write saved records.

Records are private by default. Rules, by role:

- admin: reads every live record, writes every record, shares any, manages users, reads
  the whole audit log;
- analyst: reads their own, public and shared-with-them records; writes and shares their own;
- viewer: reads their own, public and shared-with-them records; writes nothing;
- guest (or no user): reads public records only; writes nothing.

Everyone who may use the app may run models (each role at its own rate limit); a visitor
who is not signed in only when guest mode is on. "Shared with" means a live row in
``grants``. A share link lets anyone holding its token read that one live record while the
link is neither revoked nor expired. A soft-deleted record is readable by no one (links
included); it appears only in its owner's (or an admin's) Trash, from where it can be restored.

The audit log: admins read every event; anyone signed in reads the events on records they
own and on their own account.

Head atlases follow the same rules as analyses (public flag, grants, soft delete).
Datasets and jobs are not shared: a dataset is used by its owner (and admins), built-in
datasets are public; a job is seen and controlled by its owner and admins.

Presets (saved screen settings) are private to their owner unless public, and public ones
are read by every signed-in user (not by guests); analysts and admins create them, owners
(and admins) edit, share and delete them, and anyone signed in stars what they can read.
Per-model analytics are for signed-in users; the per-user breakdown names people, so it
is for admins.

The Python checks (`can_read`, `can_write`, ...) judge one loaded record; the SQL builders
(`read_filter`, `list_filter`, `trash_filter`) express the same rules as WHERE clauses so
that every list query shows exactly what `can_read` allows. Tests hold the two in step.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from core.domain.identity import Role, Viewer
from db.models import (
    PG_FILTER_TERMS,
    PUBLIC_TERM,
    Annotation,
    Atlas,
    AuditEvent,
    Comparison,
    Dataset,
    Grant,
    Job,
    Preset,
    Visualization,
    grantee_term,
    owner_term,
)

SavedModel = type[Visualization] | type[Comparison] | type[Atlas]


class Scope(StrEnum):
    """Which readable records a list shows."""

    ALL = "all"
    MINE = "mine"
    PUBLIC = "public"
    SHARED = "shared"


class SavedRecord(Protocol):
    """What the checks need from a visualization or comparison."""

    id: int
    owner_id: int
    is_public: bool
    deleted_at: datetime | None


class LinkRecord(Protocol):
    """What the checks need from a share link (it targets exactly one record)."""

    visualization_id: int | None
    comparison_id: int | None
    atlas_id: int | None
    expires_at: datetime | None
    revoked_at: datetime | None


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


def can_share(viewer: Viewer, record: SavedRecord) -> bool:
    """Whether the viewer may make a record public or private, and create or revoke its links."""
    return record.deleted_at is None and can_write(viewer, record)


def link_is_live(link: LinkRecord, *, now: datetime) -> bool:
    return link.revoked_at is None and (link.expires_at is None or link.expires_at > now)


def link_target(link: LinkRecord, model: SavedModel) -> int | None:
    """The id of the ``model`` record a link opens, None when it opens another kind."""
    targets = {Visualization: link.visualization_id, Comparison: link.comparison_id, Atlas: link.atlas_id}
    return targets[model]


def can_read_with_link(link: LinkRecord, record: SavedRecord, *, now: datetime) -> bool:
    """Whether a share link opens ``record``: its own, live link to a live record of that kind."""
    target = link_target(link, type(record))  # type: ignore[arg-type]
    return target == record.id and link_is_live(link, now=now) and record.deleted_at is None


def has_trash(viewer: Viewer) -> bool:
    """Whether the viewer has a Trash to look in (`trash_filter` is never empty for them)."""
    return viewer.is_admin or (viewer.role is Role.ANALYST and viewer.user_id is not None)


def scopes_for(viewer: Viewer) -> list[Scope]:
    """The list scopes that can show the viewer anything (guests read public records only)."""
    return list(Scope) if _reads_private(viewer) else [Scope.ALL, Scope.PUBLIC]


def can_run(viewer: Viewer, *, guests_allowed: bool) -> bool:
    """Whether the viewer may run models (within their role's rate limit)."""
    return viewer.user_id is not None or guests_allowed


def can_view_audit(viewer: Viewer) -> bool:
    """Whether the viewer has an audit log to read (`audit_filter` says which events)."""
    return viewer.user_id is not None


def can_manage_users(viewer: Viewer) -> bool:
    """Admins list users, change roles, deactivate accounts and reset passwords."""
    return viewer.is_admin


def can_manage_models(viewer: Viewer) -> bool:
    """Admins add models, turn them on and off, pick the default, load and unload them."""
    return viewer.is_admin


def _uses_terms(model: SavedModel, dialect: str | None) -> bool:
    """Whether to express the rules through Postgres's indexed filter terms."""
    return dialect == "postgresql" and model is Visualization


def shared_filter(viewer: Viewer, model: SavedModel, *, dialect: str | None = None) -> ColumnElement[bool]:
    """Rows of ``model`` granted to the viewer and not revoked."""
    if viewer.user_id is None:
        return false()
    if _uses_terms(model, dialect):
        return PG_FILTER_TERMS.contains([grantee_term(viewer.user_id)])
    targets = {Visualization: Grant.visualization_id, Comparison: Grant.comparison_id, Atlas: Grant.atlas_id}
    target = targets[model]
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


def trash_filter(
    viewer: Viewer, model: SavedModel | type[Dataset] | type[Preset] = Visualization
) -> ColumnElement[bool]:
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


def live_filter(model: SavedModel = Visualization) -> ColumnElement[bool]:
    """WHERE clause: rows not in the Trash (what a share link may open, with `can_read_with_link`)."""
    return model.deleted_at.is_(None)


def audit_filter(viewer: Viewer) -> ColumnElement[bool]:
    """WHERE clause: the audit events the viewer may read.

    Admins read all; other signed-in users the events on what they own (analyses,
    comparisons, head atlases, datasets and jobs, live or in the Trash) and on their own
    account; visitors none.
    """
    if viewer.is_admin:
        return true()
    if viewer.user_id is None:
        return false()
    owned = {
        "visualization": Visualization,
        "comparison": Comparison,
        "atlas": Atlas,
        "dataset": Dataset,
        "job": Job,
    }
    return or_(
        *(
            and_(
                AuditEvent.target_type == target,
                AuditEvent.target_id.in_(select(model.id).where(model.owner_id == viewer.user_id)),
            )
            for target, model in owned.items()
        ),
        and_(AuditEvent.target_type == "user", AuditEvent.target_id == viewer.user_id),
    )


def dataset_filter(viewer: Viewer) -> ColumnElement[bool]:
    """WHERE clause: live datasets the viewer may see and run jobs on (own and public)."""
    live = Dataset.deleted_at.is_(None)
    if viewer.is_admin:
        return live
    if not _reads_private(viewer):
        return live & (Dataset.is_public == true())
    return live & ((Dataset.is_public == true()) | (Dataset.owner_id == viewer.user_id))


def can_read_dataset(viewer: Viewer, dataset: Dataset) -> bool:
    """Whether the viewer may see and use a live dataset: what `dataset_filter` admits."""
    if dataset.deleted_at is not None:
        return False
    if dataset.is_public or viewer.is_admin:
        return True
    return _reads_private(viewer) and dataset.owner_id == viewer.user_id


def job_filter(viewer: Viewer) -> ColumnElement[bool]:
    """WHERE clause: jobs the viewer sees (their own; admins all)."""
    if viewer.is_admin:
        return true()
    if not _reads_private(viewer):
        return false()
    return Job.owner_id == viewer.user_id


def can_control_job(viewer: Viewer, job: Job) -> bool:
    """Whether the viewer may cancel or resume a job: its owner (an analyst) or an admin."""
    if viewer.is_admin:
        return True
    return viewer.role is Role.ANALYST and viewer.user_id is not None and job.owner_id == viewer.user_id


def can_view_model_analytics(viewer: Viewer) -> bool:
    """Per-model totals, latency, errors and drift: anyone signed in (guest accounts are visitors)."""
    return _reads_private(viewer)


def can_view_request_users(viewer: Viewer) -> bool:
    """Who sent which requests (the per-user breakdown): admins only."""
    return viewer.is_admin


def can_read_preset(viewer: Viewer, preset: Preset) -> bool:
    """A live preset: its owner's and admins', and every signed-in user's once public.

    A guest account counts as a visitor (never reads presets), as for private records.
    """
    if preset.deleted_at is not None or not _reads_private(viewer):
        return False
    return viewer.is_admin or preset.owner_id == viewer.user_id or preset.is_public


def can_write_preset(viewer: Viewer, preset: Preset) -> bool:
    """Edit, rename, share, delete: the owner (an analyst) or an admin."""
    if viewer.is_admin:
        return True
    return viewer.role is Role.ANALYST and viewer.user_id is not None and preset.owner_id == viewer.user_id


def can_favourite_preset(viewer: Viewer, preset: Preset) -> bool:
    """Starring is a personal bookmark: anyone signed in, on any preset they may read."""
    return can_read_preset(viewer, preset)


def preset_filter(viewer: Viewer) -> ColumnElement[bool]:
    """WHERE clause: the live presets `can_read_preset` allows."""
    live = Preset.deleted_at.is_(None)
    if not _reads_private(viewer):
        return false()
    if viewer.is_admin:
        return live
    return live & ((Preset.owner_id == viewer.user_id) | (Preset.is_public == true()))
