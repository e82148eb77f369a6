"""Headlight's core: everything that is not UI and not SQL, importable without a running app.

Floors, top to bottom (each imports only the floors below it; `.importlinter` says so, and
docs/architecture.md draws the whole house with `ui` above and `db` between `core.access`
and `core.models`):

- `core.service`   one entry per user action; opens the transaction; returns plain views
- `core.store`     owned records and their one lifecycle (`core.store.owned`), the transaction
                   boundary, exports, sharing, the live registry's rows, the request log
- `core.jobs`      background work: the job contract, framework-free task code, the runner
- `core.access`    identities and rules: auth, accounts, permissions, audit, secrets
- `core.models`    registry, pool, the `LanguageModel` boundary and the one Hugging Face adapter
- `core.attention` pure math on attention arrays (sibling of `core.models`)
- `core.ops`       metrics, logs, telemetry and input drift
- `core.domain`    request and result types, errors, settings, identity, record kinds

Only `core.store`, `core.jobs` and `core.access` import `db`; nothing here imports Streamlit.
"""
