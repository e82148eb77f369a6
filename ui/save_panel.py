"""The save panel under a fresh analysis: title, tags, Save, and "save every run".

Which analysis was saved is tracked in session state by a weak reference to it (an
identity that never keeps an old analysis alive), so reruns do not save it twice and a
new run is recognised as new. A failed save shows the reason and leaves the analysis on
screen to retry.
"""

from __future__ import annotations

import weakref

import streamlit as st

from core.access import permissions
from core.domain.analysis import Analysis
from core.service import history
from core.store import analyses as library
from ui.session import current_viewer


def _is(reference: object, analysis: Analysis) -> bool:
    return isinstance(reference, weakref.ref) and reference() is analysis


def _save(analysis: Analysis, prefix: str) -> None:
    """Save with the typed title and tags; remember the outcome for the panel to show."""
    state = st.session_state
    state[f"{prefix}.tried"] = weakref.ref(analysis)
    try:
        record_id = history.save_analysis(
            viewer=current_viewer(),
            analysis=analysis,
            title=state.get(f"{prefix}.title", ""),
            tags=state.get(f"{prefix}.tags", ""),
        )
    except ValueError as exc:  # HeadlightError (incl. StorageError) and oversized attention
        state[f"{prefix}.error"] = f"Not saved: {exc}"
        return
    state[f"{prefix}.saved"] = weakref.ref(analysis)
    state[f"{prefix}.saved_id"] = record_id


def render_save_panel(analysis: Analysis, *, key: str = "generate") -> None:
    """Widgets to save ``analysis``; every widget key starts with ``{key}.save``."""
    prefix = f"{key}.save"
    state = st.session_state
    if not permissions.can_create(current_viewer()):
        st.caption(
            "Sign in (sidebar) to save analyses."
            if current_viewer().user_id is None
            else "Your role can read and run, not save."
        )
        return
    # "Save every run" tries each new analysis once; after a failure the Save button retries.
    if (
        state.get(f"{prefix}.auto")
        and not _is(state.get(f"{prefix}.saved"), analysis)
        and not _is(state.get(f"{prefix}.tried"), analysis)
    ):
        _save(analysis, prefix)
    saved = _is(state.get(f"{prefix}.saved"), analysis)
    with st.container(border=True):
        title_col, tags_col, button_col = st.columns([3, 2, 1], vertical_alignment="bottom")
        title_col.text_input(
            "Title",
            placeholder=library.default_title(analysis.request.text),
            max_chars=200,
            key=f"{prefix}.title",
        )
        tags_col.text_input("Tags", placeholder="comma, separated", key=f"{prefix}.tags")
        button_col.button(
            "Save",
            key=f"{prefix}.button",
            disabled=saved,
            width="stretch",
            on_click=_save,
            args=(analysis, prefix),
        )
        st.toggle(
            "Save every run",
            key=f"{prefix}.auto",
            help="Save each new analysis as soon as it appears, with the title and tags above.",
        )
        error = state.pop(f"{prefix}.error", None)
        if error:
            st.error(error)
        if saved:
            st.success(f"Saved as #{state[f'{prefix}.saved_id']}; find it on the History screen.")
