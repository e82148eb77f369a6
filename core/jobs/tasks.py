"""The batch task itself, free of any job framework: Celery's task and the embedded runner
both call `run_job`, and so do the tests.

A job runs over its dataset's rows. Any number of workers may run one job at once: each
claims a few rows at a time (`db.jobs.claim_rows`), scores them, and records each result in
its own transaction together with the job's counts and heartbeat, then reads the cancel
flag. A worker that dies leaves at most its claimed rows unfinished; they are claimed again
once their lease runs out, or at once when the same worker node restarts (`recover`).
The worker that records the last row builds the atlas and completes the job; the
conditional status update lets only one of them do it.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
from sqlalchemy import true
from sqlalchemy.orm import Session, sessionmaker

from core.attention import atlas
from core.domain.errors import HeadlightError
from core.domain.settings import Settings
from core.jobs import atlas_rows, webhook
from core.jobs.contract import FINISHED, EventKind, JobStatus, RowStatus, sources_of
from core.jobs.retry import RetryPolicy, call_with_retries, is_transient
from core.models.boundary import LanguageModel
from core.models.registry import ModelSpec
from db import atlases as atlas_db
from db import datasets as dataset_db
from db import jobs as jobs_db
from db.models import Job, utcnow

log = logging.getLogger(__name__)

KIND_ATLAS = "atlas"
# Per kind of repetitive event, the timeline keeps this many entries per job.
MAX_REPEATED_EVENTS = 20


class ModelSource(Protocol):
    """What the task needs from `core.service.analysis_service.AnalysisService`."""

    def load(self, model_id: str) -> tuple[LanguageModel, float]: ...

    def require_enabled(self, model_id: str) -> ModelSpec:
        """The model's spec; `ModelDisabledError` once an admin has turned it off."""
        ...


Scorer = Callable[[LanguageModel, list[int]], np.ndarray]
SessionFactory = sessionmaker[Session]


@dataclass(frozen=True)
class RunConfig:
    """How a worker runs jobs; `from_settings` reads the deployment's settings."""

    claim_rows: int = 4
    lease_s: float = 300.0
    pause_s: float = 0.005
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    webhook_retry: RetryPolicy = webhook.POLICY
    webhook_secret: str | None = None
    webhook_allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RunConfig:
        return cls(
            claim_rows=settings.batch_claim_rows,
            lease_s=float(settings.batch_lease_seconds),
            pause_s=settings.batch_row_pause_ms / 1000,
            webhook_secret=settings.webhook_secret,
            webhook_allow_private=settings.webhook_allow_private_hosts,
        )


def atlas_params(
    *, dataset_id: int, model_id: str, revision: str, max_tokens: int, webhook_url: str | None = None
) -> dict[str, Any]:
    """The ``jobs.params`` of an atlas job."""
    return {
        "dataset_id": dataset_id,
        "model_id": model_id,
        "revision": revision,
        "max_tokens": max_tokens,
        "webhook_url": webhook_url,
    }


@dataclass(frozen=True)
class _RowOutcome:
    status: RowStatus
    attempts: int
    scores: bytes | None = None
    token_count: int | None = None
    truncated: bool = False
    error: str | None = None


class _Lost(Exception):
    """The job was finished by another worker first; the transaction is rolled back."""


@dataclass
class _Run:
    """One worker's run of one job."""

    job_id: int
    session_factory: SessionFactory
    worker: str
    config: RunConfig
    rng: random.Random
    sleep: Callable[[float], None]
    scorer: Scorer
    poster: webhook.Poster | None
    params: dict[str, Any] = field(default_factory=dict)
    dataset_title: str = ""
    pending_events: list[tuple[EventKind, str, dict[str, Any]]] = field(default_factory=list)

    # -- transactions, each retried on transient database errors ---------------------------

    def _transaction(self, work: Callable[[Session], Any]) -> Any:
        def attempt() -> Any:
            with self.session_factory.begin() as session:
                jobs_db.lock_job(session=session, job_id=self.job_id)
                return work(session)

        def on_retry(failures: int, delay: float, exc: BaseException) -> None:
            # Written with the next row, once the database answers again; logged at once.
            message = f"database: try {failures + 1} in {delay:.2f} s after {type(exc).__name__}"
            log.warning("job %d on %s: %s", self.job_id, self.worker, message)
            self.pending_events.append((EventKind.RETRY, message, {}))

        return call_with_retries(
            attempt, policy=self.config.retry, rng=self.rng, sleep=self.sleep, on_retry=on_retry
        )

    def _event(self, session: Session, kind: EventKind, message: str, **detail: Any) -> None:
        jobs_db.add_event(
            session=session, job_id=self.job_id, kind=kind, message=message, worker=self.worker, detail=detail
        )

    def _capped_event(self, session: Session, kind: EventKind, message: str, **detail: Any) -> None:
        """Repetitive events (row failures, retries) stop at `MAX_REPEATED_EVENTS` per job."""
        seen = jobs_db.count_events(session=session, job_id=self.job_id, kind=kind)
        if seen < MAX_REPEATED_EVENTS:
            self._event(session, kind, message, **detail)
        elif seen == MAX_REPEATED_EVENTS:
            self._event(session, kind, f"more '{kind.value}' events are not listed", **detail)

    # -- the steps ------------------------------------------------------------------------

    def start(self) -> JobStatus | None:
        """Take the job (queued -> running) or join it; None to go on, else its status."""

        def work(session: Session) -> JobStatus | None:
            job = jobs_db.get_job(session=session, job_id=self.job_id, readable=true())
            if job is None:
                raise LookupError(f"job {self.job_id} does not exist")
            if job.status in FINISHED:
                return job.status
            self.params = dict(job.params)
            dataset = dataset_db.get_dataset(
                session=session, dataset_id=self.params["dataset_id"], readable=true()
            )
            self.dataset_title = (
                dataset.name if dataset is not None else f"dataset #{self.params['dataset_id']}"
            )
            if job.status is JobStatus.QUEUED and job.cancel_requested:
                jobs_db.transition(
                    session=session,
                    job_id=self.job_id,
                    new=JobStatus.CANCELLED,
                    sources={JobStatus.QUEUED},
                    finished_at=utcnow(),
                )
                self._event(session, EventKind.CANCELLED, "cancelled before it started")
                return JobStatus.CANCELLED
            now = utcnow()
            if job.status is JobStatus.QUEUED:
                moved = jobs_db.transition(
                    session=session,
                    job_id=self.job_id,
                    new=JobStatus.RUNNING,
                    sources={JobStatus.QUEUED},
                    started_at=job.started_at or now,
                    worker=self.worker,
                    heartbeat_at=now,
                )
                if moved:
                    self._event(session, EventKind.STARTED, f"started on worker {self.worker}")
                    return None
                job = jobs_db.get_job(session=session, job_id=self.job_id, readable=true())
                assert job is not None
            if job.status is JobStatus.RUNNING:
                self._event(session, EventKind.STARTED, f"worker {self.worker} joined")
                return None
            return job.status

        return self._transaction(work)

    def load(self, service: ModelSource) -> LanguageModel:
        # Launching checks that the model is on, but a job may wait in the queue (or resume)
        # after an admin turned it off: it must not run on it then.
        service.require_enabled(self.params["model_id"])
        loaded, _ = call_with_retries(
            lambda: service.load(self.params["model_id"]),
            policy=self.config.retry,
            rng=self.rng,
            sleep=self.sleep,
        )
        if loaded.spec.revision != self.params["revision"]:
            raise ValueError(
                f"{loaded.spec.label} is now revision {loaded.spec.revision}, but the job was "
                f"launched on {self.params['revision']}; launch a new job."
            )
        return loaded

    def claim(self) -> list[tuple[int, str]] | JobStatus:
        """The next rows to do, or the status that ends this run (cancelled, finished...)."""

        def work(session: Session) -> list[tuple[int, str]] | JobStatus:
            job = jobs_db.get_job(session=session, job_id=self.job_id, readable=true())
            assert job is not None
            if job.status is not JobStatus.RUNNING:
                return job.status
            if job.cancel_requested:
                return JobStatus.CANCELLED
            return jobs_db.claim_rows(
                session=session,
                job=job,
                dataset_id=self.params["dataset_id"],
                worker=self.worker,
                limit=self.config.claim_rows,
                stale_before=utcnow() - timedelta(seconds=self.config.lease_s),
            )

        return self._transaction(work)

    def score(self, loaded: LanguageModel, row_id: int, text: str) -> _RowOutcome:
        """One row with retries on transient errors; any other error fails the row only."""
        attempts = 0

        def compute() -> tuple[list[int], bool, np.ndarray]:
            nonlocal attempts
            attempts += 1
            ids, truncated = atlas_rows.row_token_ids(loaded, text, self.params["max_tokens"])
            return ids, truncated, self.scorer(loaded, ids)

        def on_retry(failures: int, delay: float, exc: BaseException) -> None:
            self.pending_events.append(
                (EventKind.RETRY, f"row {row_id}: try {failures + 1} in {delay:.2f} s after {exc!r}", {})
            )

        try:
            ids, truncated, scores = call_with_retries(
                compute, policy=self.config.retry, rng=self.rng, sleep=self.sleep, on_retry=on_retry
            )
        except Exception as exc:
            log.warning("row failed", extra={"job": self.job_id, "row": row_id, "error": repr(exc)})
            return _RowOutcome(RowStatus.FAILED, attempts, error=f"{type(exc).__name__}: {exc}")
        return _RowOutcome(RowStatus.DONE, attempts, atlas.scores_to_bytes(scores), len(ids), truncated)

    def record(self, row_id: int, outcome: _RowOutcome) -> Job:
        """Store a row's result with the job's counts; returns the job as it is now."""

        def work(session: Session) -> Job:
            before = jobs_db.get_job(session=session, job_id=self.job_id, readable=true())
            assert before is not None
            finished_before = before.rows_done + before.rows_failed
            jobs_db.record_row(
                session=session,
                job_id=self.job_id,
                row_id=row_id,
                worker=self.worker,
                status=outcome.status,
                attempts=outcome.attempts,
                scores=outcome.scores,
                token_count=outcome.token_count,
                truncated=outcome.truncated,
                error=outcome.error,
            )
            for kind, message, detail in self.pending_events:
                self._capped_event(session, kind, message, **detail)
            if outcome.status is RowStatus.FAILED:
                self._capped_event(
                    session, EventKind.ROW_FAILED, f"row {row_id}: {outcome.error}", row_id=row_id
                )
            job = jobs_db.refresh_counts(session=session, job_id=self.job_id, worker=self.worker)
            finished = job.rows_done + job.rows_failed
            total = max(job.rows_total, 1)
            if math.floor(10 * finished / total) > math.floor(10 * finished_before / total):
                self._event(
                    session,
                    EventKind.PROGRESS,
                    f"{finished / total:.0%}: {finished:,} of {job.rows_total:,} rows",
                    done=job.rows_done,
                    failed=job.rows_failed,
                )
            return job

        job = self._transaction(work)
        self.pending_events.clear()
        return job

    def stop(self, status: JobStatus) -> JobStatus:
        """Leave the job: hand back unfinished claims; a requested cancel takes effect."""

        def work(session: Session) -> JobStatus:
            jobs_db.release_claims(session=session, job_id=self.job_id, worker=self.worker)
            if status is JobStatus.CANCELLED:
                job = jobs_db.refresh_counts(session=session, job_id=self.job_id)
                moved = jobs_db.transition(
                    session=session,
                    job_id=self.job_id,
                    new=JobStatus.CANCELLED,
                    sources={JobStatus.RUNNING},
                    finished_at=utcnow(),
                )
                if moved:
                    done = job.rows_done + job.rows_failed
                    self._event(
                        session, EventKind.CANCELLED, f"cancelled after {done:,} of {job.rows_total:,} rows"
                    )
            job = jobs_db.get_job(session=session, job_id=self.job_id, readable=true())
            assert job is not None
            return job.status

        return self._transaction(work)

    def finish(self, n_layers: int, n_heads: int) -> JobStatus:
        """Complete the job when every row is finished (build and save its atlas)."""

        def work(session: Session) -> JobStatus:
            job = jobs_db.refresh_counts(session=session, job_id=self.job_id)
            if job.status is not JobStatus.RUNNING or job.rows_done + job.rows_failed < job.rows_total:
                return job.status  # other workers still hold rows; the last one finishes
            now = utcnow()
            if job.rows_done == 0:
                errors = jobs_db.failed_rows(session=session, job_id=self.job_id, limit=1)
                first = errors[0][0].error if errors else "no rows"
                message = f"every row failed; the first: {first}"
                if not jobs_db.transition(
                    session=session,
                    job_id=self.job_id,
                    new=JobStatus.FAILED,
                    sources={JobStatus.RUNNING},
                    finished_at=now,
                    error=message,
                ):
                    raise _Lost
                self._event(session, EventKind.FAILED, message)
                return JobStatus.FAILED
            result: dict[str, Any] = {"atlas_id": None}
            if job.owner_id is not None:
                saved = atlas_db.create_atlas(
                    session=session,
                    owner_id=job.owner_id,
                    fields=self._atlas_fields(session, job, n_layers, n_heads),
                )
                result["atlas_id"] = saved.id
            if not jobs_db.transition(
                session=session,
                job_id=self.job_id,
                new=JobStatus.COMPLETED,
                sources={JobStatus.RUNNING},
                finished_at=now,
                result=result,
                progress=1.0,
            ):
                raise _Lost
            failed = f", {job.rows_failed:,} failed" if job.rows_failed else ""
            self._event(session, EventKind.COMPLETED, f"completed: {job.rows_done:,} rows{failed}", **result)
            return JobStatus.COMPLETED

        try:
            return self._transaction(work)
        except _Lost:
            return self._transaction(
                lambda s: jobs_db.get_job(session=s, job_id=self.job_id, readable=true()).status
            )

    def _atlas_fields(self, session: Session, job: Job, n_layers: int, n_heads: int) -> dict[str, Any]:
        accumulator = atlas.AtlasAccumulator(n_layers, n_heads)
        for batch in jobs_db.iter_scores(session=session, job_id=self.job_id):
            for row_id, blob in batch:
                accumulator.add(row_id, atlas.scores_from_bytes(blob, n_layers, n_heads))
        return {
            "job_id": self.job_id,
            "dataset_id": self.params["dataset_id"],
            "model_id": self.params["model_id"],
            "model_revision": self.params["revision"],
            "title": f"{self.dataset_title} × {self.params['model_id']}"[:200],
            "n_layers": n_layers,
            "n_heads": n_heads,
            "rows_used": job.rows_done,
            "rows_failed": job.rows_failed,
            "result": accumulator.result().to_json(),
        }

    def fail(self, message: str) -> JobStatus:
        def work(session: Session) -> JobStatus:
            jobs_db.release_claims(session=session, job_id=self.job_id, worker=self.worker)
            if jobs_db.transition(
                session=session,
                job_id=self.job_id,
                new=JobStatus.FAILED,
                sources=sources_of(JobStatus.FAILED),
                finished_at=utcnow(),
                error=message,
            ):
                self._event(session, EventKind.FAILED, message)
            job = jobs_db.get_job(session=session, job_id=self.job_id, readable=true())
            assert job is not None
            return job.status

        return self._transaction(work)

    def notify(self, status: JobStatus) -> None:
        """Call the job's webhook once it has completed or failed (by this worker)."""
        url = self.params.get("webhook_url")
        if not url or status not in (JobStatus.COMPLETED, JobStatus.FAILED):
            return

        def payload(session: Session) -> dict[str, Any]:
            job = jobs_db.get_job(session=session, job_id=self.job_id, readable=true())
            assert job is not None
            return {
                "event": f"job.{status.value}",
                "job_id": job.id,
                "kind": job.kind,
                "status": job.status.value,
                "rows_total": job.rows_total,
                "rows_done": job.rows_done,
                "rows_failed": job.rows_failed,
                "atlas_id": (job.result or {}).get("atlas_id"),
                "error": job.error,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            }

        if not self.config.webhook_secret:
            message = "not sent: this worker has no HEADLIGHT_WEBHOOK_SECRET"
        else:
            kwargs = {"post": self.poster} if self.poster is not None else {}
            delivery = webhook.deliver(
                url,
                self._transaction(payload),
                secret=self.config.webhook_secret,
                rng=self.rng,
                policy=self.config.webhook_retry,
                sleep=self.sleep,
                allow_private=self.config.webhook_allow_private,
                **kwargs,
            )
            message = ("delivered: " if delivery.delivered else "failed: ") + delivery.detail
        self._transaction(lambda s: self._event(s, EventKind.WEBHOOK, message))


def run_job(
    job_id: int,
    *,
    session_factory: SessionFactory,
    service: ModelSource,
    worker_name: str,
    config: RunConfig | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
    scorer: Scorer = atlas_rows.row_head_scores,
    poster: webhook.Poster | None = None,
) -> JobStatus:
    """Work on job ``job_id`` until it has no rows left for this worker; its status then.

    Safe to call any number of times, from any number of workers, for the same job: a
    finished job is left alone, done rows are skipped, and results are upserted. An error
    in one row fails that row only; transient errors are retried (``config.retry``) and,
    once retries run out, raised with the job left running, to be resumed. Any other error
    fails the job (resumable). ``rng`` and ``sleep`` make the backoff reproducible in tests.
    """
    run = _Run(
        job_id=job_id,
        session_factory=session_factory,
        worker=worker_name,
        config=config or RunConfig(),
        rng=rng or random.Random(),  # noqa: S311 - jitter, not secrecy
        sleep=sleep,
        scorer=scorer,
        poster=poster,
    )
    status = run.start()
    if status is not None:
        return status
    try:
        loaded = run.load(service)
        while True:
            claimed = run.claim()
            if isinstance(claimed, JobStatus):
                return run.stop(claimed)
            if not claimed:
                break
            for position, (row_id, text) in enumerate(claimed):
                job = run.record(row_id, run.score(loaded, row_id, text))
                if job.status is not JobStatus.RUNNING or job.cancel_requested:
                    stop = JobStatus.CANCELLED if job.cancel_requested else job.status
                    log.info("job stopping", extra={"job": job_id, "after_rows": position + 1})
                    return run.stop(stop)
                # The model lock is free here: an interactive request waiting for it runs now.
                sleep(run.config.pause_s)
        status = run.finish(loaded.info.n_layers, loaded.info.n_heads)
    except Exception as exc:
        if is_transient(exc):
            raise  # the job stays running; a retry or `recover` picks it up again
        log.exception("job failed", extra={"job": job_id})
        # A refusal that explains itself (e.g. the model was turned off) is shown as it is.
        status = run.fail(str(exc) if isinstance(exc, HeadlightError) else f"{type(exc).__name__}: {exc}")
    run.notify(status)
    return status


def recover(
    session_factory: SessionFactory, *, worker_prefix: str, lease_s: float, enqueue: Callable[[int], None]
) -> list[int]:
    """Bring back work a dead worker left behind; the ids of the jobs handed to ``enqueue``.

    Claims by workers whose name starts with ``worker_prefix`` (this node's earlier life)
    are released at once, and their running jobs sent again; running jobs with no
    heartbeat for ``lease_s`` go back to the queue with an "interrupted" event. Queued jobs
    older than the lease are enqueued again in case their message was lost (a duplicate
    message only finds nothing to do).
    """
    now = utcnow()
    before = now - timedelta(seconds=lease_s)
    with session_factory.begin() as session:
        touched = jobs_db.release_claims_by_prefix(session=session, prefix=worker_prefix)
        # A worker killed between two chunks holds no claims but was the last to report.
        touched |= {job.id for job in jobs_db.running_jobs_of(session=session, prefix=worker_prefix)}
        for job_id in sorted(touched):
            jobs_db.add_event(
                session=session,
                job_id=job_id,
                kind=EventKind.INTERRUPTED,
                message=f"a worker of {worker_prefix.rstrip(':')} stopped mid-job; the job is sent again",
            )
        for job in jobs_db.stale_jobs(session=session, before=before):
            if jobs_db.transition(
                session=session, job_id=job.id, new=JobStatus.QUEUED, sources={JobStatus.RUNNING}
            ):
                jobs_db.add_event(
                    session=session,
                    job_id=job.id,
                    kind=EventKind.INTERRUPTED,
                    message=f"no news from worker {job.worker} for {lease_s:.0f} s; queued again",
                )
                touched.add(job.id)
        active = {job.id for job in jobs_db.active_jobs(session=session, job_ids=touched)}
        queued = {job.id for job in jobs_db.queued_jobs(session=session, before=before)}
    targets = sorted(active | queued)
    for job_id in targets:
        enqueue(job_id)
    return targets
