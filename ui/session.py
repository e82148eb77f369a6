"""Who is using this browser session: the viewer for permissions, the actor for limits and
logs, and activity.

The login gate (`ui.auth`, run by app.py on every run) stores the signed-in user's
`Viewer` and `Actor` here; without them the session is an anonymous visitor (guest mode).
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.access.auth import anonymous_actor
from core.domain.identity import ANONYMOUS, Actor, Viewer
from core.ops.telemetry import TELEMETRY

USER_STATE_KEY = "auth.actor"
VIEWER_STATE_KEY = "auth.viewer"


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def client_id() -> str:
    """The visitor's IP address, or this browser session when there is none (localhost, tests)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else session_id()


def current_actor() -> Actor:
    actor = st.session_state.get(USER_STATE_KEY)
    return actor if isinstance(actor, Actor) else anonymous_actor(client_id())


def current_viewer() -> Viewer:
    viewer = st.session_state.get(VIEWER_STATE_KEY)
    return viewer if isinstance(viewer, Viewer) else ANONYMOUS


def mark_active() -> None:
    """Count this session as active for the `active_users` gauge."""
    TELEMETRY.seen(session_id())
