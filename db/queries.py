"""Reads and writes of saved records. Every function takes a keyword-only ``session`` and
never commits: a service wraps one user action in `core.store.transaction.unit_of_work`.

List and get functions take a required ``readable`` WHERE clause (from
`core.access.permissions`), so no query here can forget who is asking. History search and its
pages live in `db.search`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.orm import Session, selectinload

from db.models import (
    Annotation,
    Atlas,
    AuditEvent,
    Comparison,
    Dataset,
    Visualization,
    VisualizationTag,
    utcnow,
)


def create_visualization(
    *,
    session: Session,
    owner_id: int,
    fields: dict[str, Any],
    title: str,
    tags: Sequence[str],
    is_public: bool = False,
) -> Visualization:
    """Insert a visualization from `core.store.records.record_fields` output; returns it with its id."""
    record = Visualization(owner_id=owner_id, title=title, is_public=is_public, **fields)
    record.tags = [VisualizationTag(tag=tag) for tag in dict.fromkeys(tags)]
    session.add(record)
    session.flush()
    return record


def get_visualization(
    *, session: Session, visualization_id: int, readable: ColumnElement[bool]
) -> Visualization | None:
    """The visualization with that id if ``readable`` admits it, with tags and annotations."""
    return session.scalar(
        select(Visualization)
        .where(Visualization.id == visualization_id, readable)
        .options(selectinload(Visualization.tags), selectinload(Visualization.annotations))
    )


def purge_deleted(*, session: Session, before: datetime) -> dict[str, int]:
    """Permanently delete analyses, comparisons, head atlases and datasets soft-deleted before
    ``before``.

    Their tags, annotations, grants, share links and dataset rows go with them (ON DELETE
    CASCADE). A dataset that an atlas still refers to (live or not yet purged) is kept: the
    atlas's top rows point into it. Returns the number of rows removed per table.
    """
    removed = {}
    for model in (Visualization, Comparison, Atlas, Dataset):
        expired = model.deleted_at.is_not(None) & (model.deleted_at < before)
        if model is Dataset:
            expired &= Dataset.id.not_in(select(Atlas.dataset_id))
        result = session.execute(
            delete(model).where(expired), execution_options={"synchronize_session": False}
        )
        removed[model.__tablename__] = result.rowcount
    return removed


def get_annotation(*, session: Session, annotation_id: int) -> Annotation | None:
    return session.get(Annotation, annotation_id)


def add_annotations(
    *,
    session: Session,
    visualization: Visualization,
    author_id: int,
    notes: Sequence[tuple[str, dict[str, int | None]]],
) -> list[Annotation]:
    """Add ``(body, pin)`` annotations; a pin holds ``layer``, ``head``, ``token_start``, ``token_end``."""
    added = [
        Annotation(visualization=visualization, author_id=author_id, body=body, **pin) for body, pin in notes
    ]
    session.add_all(added)
    _refresh_annotation_text(session, visualization)
    return added


def update_annotation(
    *, session: Session, annotation: Annotation, body: str, pin: dict[str, int | None]
) -> None:
    annotation.body = body
    for name, value in pin.items():
        setattr(annotation, name, value)
    annotation.updated_at = utcnow()
    _refresh_annotation_text(session, annotation.visualization)


def delete_annotation(*, session: Session, annotation: Annotation) -> None:
    visualization = annotation.visualization
    visualization.annotations.remove(annotation)
    session.delete(annotation)
    _refresh_annotation_text(session, visualization)


def _refresh_annotation_text(session: Session, visualization: Visualization) -> None:
    # The search index reads annotation bodies from this one denormalised column.
    session.flush()
    bodies = session.scalars(
        select(Annotation.body).where(Annotation.visualization_id == visualization.id).order_by(Annotation.id)
    )
    visualization.annotation_text = "\n".join(bodies)
    session.flush()


def add_audit_event(
    *,
    session: Session,
    actor_id: int | None,
    action: str,
    target_type: str | None = None,
    target_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail or {},
        )
    )


def filter_options(*, session: Session, owner_id: int) -> tuple[list[str], list[str]]:
    """Model ids and tags used in one user's live visualizations, sorted, for filter menus."""
    own = and_(Visualization.owner_id == owner_id, Visualization.deleted_at.is_(None))
    models = session.scalars(
        select(Visualization.model_id).where(own).distinct().order_by(Visualization.model_id)
    )
    tags = session.scalars(
        select(VisualizationTag.tag)
        .join(Visualization, Visualization.id == VisualizationTag.visualization_id)
        .where(own)
        .distinct()
        .order_by(VisualizationTag.tag)
    )
    return list(models), list(tags)


def summary_rows(*, session: Session, readable: ColumnElement[bool]) -> list[dict[str, Any]]:
    """Every readable visualization, oldest first, as ``{id, model_id, title, input_text,
    created_at, tags, annotation_count}`` (the CSV export)."""
    annotation_count = (
        select(func.count())
        .where(Annotation.visualization_id == Visualization.id)
        .correlate(Visualization)
        .scalar_subquery()
    )
    result = session.execute(
        select(
            Visualization.id,
            Visualization.model_id,
            Visualization.title,
            Visualization.input_text,
            Visualization.created_at,
            annotation_count.label("annotation_count"),
        )
        .where(readable)
        .order_by(Visualization.created_at, Visualization.id)
    ).all()
    tags: dict[int, list[str]] = {}
    for vis_id, tag in session.execute(
        select(VisualizationTag.visualization_id, VisualizationTag.tag)
        .join(Visualization, Visualization.id == VisualizationTag.visualization_id)
        .where(readable)
        .order_by(VisualizationTag.tag)
    ):
        tags.setdefault(vis_id, []).append(tag)
    return [{**row._asdict(), "tags": tags.get(row.id, [])} for row in result]
