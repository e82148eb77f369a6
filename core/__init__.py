"""Headlight's core: everything that is not UI and not SQL, importable without a running app.

Floors, top to bottom (each may import only the floors below it; `.importlinter` says so):

- `core.service`   one entry per user action, each in its own transaction, returning plain views
- `core.jobs`      background work: the job contract, the runner and the task code
- `core.store`     owned records (analyses, comparisons, atlases, datasets, presets) and their one
                   lifecycle (`core.store.owned`), exports
- `core.access`    identities and rules: auth, accounts, permissions, audit, secrets
- `core.models`    registry, loading, the pool and the one model adapter
- `core.attention` pure math on attention arrays
- `core.ops`       metrics, logs, telemetry and usage statistics
- `core.domain`    request and result types, errors, settings, identity
"""
