"""Sharing an opened analysis on the History screen: the public switch and share links.

A new link's address is shown once, right after it is made (only its hash is stored);
afterwards the list shows each link's dates and status, with Revoke for the live ones.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st
from sqlalchemy.orm import Session

from core import library, sharing
from core.config import get_settings
from core.errors import HeadlightError
from core.permissions import Viewer
from core.render.history_view import run_action
from core.render.session import current_viewer
from db.models import Visualization, utcnow

NEW_LINK = "history.share.new_link"
# Set by the panel's actions: its expander reopens on the run that shows their outcome.
KEEP_OPEN = "history.share.keep_open"
DEFAULT_ORIGIN = "http://localhost:8501"


def _base() -> str:
    """Where the app is served: the configured public address, else the browser's origin."""
    return get_settings().public_url or sharing.origin_of(st.context.url or DEFAULT_ORIGIN)


def _set_public(visualization_id: int) -> None:
    st.session_state[KEEP_OPEN] = True
    public = bool(st.session_state[f"history.share.public.{visualization_id}"])
    run_action(
        lambda s, v: sharing.set_public(
            session=s, viewer=v, visualization_id=visualization_id, public=public
        ),
        success="Anyone can now read this analysis." if public else "This analysis is private again.",
    )


def _create(visualization_id: int) -> None:
    st.session_state[KEEP_OPEN] = True
    days = sharing.EXPIRY_DAYS[st.session_state["history.share.expiry"]]
    base = _base()

    def create(session: Session, viewer: Viewer) -> str:
        link = sharing.create_link(
            session=session,
            viewer=viewer,
            visualization_id=visualization_id,
            expires_in_days=days,
            now=utcnow(),
        )
        st.session_state[NEW_LINK] = (
            visualization_id,
            sharing.share_url(base, visualization_id, link.token),
        )
        return f"Share link #{link.id} created."

    run_action(create)


def _revoke(visualization_id: int, link_id: int) -> None:
    st.session_state[KEEP_OPEN] = True
    run_action(
        lambda s, v: sharing.revoke_link(
            session=s, viewer=v, visualization_id=visualization_id, link_id=link_id, now=utcnow()
        ),
        success=f"Share link #{link_id} revoked: it now opens nothing.",
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


def render(record: Visualization) -> None:
    """The Share expander for an analysis the viewer may share."""
    with st.expander("Share", icon=":material/share:", expanded=st.session_state.pop(KEEP_OPEN, False)):
        st.toggle(
            "Public: everyone can read it, including visitors who are not signed in",
            value=record.is_public,
            key=f"history.share.public.{record.id}",
            on_change=_set_public,
            args=(record.id,),
        )
        left, right = st.columns([2, 1], vertical_alignment="bottom")
        left.selectbox("New link expires after", list(sharing.EXPIRY_DAYS), key="history.share.expiry")
        right.button("Create share link", key="history.share.create", on_click=_create, args=(record.id,))
        new_link = st.session_state.pop(NEW_LINK, None)
        if new_link and new_link[0] == record.id:
            st.warning("Copy the link now: it is shown only once. Anyone holding it can read this analysis.")
            st.code(new_link[1], language=None)
        try:
            with library.unit_of_work() as session:
                links = sharing.list_links(
                    session=session, viewer=current_viewer(), visualization_id=record.id, now=utcnow()
                )
        except HeadlightError as exc:
            st.error(str(exc))
            return
        for link in links:
            text_col, button_col = st.columns([4, 1], vertical_alignment="center")
            created, expires = _when(link.created_at), _when(link.expires_at)
            text_col.caption(f"Link #{link.id} · {link.status} · created {created} · expires {expires}")
            if link.status == "active":
                button_col.button(
                    "Revoke",
                    key=f"history.share.revoke.{link.id}",
                    on_click=_revoke,
                    args=(record.id, link.id),
                )
