"""Sign in: the landing page when guest mode is off (the form itself is in the sidebar)."""

from __future__ import annotations

import streamlit as st

from core.domain.settings import get_settings


def main() -> None:
    st.title("Headlight")
    st.write(
        "Look inside transformer language models: generate text and see every attention head, "
        "compare models, and keep and share your analyses."
    )
    st.info("Sign in with the form in the sidebar.", icon=":material/login:")
    if get_settings().registration_open:
        st.page_link("pages/register.py", label="No account yet? Register", icon=":material/person_add:")
    else:
        st.caption("Accounts are created by an admin.")


main()
