"""Shared record: what a share link (/shared?[kind=…&]id=…&token=…) opens, with or without
an account. Analyses, comparisons and head atlases are shown read-only."""

from __future__ import annotations

import streamlit as st

from core.domain.errors import HeadlightError
from core.store import comparisons as compare_store
from core.store import records, sharing, transaction
from core.store.sharing import RecordKind
from db.models import Atlas, Comparison, Visualization, utcnow
from ui.analysis_view import render_analysis
from ui.atlas_view import atlas_panel
from ui.compare_view import render_outcome
from ui.history_view import escaped_block
from ui.resources import get_share_limiter
from ui.session import client_id

VIEWED = "shared.viewed"
TITLES = {
    RecordKind.ANALYSIS: "Shared analysis",
    RecordKind.COMPARISON: "Shared comparison",
    RecordKind.ATLAS: "Shared head atlas",
}


def _show(record: object) -> None:
    if isinstance(record, Visualization):
        render_analysis(records.analysis_from_record(record), key="shared")
    elif isinstance(record, Comparison):
        render_outcome(compare_store.outcome_from_record(record), key="shared")
    elif isinstance(record, Atlas):
        atlas_panel(record, None)


def main() -> None:
    kind = sharing.parse_kind(st.query_params.get("kind", ""))
    record_id = sharing.parse_id(st.query_params.get("id", ""))
    token = st.query_params.get("token", "")
    if kind is None:
        # An unknown kind reads as an analysis that does not exist: one answer for every bad link.
        kind, record_id = RecordKind.ANALYSIS, 0
    try:
        with transaction.unit_of_work() as session:
            record, link_id = sharing.open_link(
                session=session,
                limiter=get_share_limiter(),
                client=client_id(),
                record_id=record_id,
                token=token,
                now=utcnow(),
                kind=kind,
            )
            # One view per link and browser session; reruns of this page are not new views.
            viewed = st.session_state.setdefault(VIEWED, set())
            if link_id not in viewed:
                sharing.record_view(session=session, record_id=record.id, link_id=link_id, kind=kind)
    except HeadlightError as exc:
        st.title(TITLES[kind])
        st.error(str(exc))
        return
    viewed.add(link_id)
    escaped_block(record.title, style="font-size:2em;font-weight:700;margin-bottom:0.3em")
    st.caption("Shared with you through a link · read-only")
    try:
        _show(record)
    except HeadlightError as exc:
        st.error(str(exc))


main()
