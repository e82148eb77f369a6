"""Background jobs: one status contract, framework-free task code, Celery and an embedded runner."""
