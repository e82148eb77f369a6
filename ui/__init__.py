"""Everything Streamlit: cached resources, the screens' renderers and components. Pages in
`pages/` are thin and call into this package and `core.service`.
"""
