"""Audit log: who did what, and when. Owners see their items and account; admins see all."""

from __future__ import annotations

from datetime import date

import streamlit as st

from core.access import audit, permissions
from core.domain.audit import AuditFilters
from core.domain.errors import HeadlightError
from core.service import audit_log
from ui.session import current_viewer

TARGET_TYPES = {"": "Any item", "visualization": "Analyses", "comparison": "Comparisons", "user": "Accounts"}


def _filters(choices: list[str], *, admin: bool) -> AuditFilters:
    with st.expander("Filters", expanded=admin):
        left, middle, right = st.columns(3)
        actions = left.multiselect("Actions", choices, key="audit.filter.actions")
        actor = left.text_input("Who (username)", key="audit.filter.actor", max_chars=64, disabled=not admin)
        target_type = middle.selectbox(
            "Item type", list(TARGET_TYPES), format_func=TARGET_TYPES.get, key="audit.filter.type"
        )
        target_id = middle.number_input("Item id", min_value=1, value=None, step=1, key="audit.filter.id")
        dates = right.date_input("Between", value=(), key="audit.filter.dates")
    picked = [d for d in (dates if isinstance(dates, (tuple, list)) else [dates]) if isinstance(d, date)]
    return audit.date_filters(
        actions=tuple(actions),
        actor=actor if admin else "",
        target_type=target_type,
        target_id=int(target_id) if target_id is not None else None,
        date_from=picked[0] if picked else None,
        date_to=picked[-1] if picked else None,
    )


def main() -> None:
    st.title("Audit log")
    viewer = current_viewer()
    if not permissions.can_view_audit(viewer):
        st.info("Sign in to see the audit log of your analyses.")
        return
    st.caption(
        "Every event, newest first."
        if viewer.is_admin
        else "Events on your analyses and your account, newest first."
    )
    try:
        choices = audit_log.action_choices(viewer=viewer)
        filters = _filters(choices, admin=viewer.is_admin)
        rows = audit_log.events(viewer=viewer, filters=filters)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    if not rows:
        st.info("No events match.")
        return
    st.dataframe(audit.table(rows), hide_index=True, key="audit.table")
    st.caption(
        f"{len(rows):,} events"
        + (" (the newest shown; narrow the filters for older ones)" if len(rows) >= audit.MAX_ROWS else "")
    )
    st.download_button(
        "Export CSV",
        data=audit.to_csv(rows),
        file_name="headlight-audit.csv",
        mime="text/csv",
        key="audit.export",
    )


main()
