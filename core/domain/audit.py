"""The audit log's filters and rows, as the Audit screen and the database both name them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditFilters:
    """Narrowing an audit list; empty fields do not filter. ``until`` is exclusive."""

    actions: tuple[str, ...] = ()
    actor: str = ""
    target_type: str | None = None
    target_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str | None
    action: str
    target_type: str | None
    target_id: int | None
    detail: dict[str, Any]
