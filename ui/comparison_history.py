"""Saved comparisons on the History screen: search, filters, pages, the Trash, and an opened
comparison with its exports, sharing and the full Compare view (re-rendered from stored
data; no model runs).

Actions run as callbacks through `history_view.FLASH`, like the analyses list.
"""

from __future__ import annotations

import streamlit as st

from core.access import permissions
from core.access.permissions import Scope
from core.attention.comparison import CompareOutcome
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.domain.owned import ComparisonRow, RecordKind
from core.service import records, saved_comparisons
from core.service.saved_comparisons import SavedComparisonView
from core.store.comparisons import ComparisonQuery
from ui import share_panel
from ui.compare_view import render_outcome
from ui.history_view import FLASH, SCOPE_LABELS, escaped_block

OPEN = "history.comparisons.open_id"
# The opened comparison decoded once (the Open click), not on every rerun.
OUTCOME = "history.comparisons.outcome"
PAGE = "history.comparisons.page"
EXPORT = "history.comparisons.export"
PAGE_SIZE = 20


def _reset_page() -> None:
    st.session_state[PAGE] = 0


def _open(comparison_id: int) -> None:
    def view(viewer: Viewer) -> None:
        outcome = saved_comparisons.open_comparison(viewer=viewer, comparison_id=comparison_id)
        st.session_state[OPEN] = comparison_id
        st.session_state[OUTCOME] = (comparison_id, outcome)

    FLASH.act(view)


def _close() -> None:
    st.session_state.pop(OPEN, None)
    st.session_state.pop(OUTCOME, None)


def _delete(comparison_id: int) -> None:
    if FLASH.act(
        lambda viewer: records.delete(viewer=viewer, kind=RecordKind.COMPARISON, record_id=comparison_id),
        success=f"Moved comparison #{comparison_id} to the Trash.",
    ):
        _close()


def _restore(comparison_id: int) -> None:
    FLASH.act(
        lambda viewer: records.restore(viewer=viewer, kind=RecordKind.COMPARISON, record_id=comparison_id),
        success=f"Restored comparison #{comparison_id}.",
    )


def _prepare_export(kind: str, comparison_id: int) -> None:
    def build(viewer: Viewer) -> None:
        download = saved_comparisons.export_comparison(viewer=viewer, comparison_id=comparison_id, kind=kind)
        st.session_state[EXPORT] = (comparison_id, download.name, download.data, download.mime)

    FLASH.act(build)


def _filters(models: list[str], viewer: Viewer) -> tuple[str, str | None, Scope, bool]:
    text_col, model_col = st.columns([3, 2])
    text = text_col.text_input(
        "Search titles and texts", key="history.comparisons.text", on_change=_reset_page
    )
    model = model_col.selectbox(
        "Model (either side)",
        [None, *models],
        format_func=lambda m: "Any model" if m is None else m,
        key="history.comparisons.model",
        on_change=_reset_page,
    )
    scope_col, trash_col = st.columns([3, 1], vertical_alignment="bottom")
    scope = scope_col.radio(
        "Show",
        permissions.scopes_for(viewer),
        format_func=SCOPE_LABELS.get,
        horizontal=True,
        key="history.comparisons.scope",
        on_change=_reset_page,
    )
    trash = permissions.has_trash(viewer) and trash_col.toggle(
        "Trash", key="history.comparisons.trash", on_change=_reset_page
    )
    return text, model, Scope(scope), bool(trash)


def _row(row: ComparisonRow, *, trash: bool) -> None:
    with st.container(border=True):
        text_col, button_col = st.columns([6, 1], vertical_alignment="center")
        with text_col:
            escaped_block(row.title, style="font-weight:600")
            meta = [
                f"#{row.id}",
                f"{row.model_a_id} vs {row.model_b_id}",
                f"{row.created_at:%Y-%m-%d %H:%M} UTC",
            ]
            if row.is_public:
                meta.append("public")
            escaped_block(" · ".join(meta), style="color:#57606a;font-size:0.85em")
        if trash:
            button_col.button(
                "Restore", key=f"history.comparisons.restore.{row.id}", on_click=_restore, args=(row.id,)
            )
        else:
            button_col.button(
                "Open", key=f"history.comparisons.open.{row.id}", on_click=_open, args=(row.id,)
            )


def _pager(shown: int, has_more: bool) -> None:
    page = st.session_state.setdefault(PAGE, 0)
    left, middle, right = st.columns([1, 3, 1], vertical_alignment="center")
    if left.button("← Previous", key="history.comparisons.previous", disabled=page == 0):
        st.session_state[PAGE] = page - 1
        st.rerun()
    first = page * PAGE_SIZE + 1
    middle.caption(f"Showing {first:,}–{first + shown - 1:,}" if shown else "Showing 0")
    if right.button("Next →", key="history.comparisons.next", disabled=not has_more):
        st.session_state[PAGE] = page + 1
        st.rerun()


def _toolbar(record: SavedComparisonView) -> None:
    columns = st.columns(4)
    columns[0].button("Close", key="history.comparisons.close", on_click=_close)
    if record.access.can_write:
        columns[1].button("Delete", key="history.comparisons.delete", on_click=_delete, args=(record.id,))
    for column, kind in zip(columns[2:], ("json", "csv"), strict=True):
        column.button(
            f"Export {kind.upper()}",
            key=f"history.comparisons.export.{kind}",
            on_click=_prepare_export,
            args=(kind, record.id),
        )
    prepared = st.session_state.get(EXPORT)
    if prepared and prepared[0] == record.id:
        _, name, data, mime = prepared
        st.download_button(
            f"Download {name} ({len(data) / 1024:,.0f} KiB)",
            data=data,
            file_name=name,
            mime=mime,
            key="history.comparisons.download",
        )


def _opened(viewer: Viewer) -> tuple[SavedComparisonView, CompareOutcome] | None:
    comparison_id = st.session_state.get(OPEN)
    if comparison_id is None:
        return None
    try:
        # Read again on every run: it may have been deleted or made private since it was opened.
        cached = st.session_state.get(OUTCOME)
        decode = cached is None or cached[0] != comparison_id
        record = saved_comparisons.saved_comparison(
            viewer=viewer, comparison_id=comparison_id, with_outcome=decode
        )
        if record.outcome is not None:
            cached = (comparison_id, record.outcome)
            st.session_state[OUTCOME] = cached
    except HeadlightError as exc:
        _close()
        st.warning(str(exc))
        return None
    return record, cached[1]


def section(viewer: Viewer, models: list[str]) -> None:
    """The comparisons half of History: filters, the list and, when one is open, the view."""
    text, model, scope, trash = _filters(models, viewer)
    page = st.session_state.setdefault(PAGE, 0)
    try:
        query = ComparisonQuery(
            scope=scope, text=text, model_id=model, trash=trash, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE
        )
        rows = saved_comparisons.list_comparisons(viewer=viewer, query=query)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    if not rows:
        st.info("The Trash is empty." if trash else "No saved comparisons match. Save one from Compare.")
    for row in rows[:PAGE_SIZE]:
        _row(row, trash=trash)
    _pager(min(len(rows), PAGE_SIZE), len(rows) > PAGE_SIZE)
    opened = None if trash else _opened(viewer)
    if opened is None:
        return
    record, outcome = opened
    st.divider()
    escaped_block(record.title, style="font-size:1.5em;font-weight:600")
    _toolbar(record)
    if record.access.can_share:
        share_panel.render(record.id, is_public=record.is_public, kind=RecordKind.COMPARISON)
    st.caption("Re-rendered from stored data; neither model ran.")
    render_outcome(outcome, key="history.comparison")
