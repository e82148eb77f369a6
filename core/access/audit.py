"""The audit log: who did what to which item, and when.

Writers call `record` inside the same transaction as the change they describe, so an
event exists exactly when its change was committed. Readers go through `core.access.permissions`
(`audit_filter`): owners see the events on their own items and their own account, admins
see everything.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.access import permissions
from core.domain.audit import AuditFilters, AuditRow
from core.domain.identity import Viewer
from core.domain.spreadsheet import csv_cell
from db import audit as audit_db
from db import queries

# Actions, named "<item>.<verb>" so a filter on the prefix groups them.
ANALYSIS_SAVE = "analysis.save"
ANALYSIS_IMPORT = "analysis.import"
ANALYSIS_VIEW = "analysis.view"
ANALYSIS_EXPORT = "analysis.export"
ANALYSIS_DELETE = "analysis.delete"
ANALYSIS_RESTORE = "analysis.restore"
ANALYSIS_PUBLISH = "analysis.publish"
ANALYSIS_UNPUBLISH = "analysis.unpublish"
COMPARISON_SAVE = "comparison.save"
COMPARISON_VIEW = "comparison.view"
COMPARISON_EXPORT = "comparison.export"
COMPARISON_DELETE = "comparison.delete"
COMPARISON_RESTORE = "comparison.restore"
COMPARISON_PUBLISH = "comparison.publish"
COMPARISON_UNPUBLISH = "comparison.unpublish"
ATLAS_VIEW = "atlas.view"
ATLAS_PUBLISH = "atlas.publish"
ATLAS_UNPUBLISH = "atlas.unpublish"
SHARE_CREATE = "share.create"
SHARE_REVOKE = "share.revoke"
LOGIN_SUCCESS = "login.success"
LOGIN_FAILURE = "login.failure"
LOGIN_LOCKED = "login.locked"
LOGOUT = "logout"
USER_CREATE = "user.create"
USER_REGISTER = "user.register"
USER_ROLE = "user.role_change"
USER_DEACTIVATE = "user.deactivate"
USER_ACTIVATE = "user.activate"
# Password reset by an admin (or the console), and changed by its owner.
USER_RESET = "user.password_reset"
USER_CHANGE = "user.password_change"

VISUALIZATION = "visualization"
COMPARISON = "comparison"
ATLAS = "atlas"
DATASET = "dataset"
PRESET = "preset"
USER = "user"
MAX_ROWS = 500
CSV_COLUMNS = ("id", "at", "actor", "action", "target_type", "target_id", "detail")


def record(
    *,
    session: Session,
    actor_id: int | None,
    action: str,
    target_type: str | None = None,
    target_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one event to the current transaction; ``actor_id`` None means not signed in."""
    queries.add_audit_event(
        session=session,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
    )


def date_filters(
    *,
    actions: tuple[str, ...] = (),
    actor: str = "",
    target_type: str | None = None,
    target_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> AuditFilters:
    """Filters from screen values; dates are inclusive days in UTC."""
    return AuditFilters(
        actions=actions,
        actor=actor.strip(),
        target_type=target_type or None,
        target_id=target_id,
        since=datetime.combine(date_from, time.min, UTC) if date_from else None,
        until=datetime.combine(date_to + timedelta(days=1), time.min, UTC) if date_to else None,
    )


def events(
    *, session: Session, viewer: Viewer, filters: AuditFilters | None = None, limit: int = MAX_ROWS
) -> list[AuditRow]:
    """The newest events the viewer may see (none for guests)."""
    readable = permissions.audit_filter(viewer)
    return audit_db.list_events(
        session=session, readable=readable, filters=filters or AuditFilters(), limit=limit
    )


def action_choices(*, session: Session, viewer: Viewer) -> list[str]:
    return audit_db.actions(session=session, readable=permissions.audit_filter(viewer))


def to_csv(rows: list[AuditRow]) -> bytes:
    """The rows as UTF-8 CSV; cells a spreadsheet would run as formulas start with '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        cells = [row.id, row.at.isoformat(), row.actor or "", row.action, row.target_type or ""]
        cells += [row.target_id if row.target_id is not None else "", _detail_text(row.detail)]
        writer.writerow([csv_cell(cell) for cell in cells])
    return buffer.getvalue().encode("utf-8")


def _detail_text(detail: dict[str, Any]) -> str:
    return "; ".join(f"{key}={value}" for key, value in sorted(detail.items()))


def table(rows: list[AuditRow]) -> list[dict[str, object]]:
    """Rows for a dataframe: one line per event, the detail as ``key=value`` text."""
    return [
        {
            "when (UTC)": row.at.strftime("%Y-%m-%d %H:%M:%S"),
            "who": row.actor or "(not signed in)",
            "action": row.action,
            "item": f"{row.target_type} #{row.target_id}" if row.target_type and row.target_id else "",
            "detail": _detail_text(row.detail),
        }
        for row in rows
    ]
