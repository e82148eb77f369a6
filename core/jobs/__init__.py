"""Background work, free of any job framework.

The job status contract (`contract`: `JobStatus`, transitions, row status, `EventKind`); the
task itself (`tasks.run_job`, `tasks.recover`), written against the `ModelSource` protocol that
`AnalysisService` satisfies; one dataset row through a model (`atlas_rows`); backoff with
jitter (`retry`); signed webhooks (`webhook`); and where launched jobs go (`runner`: the
`Dispatcher` protocol, `backend_for`, the `EmbeddedRunner` thread). The Celery app, which
needs a service, is `core.service.celery_worker`.
"""
