"""Batch jobs: launching a head-atlas job over a dataset, cancelling, resuming, and what the
job panel shows of one (progress with an ETA, the timeline, failed rows).

Every function takes keyword-only ``session`` (and ``viewer``), asks `core.access.permissions`
first and never commits; `core.service.batch` runs each in one transaction. A job is handed
to a worker only after the transaction that queued it has committed: `launch_atlas_job` and
`resume_job` return the job, and the caller then calls its dispatcher. A job the viewer may
not see is reported as not found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import true
from sqlalchemy.orm import Session

from core.access import audit, permissions
from core.domain.errors import HeadlightError, NotFoundError, PermissionDeniedError
from core.domain.identity import Viewer
from core.domain.settings import Settings
from core.jobs import webhook
from core.jobs.contract import FINISHED, EventKind, JobStatus, RowStatus, check_transition, eta_seconds
from core.jobs.tasks import KIND_ATLAS, atlas_params
from core.models.registry import Registry, availability
from core.store import owned, saved_datasets
from db import datasets as dataset_db
from db import jobs as jobs_db
from db.models import Job, utcnow

# The pace behind the ETA: rows finished over this many recent seconds.
ETA_WINDOW_S = 120.0

# What the ETA and the stalled check read the time from: `utcnow`, or a fake one in tests.
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class JobProgress:
    done: int
    failed: int
    total: int
    eta_s: float | None

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def fraction(self) -> float:
        return min(1.0, self.finished / self.total) if self.total else 1.0


@dataclass(frozen=True)
class JobSummary:
    """One job as a list or a panel header shows it."""

    id: int
    kind: str
    status: JobStatus
    model_id: str | None
    max_tokens: int | None
    rows_done: int
    rows_failed: int
    rows_total: int
    created_at: datetime
    started_at: datetime | None
    worker: str | None
    error: str | None
    cancel_requested: bool
    atlas_id: int | None  # the atlas a completed head-atlas job made

    @property
    def finished_rows(self) -> int:
        return self.rows_done + self.rows_failed


@dataclass(frozen=True)
class JobEventView:
    at: datetime
    kind: str
    worker: str | None
    message: str


@dataclass(frozen=True)
class JobView:
    """Everything the job panel shows."""

    job: JobSummary
    dataset_name: str
    progress: JobProgress
    events: tuple[JobEventView, ...]
    failed_rows: tuple[tuple[int, str, str], ...]  # (position, text, error)
    can_control: bool
    stalled: bool  # running, but no worker has reported for a lease: resumable


def job_summary(job: Job) -> JobSummary:
    return owned.view_of(
        JobSummary,
        job,
        model_id=job.params.get("model_id"),
        max_tokens=job.params.get("max_tokens"),
        atlas_id=(job.result or {}).get("atlas_id"),
    )


def launch_atlas_job(
    *,
    session: Session,
    viewer: Viewer,
    dataset_id: int,
    model_id: str,
    registry: Registry,
    settings: Settings,
    max_tokens: int | None = None,
    webhook_url: str = "",
) -> Job:
    """Queue a head-atlas job over a dataset; dispatch it once this transaction commits."""
    owner_id = saved_datasets.require_create(viewer, "run batch jobs")
    jobs_db.take_write_lock(session=session)
    dataset = saved_datasets.open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    spec = registry.get(model_id)
    if not registry.is_enabled(model_id):
        raise HeadlightError(f"{spec.label} has been turned off by an admin; choose another model.")
    where = availability(spec)
    if not where.available:
        raise HeadlightError(f"{spec.label} cannot be used here: {where.reason}.")
    url = None
    if webhook_url.strip():
        if not settings.webhook_secret:
            raise HeadlightError("Webhooks are off: set HEADLIGHT_WEBHOOK_SECRET on the server to sign them.")
        url = webhook.check_url(webhook_url, allow_private=settings.webhook_allow_private_hosts)
    limit = min(max_tokens or settings.batch_max_tokens, spec.max_input_tokens)
    job = jobs_db.create_job(
        session=session,
        kind=KIND_ATLAS,
        owner_id=owner_id,
        params=atlas_params(
            dataset_id=dataset.id, model_id=spec.id, revision=spec.revision, max_tokens=limit, webhook_url=url
        ),
        rows_total=dataset.row_count,
    )
    jobs_db.add_event(
        session=session,
        job_id=job.id,
        kind=EventKind.QUEUED,
        message=f"queued: {dataset.row_count:,} rows of '{dataset.name}' on {spec.label} (≤ {limit} tokens)",
    )
    audit.record(session=session, actor_id=owner_id, action="job.launch", target_type="job", target_id=job.id)
    return job


def _job(session: Session, viewer: Viewer, job_id: int) -> Job:
    job = jobs_db.get_job(session=session, job_id=job_id, readable=permissions.job_filter(viewer))
    if job is None:
        raise NotFoundError(f"Job #{job_id} was not found.")
    return job


def _controlled_job(session: Session, viewer: Viewer, job_id: int) -> Job:
    jobs_db.lock_job(session=session, job_id=job_id)  # a worker may be writing the same job
    job = _job(session, viewer, job_id)
    if not permissions.can_control_job(viewer, job):
        raise PermissionDeniedError("Only the owner of a job (or an admin) can cancel or resume it.")
    return job


def cancel_job(*, session: Session, viewer: Viewer, job_id: int) -> JobStatus:
    """Cancel a queued job now; ask a running one to stop (its worker does after the current row)."""
    job = _controlled_job(session, viewer, job_id)
    if job.status in FINISHED:
        raise HeadlightError(f"Job #{job_id} has already finished ({job.status.value}).")
    if job.status is JobStatus.QUEUED and jobs_db.transition(
        session=session,
        job_id=job_id,
        new=JobStatus.CANCELLED,
        sources={JobStatus.QUEUED},
        finished_at=utcnow(),
        cancel_requested=True,
    ):
        jobs_db.add_event(
            session=session, job_id=job_id, kind=EventKind.CANCELLED, message="cancelled while queued"
        )
        return JobStatus.CANCELLED
    if not jobs_db.set_cancel_requested(session=session, job_id=job_id):
        raise HeadlightError(f"Job #{job_id} has already finished.")
    jobs_db.add_event(
        session=session,
        job_id=job_id,
        kind=EventKind.CANCEL_REQUESTED,
        message="cancel requested; stopping after the current row",
    )
    audit.record(
        session=session, actor_id=viewer.user_id, action="job.cancel", target_type="job", target_id=job_id
    )
    return JobStatus.RUNNING


def resume_job(
    *, session: Session, viewer: Viewer, job_id: int, lease_s: float, clock: Clock = utcnow
) -> Job:
    """Queue a failed, cancelled or stalled job again; done rows are kept, failed rows retried."""
    job = _controlled_job(session, viewer, job_id)
    if job.status is JobStatus.RUNNING and not _stalled(job, lease_s, clock()):
        raise HeadlightError(f"Job #{job_id} is running; it needs no resume.")
    check_transition(job.status, JobStatus.QUEUED)
    jobs_db.delete_rows(session=session, job_id=job_id, statuses=[RowStatus.FAILED, RowStatus.CLAIMED])
    previous = job.status
    jobs_db.transition(
        session=session,
        job_id=job_id,
        new=JobStatus.QUEUED,
        sources={previous},
        cancel_requested=False,
        error=None,
        finished_at=None,
    )
    job = jobs_db.refresh_counts(session=session, job_id=job_id)
    kind = EventKind.INTERRUPTED if previous is JobStatus.RUNNING else EventKind.RESUMED
    done = f"{job.rows_done:,} of {job.rows_total:,} rows already done"
    jobs_db.add_event(
        session=session, job_id=job_id, kind=kind, message=f"resumed after {previous.value}; {done}"
    )
    return job


def list_jobs(*, session: Session, viewer: Viewer) -> list[Job]:
    return jobs_db.list_jobs(session=session, readable=permissions.job_filter(viewer))


def progress(*, session: Session, job: Job, clock: Clock = utcnow) -> JobProgress:
    """Rows done / failed / total and the ETA at the recent pace (rows finished in the last
    `ETA_WINDOW_S` before ``clock()``, or since the job started if that is later)."""
    remaining = max(0, job.rows_total - job.rows_done - job.rows_failed)
    eta = None
    if job.status is JobStatus.RUNNING:
        now = clock()
        since = now - timedelta(seconds=ETA_WINDOW_S)
        window_start = max(since, job.started_at) if job.started_at else since
        window = (now - window_start).total_seconds()
        recent = jobs_db.rows_finished_since(session=session, job_id=job.id, since=window_start)
        eta = eta_seconds(remaining, recent, window)
    return JobProgress(job.rows_done, job.rows_failed, job.rows_total, eta)


def _stalled(job: Job, lease_s: float, now: datetime) -> bool:
    last = job.heartbeat_at or job.started_at
    return job.status is JobStatus.RUNNING and (last is None or last < now - timedelta(seconds=lease_s))


def job_view(
    *, session: Session, viewer: Viewer, job_id: int, lease_s: float, clock: Clock = utcnow
) -> JobView:
    job = _job(session, viewer, job_id)
    now = clock()  # one reading for the ETA and the stalled check
    dataset = dataset_db.get_dataset(session=session, dataset_id=job.params["dataset_id"], readable=true())
    failed = [
        (row.position, row.text, job_row.error or "")
        for job_row, row in jobs_db.failed_rows(session=session, job_id=job_id)
    ]
    events = tuple(
        owned.view_of(JobEventView, event) for event in jobs_db.events(session=session, job_id=job_id)
    )
    return JobView(
        job=job_summary(job),
        dataset_name=dataset.name if dataset is not None else "(deleted)",
        progress=progress(session=session, job=job, clock=lambda: now),
        events=events,
        failed_rows=tuple(failed),
        can_control=permissions.can_control_job(viewer, job),
        stalled=_stalled(job, lease_s, now),
    )
