"""History: find saved analyses, comparisons and head atlases, reopen them without the model,
annotate, export, share, restore."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.orm import Session

from core.access import permissions
from core.domain import errors
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.domain.settings import get_settings
from core.service.analysis_service import recompute
from core.store import analyses as library
from core.store import export, records, transaction
from db.models import Visualization
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

            def do_import(session: Session, viewer: Viewer) -> str:
                new_id = library.import_json(session=session, viewer=viewer, data=data)
                st.session_state[history_view.OPEN] = new_id
                return f"Imported as analysis #{new_id}."

            history_view.run_action(do_import)
            st.rerun()


def _opened_analysis(record: Visualization) -> Analysis:
    """The recomputed analysis when there is one for this record, else the stored one."""
    recomputed = st.session_state.get(RECOMPUTED)
    if recomputed and recomputed[0] == record.id:
        st.caption("Recomputed with full detail (the model ran again with the stored settings).")
        return recomputed[1]
    st.caption("Re-rendered from stored data; the model did not run.")
    return records.analysis_from_record(record)


def _recompute(record: Visualization) -> None:
    try:
        with st.spinner(f"Running {record.model_id} again…"):
            analysis = recompute(records.analysis_from_record(record), get_service(), actor=current_actor())
    except HeadlightError as exc:
        st.error(str(exc))
        return
    st.session_state[RECOMPUTED] = (record.id, analysis)


def _show_opened(record: Visualization, viewer: Viewer) -> None:
    st.divider()
    history_view.escaped_block(record.title, style="font-size:1.5em;font-weight:600")
    if saved_view.toolbar(record, viewer):
        _recompute(record)
    if permissions.can_share(viewer, record):
        share_panel.render(record)
    analysis = _opened_analysis(record)
    view_col, notes_col = st.columns([3, 1])
    with view_col:
        render_analysis(analysis, key="history")
    with notes_col:
        saved_view.notes_panel(record, analysis, viewer)


def _open(session: Session, viewer: Viewer) -> Visualization | None:
    """The analysis chosen with Open, if it is still there to read."""
    open_id = st.session_state.get(history_view.OPEN)
    if open_id is None:
        return None
    try:
        return library.open_saved(session=session, viewer=viewer, visualization_id=open_id)
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
    history_view.show_flash()
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
        with transaction.unit_of_work() as session:
            models, tags = library.filter_choices(session=session, viewer=viewer)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    models = sorted(set(models) | set(get_service().registry.ids()))
    query = history_view.query_widgets(models, tags, viewer)
    cursor = history_view.page_cursor(query)
    try:
        with transaction.unit_of_work() as session:
            page = library.search_history(session=session, viewer=viewer, query=query, cursor=cursor)
            record = None if query.trash else _open(session, viewer)
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
