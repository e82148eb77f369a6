"""Headlight entry point: page config and navigation; the screens live in pages/."""

import streamlit as st

st.set_page_config(page_title="Headlight", page_icon="🔦", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", default=True),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
    ]
)
navigation.run()
