"""Shared record: what a share link (/shared?[kind=…&]id=…&token=…) opens, with or without
an account. Analyses, comparisons and head atlases are shown read-only."""

from __future__ import annotations

import streamlit as st

from core.attention.comparison import CompareOutcome
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError
from core.domain.owned import RecordKind
from core.service import records
from core.store import sharing
from core.store.atlases import AtlasView
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


def _show(content: object) -> None:
    if isinstance(content, Analysis):
        render_analysis(content, key="shared")
    elif isinstance(content, CompareOutcome):
        render_outcome(content, key="shared")
    elif isinstance(content, AtlasView):
        atlas_panel(content, None)


def main() -> None:
    kind = sharing.parse_kind(st.query_params.get("kind", ""))
    record_id = sharing.parse_id(st.query_params.get("id", ""))
    token = st.query_params.get("token", "")
    if kind is None:
        # An unknown kind reads as an analysis that does not exist: one answer for every bad link.
        kind, record_id = RecordKind.ANALYSIS, 0
    # One view per link and browser session; reruns of this page are not new views.
    viewed = st.session_state.setdefault(VIEWED, set())
    try:
        shared = records.open_shared(
            kind=kind,
            record_id=record_id,
            token=token,
            limiter=get_share_limiter(),
            client=client_id(),
            seen_links=viewed,
        )
    except HeadlightError as exc:
        st.title(TITLES[kind])
        st.error(str(exc))
        return
    viewed.add(shared.link_id)
    escaped_block(shared.title, style="font-size:2em;font-weight:700;margin-bottom:0.3em")
    st.caption("Shared with you through a link · read-only")
    if shared.problem is not None:
        st.error(shared.problem)
        return
    try:
        _show(shared.content)
    except HeadlightError as exc:
        st.error(str(exc))


main()
