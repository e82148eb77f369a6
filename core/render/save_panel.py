"""The save panel under a fresh analysis: title, tags, Save, and "save every run".

Which analysis was saved is tracked in session state by a weak reference to it (an
identity that never keeps an old analysis alive), so reruns do not save it twice and a
new run is recognised as new. A failed save shows the reason and leaves the analysis on
screen to retry.
"""

from __future__ import annotations

import weakref

import streamlit as st

from core import library
from core.analysis import Analysis
from core.identity import local_viewer


def _is(reference: object, analysis: Analysis) -> bool:
    return isinstance(reference, weakref.ref) and reference() is analysis


def _save(analysis: Analysis, title: str, tags: str, prefix: str) -> None:
    try:
        with library.unit_of_work() as session:
            viewer = local_viewer(session)
            record_id = library.save_analysis(
                session=session, viewer=viewer, analysis=analysis, title=title, tags=tags
            )
    except ValueError as exc:  # HeadlightError (incl. StorageError) and oversized attention
        st.error(f"Not saved: {exc}")
        return
    st.session_state[f"{prefix}.saved"] = weakref.ref(analysis)
    st.session_state[f"{prefix}.saved_id"] = record_id


def render_save_panel(analysis: Analysis, *, key: str = "generate") -> None:
    """Widgets to save ``analysis``; every widget key starts with ``{key}.save``."""
    prefix = f"{key}.save"
    with st.container(border=True):
        title_col, tags_col, button_col = st.columns([3, 2, 1], vertical_alignment="bottom")
        title = title_col.text_input(
            "Title",
            placeholder=library.default_title(analysis.request.text),
            max_chars=200,
            key=f"{prefix}.title",
        )
        tags = tags_col.text_input("Tags", placeholder="comma, separated", key=f"{prefix}.tags")
        saved = _is(st.session_state.get(f"{prefix}.saved"), analysis)
        clicked = button_col.button("Save", key=f"{prefix}.button", disabled=saved, width="stretch")
        auto = st.toggle(
            "Save every run",
            key=f"{prefix}.auto",
            help="Save each new analysis as soon as it appears, with the title and tags above.",
        )
        # Auto-save tries each analysis once; after a failure the Save button retries.
        tried = _is(st.session_state.get(f"{prefix}.tried"), analysis)
        if clicked or (auto and not saved and not tried):
            st.session_state[f"{prefix}.tried"] = weakref.ref(analysis)
            _save(analysis, title, tags, prefix)
            saved = _is(st.session_state.get(f"{prefix}.saved"), analysis)
        if saved:
            st.success(f"Saved as #{st.session_state[f'{prefix}.saved_id']}; find it on the History screen.")
