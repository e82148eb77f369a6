"""The relational schema and its SQL.

One declarative schema (`models`), one engine and session factory per database URL, migrated
to head on first use (`session.get_sessionmaker`), Alembic migrations (`migrations/`), query
modules per group of tables (`queries`, `search`, `owned`, `comparisons`, `atlases`,
`datasets`, `jobs`, `sharing`, `users`, `audit`, `presets`, `request_log`, `model_registry`)
and the Trash and request-log purge (``python -m db.purge``). Query functions take a
keyword-only ``session`` and never commit; reads of user records take a required
``readable`` WHERE clause from `core.access.permissions`. Of Headlight's code it imports only
`core.domain`; only `core.store`, `core.jobs` and `core.access` import it.
"""
