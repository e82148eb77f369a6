"""Headlight entry point: page config, the production secrets check, the login gate, and
navigation over the screens this visitor may use (pages/)."""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.access import navigation, secrets
from core.domain.settings import get_settings
from ui.auth import establish

if PagesManager.uses_pages_directory:
    # The first run in a process: Streamlit saw pages/ and runs this file as an old-style
    # page, under another script hash, so the sign-in form below would get other widget
    # ids on the next run and drop what was typed. Leave that mode (st.navigation would
    # leave it too, but only after the form is drawn) and start the run again.
    PagesManager.uses_pages_directory = False
    st.rerun()

st.set_page_config(page_title="Headlight", page_icon="🔦", layout="wide")
settings = get_settings()
problems = secrets.production_problems(settings)
if problems:
    st.error(
        "Headlight will not start in production until these are fixed:\n\n"
        + "\n".join(f"- {problem}" for problem in problems)
    )
    st.stop()

# Consulted on every run: with st.navigation a refresh or page switch is a new run.
identity = establish(settings)
screens = navigation.screens_for(
    identity.viewer, guests_allowed=settings.guests_allowed, registration_open=settings.registration_open
)
pages = [
    st.Page(
        screen.path,
        title=screen.title,
        icon=screen.icon,
        url_path=screen.url_path,
        default=index == 0,
        visibility="hidden" if screen.hidden else "visible",
    )
    for index, screen in enumerate(screens)
]
st.navigation(pages).run()
