"""Headlight persistence: SQLAlchemy models, engine and sessions, queries, migrations."""
