"""Account: who you are signed in as, and changing your password."""

from __future__ import annotations

import streamlit as st

from core.access.auth import PASSWORD_RULES
from core.domain.errors import HeadlightError
from ui.auth import current_gate, current_identity


def main() -> None:
    st.title("Account")
    identity = current_identity()
    gate = current_gate()
    if identity is None or not identity.signed_in or identity.username is None or gate is None:
        st.info("Sign in to manage your account.")
        return
    st.caption(f"Signed in as `{identity.username}` · role {identity.viewer.role.value}")
    st.caption(f"Passwords: {PASSWORD_RULES}")
    try:
        if gate.password_form(identity.username):
            st.success("Password changed. Use the new one next time you sign in.")
    except HeadlightError as exc:
        st.error(str(exc))


main()
