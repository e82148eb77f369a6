"""The Audit screen's reads, one transaction each (`core.access.audit` holds the rules)."""

from __future__ import annotations

from core.access import audit
from core.domain.audit import AuditFilters, AuditRow
from core.domain.identity import Viewer
from core.store.transaction import unit_of_work


def action_choices(*, viewer: Viewer) -> list[str]:
    """The actions of the events the viewer may read, for the filter menu."""
    with unit_of_work() as session:
        return audit.action_choices(session=session, viewer=viewer)


def events(*, viewer: Viewer, filters: AuditFilters) -> list[AuditRow]:
    """The newest events the viewer may read that match ``filters``."""
    with unit_of_work() as session:
        return audit.events(session=session, viewer=viewer, filters=filters)
