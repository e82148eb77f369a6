"""Where jobs go once launched: Celery workers, or the embedded runner of this process.

The embedded runner is the no-setup default (no ``REDIS_URL``): one background thread that
runs the same `run_job` as a Celery worker, taking jobs in the order they were queued. It
gives way to interactive requests twice over: its thread runs at a lower OS priority, and
`run_job` holds a model's lock for one row at a time with a short pause in between, so a
request waiting for the model gets it after at most one row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from core.domain.settings import Settings
from core.jobs import tasks
from core.jobs.contract import JobStatus
from core.jobs.tasks import ModelSource, RunConfig, SessionFactory
from db import jobs as jobs_db

log = logging.getLogger(__name__)

# Added to the runner thread's niceness (Linux: per thread), so the OS favours the threads
# serving interactive requests when the cores are busy.
RUNNER_NICENESS = 10


class Dispatcher(Protocol):
    """Sends a queued job to whatever runs jobs in this deployment."""

    backend: str

    def submit(self, job_id: int, copies: int = 1) -> None:
        """Ask for ``copies`` workers on the job (more than one only helps with Celery)."""


def backend_for(settings: Settings) -> str:
    """ "celery" or "embedded": the setting, or for "auto" celery exactly when Redis is set."""
    if settings.jobs_backend != "auto":
        return settings.jobs_backend
    return "celery" if settings.redis_url else "embedded"


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RUNNER_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        log.info("batch runner keeps normal priority")


class EmbeddedRunner:
    """Runs jobs on one daemon thread of this process. Start it once per process.

    ``sleep`` is what `tasks.run_job` waits with (the pause between rows, retry backoff);
    ``on_finished(job_id, status)`` is called on the runner's thread after each run of a
    job. Both let tests follow the runner without timing it.
    """

    backend = "embedded"

    def __init__(
        self,
        session_factory: SessionFactory,
        service: ModelSource,
        *,
        config: RunConfig | None = None,
        poll_s: float = 2.0,
        host: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_finished: Callable[[int, JobStatus], None] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.service = service
        self.config = config or RunConfig()
        self.poll_s = poll_s
        self.sleep = sleep
        self.on_finished = on_finished
        # Names share a per-host prefix, so a restarted process reclaims its predecessor's rows.
        self.prefix = f"embedded@{host or socket.gethostname()}:"
        self.worker_name = f"{self.prefix}{os.getpid()}"
        self.current_job: int | None = None
        self._queue: deque[int] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch-runner", daemon=True)

    def start(self) -> EmbeddedRunner:
        """Recover what an earlier process left, then start the thread."""
        tasks.recover(
            self.session_factory,
            worker_prefix=self.prefix,
            lease_s=self.config.lease_s,
            enqueue=self._queue.append,
        )
        self._thread.start()
        return self

    def submit(self, job_id: int, copies: int = 1) -> None:
        self._queue.append(job_id)
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the job in hand (tests; the thread is a daemon otherwise)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _next(self) -> int | None:
        if self._queue:
            return self._queue.popleft()
        # Jobs queued while no runner listened (another process, a restart) come from the db.
        with self.session_factory.begin() as session:
            queued = jobs_db.queued_jobs(session=session, limit=1)
            return queued[0].id if queued else None

    def _loop(self) -> None:
        _lower_priority()
        idle_polls = 0
        while not self._stop.is_set():
            try:
                job_id = self._next()
                if job_id is None:
                    idle_polls += 1
                    if idle_polls * self.poll_s >= self.config.lease_s:
                        # Jobs of processes that died without a restart are picked up here.
                        idle_polls = 0
                        tasks.recover(
                            self.session_factory,
                            worker_prefix=self.worker_name,
                            lease_s=self.config.lease_s,
                            enqueue=self._queue.append,
                        )
                    self._wake.wait(self.poll_s)
                    self._wake.clear()
                    continue
                self.current_job = job_id
                status = tasks.run_job(
                    job_id,
                    session_factory=self.session_factory,
                    service=self.service,
                    worker_name=self.worker_name,
                    config=self.config,
                    sleep=self.sleep,
                )
                if self.on_finished is not None:
                    self.on_finished(job_id, status)
            except Exception:  # a database outage: keep the thread, try again after a pause
                log.exception("batch runner error")
                self._stop.wait(self.poll_s)
            finally:
                self.current_job = None
