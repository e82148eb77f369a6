"""Batch: datasets, head-atlas jobs on background workers, and the atlases they produce."""

from __future__ import annotations

import streamlit as st

from core.domain.errors import HeadlightError
from ui import atlas_view, batch_view
from ui.session import current_viewer, mark_active


def main() -> None:
    st.title("Batch")
    mark_active()
    viewer = current_viewer()
    if viewer.user_id is None:
        st.info("Sign in to use datasets and batch jobs.")
        return
    batch_view.FLASH.show()
    section = st.radio("Section", batch_view.SECTIONS, horizontal=True, key=batch_view.SECTION)
    try:
        if section == "Datasets":
            batch_view.datasets_section(viewer)
        elif section == "Jobs":
            batch_view.jobs_section(viewer)
        else:
            atlas_view.atlases_section(viewer)
    except HeadlightError as exc:  # the database is down, or a record vanished meanwhile
        st.error(str(exc))


main()
