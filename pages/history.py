"""History: find saved analyses, comparisons and head atlases, reopen them without the model,
annotate, export, share, restore."""

from __future__ import annotations

import streamlit as st

from core.access import permissions
from core.domain import errors
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.domain.settings import get_settings
from core.service import history
from core.store import export
from core.store.analyses import SavedAnalysisView
from ui import atlas_view, comparison_history, history_view, saved_view, share_panel
from ui.analysis_view import render_analysis
from ui.resources import get_service
from ui.session import current_actor, current_viewer

RECOMPUTED = "history.recomputed"
KINDS = {"analyses": "Analyses", "comparisons": "Comparisons", "atlases": "Head atlases"}


def _import_box() -> None:
    with st.expander("Import an analysis (JSON export)"):
        upload = st.file_uploader(
            "JSON export",
            type=["json"],
            key="history.import.file",
            max_upload_size=export.MAX_IMPORT_BYTES // 2**20,
        )
        if st.button("Import", key="history.import.button", disabled=upload is None) and upload is not None:
            data = upload.getvalue()

            def do_import(viewer: Viewer) -> str:
                new_id = history.import_analysis(viewer=viewer, data=data)
                st.session_state[history_view.OPEN] = new_id
                return f"Imported as analysis #{new_id}."

            history_view.FLASH.act(do_import)
            st.rerun()


def _opened_analysis(record: SavedAnalysisView) -> Analysis:
    """The recomputed analysis when there is one for this record, else the stored one."""
    recomputed = st.session_state.get(RECOMPUTED)
    if recomputed and recomputed[0] == record.id:
        st.caption("Recomputed with full detail (the model ran again with the stored settings).")
        return recomputed[1]
    st.caption("Re-rendered from stored data; the model did not run.")
    return record.analysis


def _recompute(record: SavedAnalysisView, viewer: Viewer) -> None:
    try:
        with st.spinner(f"Running {record.model_id} again…"):
            analysis = history.recompute(
                viewer=viewer, visualization_id=record.id, service=get_service(), actor=current_actor()
            )
    except HeadlightError as exc:
        st.error(str(exc))
        return
    st.session_state[RECOMPUTED] = (record.id, analysis)


def _show_opened(record: SavedAnalysisView, viewer: Viewer) -> None:
    st.divider()
    history_view.escaped_block(record.title, style="font-size:1.5em;font-weight:600")
    if saved_view.toolbar(record, viewer):
        _recompute(record, viewer)
    if record.access.can_share:
        share_panel.render(record.id, is_public=record.is_public)
    analysis = _opened_analysis(record)
    view_col, notes_col = st.columns([3, 1])
    with view_col:
        render_analysis(analysis, key="history")
    with notes_col:
        saved_view.notes_panel(record, analysis)


def _open(viewer: Viewer) -> SavedAnalysisView | None:
    """The analysis chosen with Open, if it is still there to read."""
    open_id = st.session_state.get(history_view.OPEN)
    if open_id is None:
        return None
    try:
        return history.saved_analysis(viewer=viewer, visualization_id=open_id)
    except errors.NotFoundError as exc:
        st.session_state.pop(history_view.OPEN, None)
        st.warning(str(exc))
        return None


def main() -> None:
    st.title("History")
    viewer = current_viewer()
    if viewer.user_id is None:
        if not get_settings().guests_allowed:
            st.info("Sign in (sidebar) to see saved analyses.")
            return
        st.caption("Public analyses. Sign in (sidebar) to keep, find and share your own.")
    history_view.FLASH.show()
    kind = st.segmented_control(
        "Saved", list(KINDS), format_func=KINDS.get, default="analyses", key="history.kind"
    )
    if kind == "comparisons":
        comparison_history.section(viewer, get_service().registry.ids())
        return
    if kind == "atlases":
        atlas_view.history_section(viewer)
        return
    _analyses(viewer)


def _analyses(viewer: Viewer) -> None:
    try:
        models, tags = history.filter_choices(viewer=viewer)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    models = sorted(set(models) | set(get_service().registry.ids()))
    query = history_view.query_widgets(models, tags, viewer)
    cursor = history_view.page_cursor(query)
    try:
        page = history.search(viewer=viewer, query=query, cursor=cursor)
        record = None if query.trash else _open(viewer)
    except ValueError as exc:
        st.error(str(exc))
        return
    if query.trash:
        days = get_settings().trash_retention_days
        st.caption(f"Analyses in the Trash are deleted for good after {days} days (`python -m db.purge`).")
    history_view.result_list(page, trash=query.trash)
    history_view.pager(page, page_size=query.page_size)
    if permissions.can_create(viewer):
        _import_box()
    if record is not None:
        _show_opened(record, viewer)


main()
