"""Register: visitors create their own account when registration is switched on."""

from __future__ import annotations

import streamlit as st

from core.access.auth import PASSWORD_RULES
from core.domain.identity import Role
from core.domain.settings import get_settings
from ui.auth import current_gate
from ui.session import current_viewer


def main() -> None:
    st.title("Register")
    settings = get_settings()
    gate = current_gate()
    if not settings.registration_open or gate is None:
        st.error("Registration is switched off here; ask an admin for an account.")
        return
    if current_viewer().user_id is not None:
        st.info("You are signed in already.")
        return
    st.caption(f"Passwords: {PASSWORD_RULES}")
    username = gate.register_form(Role(settings.registration_role))
    if username:
        st.success(f"Account `{username}` created. Sign in with the form in the sidebar.")


main()
