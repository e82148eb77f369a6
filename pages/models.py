"""Models: every registry model with its state, load/unload, on/off, the default, recent load
failures, and adding models. Admins only."""

from __future__ import annotations

import streamlit as st

from core.access import permissions
from core.domain.errors import HeadlightError
from core.domain.settings import get_settings
from core.store import model_admin, transaction
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
    models_view.show_flash()
    if service.registry_source.last_error:
        st.warning(service.registry_source.last_error)
    try:
        with transaction.unit_of_work() as session:
            listing = model_admin.model_rows(
                session=session, viewer=viewer, service=service, uploads_dir=settings.uploaded_models_dir
            )
            failures = model_admin.recent_failures(session=session, viewer=viewer)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    models_view.model_table(listing.rows, listing.skipped)
    models_view.model_actions(listing.rows, service)
    models_view.failures(failures)
    models_view.add_form(sorted({row.family for row in listing.rows}), service, settings)


main()
