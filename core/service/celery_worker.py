"""Celery on Redis for batch jobs; the job's state itself lives in the database.

Start workers on any number of machines against the same database and Redis::

    celery -A core.service.celery_worker worker -Q batch --concurrency 1

Tasks go to their own queue, ``batch``, so batch work never sits in front of anything
else. A task is acknowledged only after it returns (``acks_late``) and handed back if its
worker process dies, and each worker node, when it starts, releases the rows its earlier
life had claimed and re-sends their jobs (`core.jobs.tasks.recover`). Redelivered or
duplicate messages are harmless: `run_job` skips done rows and finished jobs.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from celery import Celery, Task
from celery.signals import worker_init, worker_ready

from core.domain.settings import get_settings
from core.jobs import tasks
from core.jobs.retry import TRANSIENT_ERRORS
from core.service.analysis_service import AnalysisService
from core.store.model_admin import LoadFailureRecorder
from core.store.model_registry import LiveRegistry
from core.store.transaction import session_factory

log = logging.getLogger(__name__)

QUEUE = "batch"
TASK_NAME = "headlight.run_job"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def make_app(broker_url: str) -> Celery:
    app = Celery("headlight", broker=broker_url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_routes={TASK_NAME: {"queue": QUEUE}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per process: a long job never holds others hostage.
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # Unacknowledged messages come back after an hour; an early comeback is harmless.
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
    )
    return app


app = make_app(get_settings().redis_url or DEFAULT_BROKER)


@lru_cache(maxsize=1)
def _service() -> AnalysisService:
    """One model pool per worker process (no result cache or rate limit for batch work)."""
    settings = get_settings()
    # The live registry, so models added on the Models screen run in workers too.
    registry = LiveRegistry(
        lambda: session_factory(), settings.registry_path, refresh_seconds=settings.registry_refresh_seconds
    )
    service = AnalysisService(settings, registry)
    # A worker's failed loads reach the Models screen through the audit log.
    service.pool.on_failure = LoadFailureRecorder(lambda: session_factory())
    return service


def worker_name(hostname: str | None) -> str:
    """``<node name>:<pid>``: a node's processes share the prefix that `recover` releases."""
    return f"{hostname or 'celery'}:{os.getpid()}"


@app.task(
    name=TASK_NAME,
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=10,
)
def run_job_task(self: Task, job_id: int) -> str:
    """Celery's face of `core.jobs.tasks.run_job`."""
    settings = get_settings()
    status = tasks.run_job(
        job_id,
        session_factory=session_factory(),
        service=_service(),
        worker_name=worker_name(self.request.hostname),
        config=tasks.RunConfig.from_settings(settings),
    )
    return status.value


class CeleryDispatcher:
    """Sends jobs to the ``batch`` queue (of this module's app, or another one's broker)."""

    backend = "celery"

    def __init__(self, celery: Celery | None = None) -> None:
        self.app = celery or app

    def submit(self, job_id: int, copies: int = 1) -> None:
        for _ in range(copies):
            self.app.send_task(TASK_NAME, args=[job_id], queue=QUEUE)


@worker_init.connect
def _configure_worker(**_: Any) -> None:
    threads = get_settings().batch_torch_threads
    if threads:
        import torch

        torch.set_num_threads(threads)


@worker_ready.connect
def _recover_on_start(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None)
    settings = get_settings()
    sent = tasks.recover(
        session_factory(),
        worker_prefix=f"{hostname or 'celery'}:",
        lease_s=settings.batch_lease_seconds,
        enqueue=CeleryDispatcher().submit,
    )
    if sent:
        log.info("re-sent interrupted jobs", extra={"jobs": sent})
