"""Models: every registry model with its state, load/unload, on/off, the default, recent load
failures, and adding models. Admins only."""

from __future__ import annotations

import streamlit as st

from core.access import permissions
from core.domain.errors import HeadlightError
from core.domain.settings import get_settings
from core.service import models_screen
from ui import models_view
from ui.resources import get_service
from ui.session import current_viewer


def main() -> None:
    st.title("Models")
    viewer = current_viewer()
    if not permissions.can_manage_models(viewer):
        st.error("Only admins can open the Models screen.")
        return
    settings = get_settings()
    service = get_service()
    models_view.FLASH.show()
    if service.registry_source.last_error:
        st.warning(service.registry_source.last_error)
    try:
        found = models_screen.overview(
            viewer=viewer, service=service, uploads_dir=settings.uploaded_models_dir
        )
    except HeadlightError as exc:
        st.error(str(exc))
        return
    rows = found.listing.rows
    models_view.model_table(rows, found.listing.skipped)
    models_view.model_actions(rows, service)
    models_view.failures(found.failures)
    models_view.add_form(sorted({row.family for row in rows}), service, settings)


main()
