"""Pure math on attention arrays: numpy, no model, no torch, no database, no Streamlit; every
function is tested with known answers.

Per-head statistics computed layer by layer (`stats`); the compact form's builder and
``HLCA`` binary format (`compact`); the one versioned encoding of an `Analysis` for the
database, the cache, exports and comparisons (`codec`); two tokenizations mapped onto shared
spans (`alignment`) and two analyses compared head by head (`comparison`); the head atlas's
scores and accumulator (`atlas`); and what the attention view sends to the browser
(`payload`).
"""
