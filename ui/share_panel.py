"""Sharing an opened record (analysis, comparison, head atlas): the public switch and share links.

A new link's address is shown once, right after it is made (only its hash is stored);
afterwards the list shows each link's dates and status, with Revoke for the live ones.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.domain.owned import RecordKind
from core.domain.settings import get_settings
from core.service import records
from core.store import sharing
from ui.history_view import FLASH
from ui.session import current_viewer

NEW_LINK = "share.new_link"
# Set by the panel's actions: its expander reopens on the run that shows their outcome.
KEEP_OPEN = "share.keep_open"
DEFAULT_ORIGIN = "http://localhost:8501"
NOUNS = {RecordKind.ANALYSIS: "analysis", RecordKind.COMPARISON: "comparison", RecordKind.ATLAS: "head atlas"}


def _base() -> str:
    """Where the app is served: the configured public address, else the browser's origin."""
    return get_settings().public_url or sharing.origin_of(st.context.url or DEFAULT_ORIGIN)


def _key(kind: RecordKind, record_id: int, what: str) -> str:
    return f"share.{kind.value}.{record_id}.{what}"


def _set_public(kind: RecordKind, record_id: int) -> None:
    st.session_state[KEEP_OPEN] = (kind, record_id)
    public = bool(st.session_state[_key(kind, record_id, "public")])
    noun = NOUNS[kind]
    FLASH.act(
        lambda viewer: records.set_public(viewer=viewer, kind=kind, record_id=record_id, public=public),
        success=f"Anyone can now read this {noun}." if public else f"This {noun} is private again.",
    )


def _create(kind: RecordKind, record_id: int) -> None:
    st.session_state[KEEP_OPEN] = (kind, record_id)
    days = sharing.EXPIRY_DAYS[st.session_state[_key(kind, record_id, "expiry")]]
    base = _base()

    def create(viewer: Viewer) -> str:
        link = records.create_link(viewer=viewer, kind=kind, record_id=record_id, expires_in_days=days)
        st.session_state[NEW_LINK] = ((kind, record_id), sharing.share_url(base, record_id, link.token, kind))
        return f"Share link #{link.id} created."

    FLASH.act(create)


def _revoke(kind: RecordKind, record_id: int, link_id: int) -> None:
    st.session_state[KEEP_OPEN] = (kind, record_id)
    FLASH.act(
        lambda viewer: records.revoke_link(viewer=viewer, kind=kind, record_id=record_id, link_id=link_id),
        success=f"Share link #{link_id} revoked: it now opens nothing.",
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


def render(record_id: int, *, is_public: bool, kind: RecordKind = RecordKind.ANALYSIS) -> None:
    """The Share expander for a record the viewer may share."""
    target = (kind, record_id)
    noun = NOUNS[kind]
    keep_open = st.session_state.get(KEEP_OPEN) == target
    if keep_open:
        st.session_state.pop(KEEP_OPEN)
    with st.expander("Share", icon=":material/share:", expanded=keep_open):
        st.toggle(
            "Public: everyone can read it, including visitors who are not signed in",
            value=is_public,
            key=_key(kind, record_id, "public"),
            on_change=_set_public,
            args=target,
        )
        left, right = st.columns([2, 1], vertical_alignment="bottom")
        left.selectbox(
            "New link expires after", list(sharing.EXPIRY_DAYS), key=_key(kind, record_id, "expiry")
        )
        right.button("Create share link", key=_key(kind, record_id, "create"), on_click=_create, args=target)
        new_link = st.session_state.get(NEW_LINK)
        if new_link and new_link[0] == target:
            st.session_state.pop(NEW_LINK)
            st.warning(f"Copy the link now: it is shown only once. Anyone holding it can read this {noun}.")
            st.code(new_link[1], language=None)
        try:
            links = records.share_links(viewer=current_viewer(), kind=kind, record_id=record_id)
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
                    key=_key(kind, record_id, f"revoke.{link.id}"),
                    on_click=_revoke,
                    args=(*target, link.id),
                )
