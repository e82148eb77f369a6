"""Pure math on attention arrays (numpy): per-head statistics, the compact form, token
alignment across tokenizers, the head atlas and the browser payload. No model, no
database, no Streamlit: every function is tested with known answers.
"""
