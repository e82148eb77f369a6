"""Reading the audit log, in the manner of `db.queries`: keyword-only ``session``, never a
commit, and a required ``readable`` WHERE clause (from `core.access.permissions.audit_filter`).
Events are written by `db.queries.add_audit_event`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, aliased

from core.domain.audit import AuditFilters, AuditRow
from db.models import AuditEvent, User


def list_events(
    *, session: Session, readable: ColumnElement[bool], filters: AuditFilters, limit: int = 500
) -> list[AuditRow]:
    """The newest ``limit`` events that ``readable`` admits and ``filters`` keep, newest first."""
    actor = aliased(User)
    query = (
        select(AuditEvent, actor.username)
        .outerjoin(actor, actor.id == AuditEvent.actor_id)
        .where(readable)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if filters.actions:
        query = query.where(AuditEvent.action.in_(filters.actions))
    if filters.actor:
        query = query.where(actor.username == filters.actor.lower())
    if filters.target_type:
        query = query.where(AuditEvent.target_type == filters.target_type)
    if filters.target_id is not None:
        query = query.where(AuditEvent.target_id == filters.target_id)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    return [
        AuditRow(
            id=event.id,
            at=event.at,
            actor=username,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            detail=dict(event.detail or {}),
        )
        for event, username in session.execute(query)
    ]


def actions(*, session: Session, readable: ColumnElement[bool]) -> list[str]:
    """The distinct actions among readable events, sorted (for the filter menu)."""
    return list(
        session.scalars(select(AuditEvent.action).where(readable).distinct().order_by(AuditEvent.action))
    )
