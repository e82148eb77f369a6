"""Who is using this browser session: the actor for limits and logs, and activity."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.service import Actor
from core.telemetry import TELEMETRY

# Signed-in users are stored here by the login gate; without it the app runs as one
# local analyst (the embedded single-user default).
USER_STATE_KEY = "auth.actor"
LOCAL_ACTOR = Actor(key="local", role="analyst")


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def current_actor() -> Actor:
    actor = st.session_state.get(USER_STATE_KEY)
    return actor if isinstance(actor, Actor) else LOCAL_ACTOR


def mark_active() -> None:
    """Count this session as active for the `active_users` gauge."""
    TELEMETRY.seen(session_id())
