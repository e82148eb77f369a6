"""Streamlit pieces of the History screen: filters, the paged result list, actions.

Button actions run as callbacks through `FLASH` (`ui.actions.Flash`), one service call each;
their outcome is shown at the top of the next run. All user text that becomes HTML goes
through `html.escape` inside a block element, so neither HTML nor Markdown in a title, tag or
note is ever interpreted.
"""

from __future__ import annotations

import html
from datetime import date

import streamlit as st

from core.access import permissions
from core.access.permissions import Scope
from core.domain.identity import Viewer
from core.domain.owned import HistoryRow, RecordKind, SearchPage, Sort
from core.service import history, records
from core.store.analyses import HistoryQuery
from ui.actions import Flash

FLASH = Flash("history.flash")
OPEN = "history.open_id"
PAGER = "history.pager"
SCOPE_LABELS = {
    Scope.ALL: "Everything I can see",
    Scope.MINE: "Mine",
    Scope.PUBLIC: "Public",
    Scope.SHARED: "Shared with me",
}
SORT_LABELS = {Sort.NEWEST: "Newest first", Sort.OLDEST: "Oldest first", Sort.TITLE: "Title A–Z"}


def escaped_block(text: str, *, style: str = "") -> None:
    """``text`` shown literally (escaped, in a block so Markdown leaves it alone)."""
    body = html.escape(text).replace("\n", "<br>")
    st.markdown(f'<div style="{style}">{body}</div>', unsafe_allow_html=True)


def query_widgets(models: list[str], tags: list[str], viewer: Viewer) -> HistoryQuery:
    """Search box, filters and sort (only the scopes and Trash the viewer has); returns the query."""
    text = st.text_input(
        "Search titles, texts and notes",
        key="history.filter.text",
        placeholder='words, "an exact phrase", this or that, -without',
        max_chars=500,
    )
    with st.expander("Filters and sort"):
        left, middle, right = st.columns(3)
        scope = left.radio(
            "Show", permissions.scopes_for(viewer), format_func=SCOPE_LABELS.get, key="history.filter.scope"
        )
        sort = left.selectbox("Sort", list(Sort), format_func=SORT_LABELS.get, key="history.filter.sort")
        model_ids = middle.multiselect("Models", models, key="history.filter.models")
        chosen_tags = middle.multiselect(
            "Tags (all of)", tags, key="history.filter.tags", accept_new_options=True
        )
        dates = right.date_input("Saved between", value=(), key="history.filter.dates")
        trash = permissions.has_trash(viewer) and right.toggle(
            "Trash", key="history.filter.trash", help="Deleted analyses, to restore."
        )
    date_from, date_to = _date_range(dates)
    return HistoryQuery(
        text=text,
        scope=Scope(scope),
        model_ids=tuple(model_ids),
        date_from=date_from,
        date_to=date_to,
        tags=tuple(chosen_tags),
        sort=Sort(sort),
        trash=trash,
    )


def _date_range(value: object) -> tuple[date | None, date | None]:
    picked = list(value) if isinstance(value, (tuple, list)) else [value]
    picked = [d for d in picked if isinstance(d, date)]
    if not picked:
        return None, None
    return picked[0], picked[-1]


def page_cursor(query: HistoryQuery) -> str | None:
    """The cursor of the page being shown; back to page 1 whenever the query changes."""
    state = st.session_state.setdefault(PAGER, {"query": None, "stack": [None]})
    if state["query"] != query:
        state.update(query=query, stack=[None])
    return state["stack"][-1]


def _next_page(cursor: str) -> None:
    st.session_state[PAGER]["stack"].append(cursor)


def _previous_page() -> None:
    st.session_state[PAGER]["stack"].pop()


def pager(page: SearchPage, *, page_size: int) -> None:
    """'Showing a–b of n' with previous/next buttons."""
    stack = st.session_state[PAGER]["stack"]
    first = (len(stack) - 1) * page_size + 1
    left, middle, right = st.columns([1, 3, 1], vertical_alignment="center")
    left.button("← Previous", key="history.list.previous", disabled=len(stack) == 1, on_click=_previous_page)
    shown = f"{first:,}–{first + len(page.rows) - 1:,}" if page.rows else "0"
    total = f"{page.total:,}+" if page.total_capped else f"{page.total:,}"
    middle.caption(f"Showing {shown} of {total}")
    right.button(
        "Next →",
        key="history.list.next",
        disabled=page.next_cursor is None,
        on_click=_next_page,
        args=(page.next_cursor,),
    )


def _open(visualization_id: int) -> None:
    def view(viewer: Viewer) -> None:
        history.record_opened(viewer=viewer, visualization_id=visualization_id)
        st.session_state[OPEN] = visualization_id

    FLASH.act(view)


def _restore(visualization_id: int) -> None:
    FLASH.act(
        lambda viewer: records.restore(viewer=viewer, kind=RecordKind.ANALYSIS, record_id=visualization_id),
        success=f"Restored analysis #{visualization_id}.",
    )


def result_list(page: SearchPage, *, trash: bool) -> None:
    """One bordered row per result, with Open (or Restore in the Trash)."""
    if not page.rows:
        st.info("The Trash is empty." if trash else "No saved analyses match. Save one from Generate.")
    for row in page.rows:
        with st.container(border=True):
            text_col, button_col = st.columns([6, 1], vertical_alignment="center")
            with text_col:
                escaped_block(row.title, style="font-weight:600")
                escaped_block(_row_meta(row, trash), style="color:#57606a;font-size:0.85em")
                escaped_block(row.snippet.replace("\n", " "), style="font-size:0.9em")
            if trash:
                button_col.button(
                    "Restore", key=f"history.list.restore.{row.id}", on_click=_restore, args=(row.id,)
                )
            else:
                button_col.button("Open", key=f"history.list.open.{row.id}", on_click=_open, args=(row.id,))


def _row_meta(row: HistoryRow, trash: bool) -> str:
    when = (row.deleted_at if trash and row.deleted_at else row.created_at).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"#{row.id}", row.model_id, ("deleted " if trash else "") + when, f"{row.token_count:,} tokens"]
    if row.annotation_count:
        parts.append(f"{row.annotation_count} note{'s' if row.annotation_count > 1 else ''}")
    if row.is_public:
        parts.append("public")
    if row.tags:
        parts.append("tags: " + ", ".join(row.tags))
    return " · ".join(parts)
