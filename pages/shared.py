"""Shared analysis: what a share link (/shared?id=…&token=…) opens, with or without an account."""

from __future__ import annotations

import streamlit as st

from core import library, records, sharing
from core.errors import HeadlightError
from core.render.analysis_view import render_analysis
from core.render.history_view import escaped_block
from core.render.session import client_id
from core.resources import get_share_limiter
from db.models import utcnow

VIEWED = "shared.viewed"


def main() -> None:
    visualization_id = sharing.parse_id(st.query_params.get("id", ""))
    token = st.query_params.get("token", "")
    try:
        with library.unit_of_work() as session:
            record, link_id = sharing.open_link(
                session=session,
                limiter=get_share_limiter(),
                client=client_id(),
                visualization_id=visualization_id,
                token=token,
                now=utcnow(),
            )
            # One view per link and browser session; reruns of this page are not new views.
            viewed = st.session_state.setdefault(VIEWED, set())
            if link_id not in viewed:
                sharing.record_view(session=session, visualization_id=record.id, link_id=link_id)
    except HeadlightError as exc:
        st.title("Shared analysis")
        st.error(str(exc))
        return
    viewed.add(link_id)
    escaped_block(record.title, style="font-size:2em;font-weight:700;margin-bottom:0.3em")
    st.caption("Shared with you through a link · read-only")
    render_analysis(records.analysis_from_record(record), key="shared")


main()
