"""Datasets, batch jobs and head atlases as the Batch screen uses them: one function per action.

Like `core.library`, every function takes keyword-only ``session`` and ``viewer``, asks
`core.permissions` first, and never commits (pages wrap each action in
`core.library.unit_of_work`). A job is handed to a worker only after the transaction that
queued it has committed: `launch_atlas_job` and `resume_job` return the job, and the page
then calls its dispatcher. Anything the viewer may not see is reported as not found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import true
from sqlalchemy.orm import Session

from core import atlas as atlas_math
from core import audit, datasets, permissions
from core.atlas import AtlasResult
from core.config import Settings
from core.datasets import ParseReport, TokenizationStats
from core.errors import HeadlightError
from core.jobs import webhook
from core.jobs.contract import FINISHED, EventKind, JobStatus, RowStatus, check_transition, eta_seconds
from core.jobs.tasks import KIND_ATLAS, ModelSource, atlas_params
from core.library import NotFoundError, PermissionDeniedError
from core.permissions import Scope, Viewer
from core.registry import Registry, availability
from db import atlases as atlas_db
from db import datasets as dataset_db
from db import jobs as jobs_db
from db.models import Atlas, Dataset, DatasetRow, Job, JobEvent, utcnow

PREVIEW_ROWS = 20
# The pace behind the ETA: rows finished over this many recent seconds.
ETA_WINDOW_S = 120.0
MAX_PARALLEL = 8

# What the ETA and the stalled check read the time from: `utcnow`, or a fake one in tests.
Clock = Callable[[], datetime]


def _require_create(viewer: Viewer, what: str) -> int:
    if not permissions.can_create(viewer):
        raise PermissionDeniedError(f"Your role cannot {what}.")
    assert viewer.user_id is not None
    return viewer.user_id


# -- datasets --------------------------------------------------------------------------------


def create_dataset(
    *, session: Session, viewer: Viewer, name: str, filename: str, report: ParseReport
) -> Dataset:
    """Store a checked upload (rows and report) privately for the viewer."""
    owner_id = _require_create(viewer, "upload datasets")
    jobs_db.take_write_lock(session=session)
    dataset = dataset_db.create_dataset(
        session=session,
        owner_id=owner_id,
        name=datasets.clean_name(name, filename.rsplit(".", 1)[0]),
        format=report.format.value,
        texts=[(row.line, row.text) for row in report.rows],
        text_column=report.column,
        source_filename=filename[:255],
        report=report.summary(),
    )
    audit.record(
        session=session,
        actor_id=owner_id,
        action="dataset.create",
        target_type="dataset",
        target_id=dataset.id,
        detail={"rows": dataset.row_count},
    )
    return dataset


def probe_dataset(*, session: Session) -> Dataset:
    """The built-in induction probe, created on first use."""
    texts = datasets.probe_texts()
    return dataset_db.get_or_create_builtin(
        session=session,
        builtin_key=datasets.PROBE_KEY,
        name=datasets.PROBE_NAME,
        format="probe",
        texts=[(i + 1, text) for i, text in enumerate(texts)],
    )


def list_datasets(*, session: Session, viewer: Viewer) -> list[Dataset]:
    """The datasets the viewer may use, the built-in probe first."""
    probe_dataset(session=session)
    return dataset_db.list_datasets(session=session, readable=permissions.dataset_filter(viewer))


def deleted_datasets(*, session: Session, viewer: Viewer) -> list[Dataset]:
    return dataset_db.list_datasets(session=session, readable=permissions.trash_filter(viewer, Dataset))


def open_dataset(*, session: Session, viewer: Viewer, dataset_id: int) -> Dataset:
    dataset = dataset_db.get_dataset(
        session=session, dataset_id=dataset_id, readable=permissions.dataset_filter(viewer)
    )
    if dataset is None:
        raise NotFoundError(f"Dataset #{dataset_id} was not found. It may have been deleted.")
    return dataset


def preview_rows(
    *, session: Session, viewer: Viewer, dataset_id: int, limit: int = PREVIEW_ROWS
) -> list[DatasetRow]:
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    return dataset_db.rows(session=session, dataset_id=dataset_id, limit=limit)


def _writable_dataset(session: Session, viewer: Viewer, dataset_id: int, *, deleted: bool) -> Dataset:
    jobs_db.take_write_lock(session=session)
    where = permissions.trash_filter(viewer, Dataset) if deleted else permissions.dataset_filter(viewer)
    dataset = dataset_db.get_dataset(session=session, dataset_id=dataset_id, readable=where)
    if dataset is None:
        raise NotFoundError(f"Dataset #{dataset_id} was not found{' in the Trash' if deleted else ''}.")
    if not permissions.can_write(viewer, dataset):
        raise PermissionDeniedError("Only the owner of a dataset (or an admin) can delete or restore it.")
    return dataset


def delete_dataset(*, session: Session, viewer: Viewer, dataset_id: int) -> None:
    """Move a dataset to the Trash; its rows, jobs and atlases stay."""
    dataset = _writable_dataset(session, viewer, dataset_id, deleted=False)
    dataset_db.soft_delete(session=session, dataset=dataset)
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action="dataset.delete",
        target_type="dataset",
        target_id=dataset_id,
    )


def restore_dataset(*, session: Session, viewer: Viewer, dataset_id: int) -> None:
    dataset = _writable_dataset(session, viewer, dataset_id, deleted=True)
    dataset_db.restore(session=session, dataset=dataset)
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action="dataset.restore",
        target_type="dataset",
        target_id=dataset_id,
    )


def dataset_texts(*, session: Session, viewer: Viewer, dataset_id: int) -> list[str]:
    """Every row's text, in order (for tokenizing outside the transaction)."""
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    return [text for batch in dataset_db.iter_texts(session=session, dataset_id=dataset_id) for text in batch]


def count_tokens(texts: list[str], *, service: ModelSource, model_id: str) -> tuple[str, TokenizationStats]:
    """``(model revision, statistics)`` of one model's tokenizer over ``texts``; no database."""
    loaded, _ = service.load(model_id)
    stats = datasets.tokenization_stats(texts, loaded.tokenizer, max_tokens=loaded.spec.max_input_tokens)
    return loaded.spec.revision, stats


def save_tokenization(
    *,
    session: Session,
    viewer: Viewer,
    dataset_id: int,
    model_id: str,
    revision: str,
    stats: TokenizationStats,
) -> None:
    """Store (or replace) one model revision's statistics for a dataset."""
    _require_create(viewer, "compute tokenization statistics")
    jobs_db.take_write_lock(session=session)
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    dataset_db.save_tokenization(
        session=session,
        dataset_id=dataset_id,
        model_id=model_id,
        model_revision=revision,
        stats=stats.as_dict(),
    )


def tokenizations(
    *, session: Session, viewer: Viewer, dataset_id: int
) -> list[tuple[str, str, TokenizationStats]]:
    """``(model_id, revision, statistics)`` of every tokenization stored for the dataset."""
    open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
    return [
        (record.model_id, record.model_revision, datasets.stats_from_dict(record.stats))
        for record in dataset_db.tokenizations(session=session, dataset_id=dataset_id)
    ]


# -- jobs ------------------------------------------------------------------------------------


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
class JobView:
    """Everything the job panel shows."""

    job: Job
    dataset_name: str
    progress: JobProgress
    events: list[JobEvent]
    failed_rows: list[tuple[int, str, str]]  # (position, text, error)
    can_control: bool
    stalled: bool  # running, but no worker has reported for a lease: resumable


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
    owner_id = _require_create(viewer, "run batch jobs")
    jobs_db.take_write_lock(session=session)
    dataset = open_dataset(session=session, viewer=viewer, dataset_id=dataset_id)
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
    return JobView(
        job=job,
        dataset_name=dataset.name if dataset is not None else "(deleted)",
        progress=progress(session=session, job=job, clock=lambda: now),
        events=jobs_db.events(session=session, job_id=job_id),
        failed_rows=failed,
        can_control=permissions.can_control_job(viewer, job),
        stalled=_stalled(job, lease_s, now),
    )


# -- atlases ---------------------------------------------------------------------------------


def list_atlases(*, session: Session, viewer: Viewer, scope: Scope = Scope.ALL) -> list[tuple[Atlas, str]]:
    """Readable atlases in ``scope`` with their dataset names, newest first."""
    return atlas_db.list_atlases(session=session, readable=permissions.list_filter(viewer, scope, Atlas))


def open_atlas(*, session: Session, viewer: Viewer, atlas_id: int) -> Atlas:
    record = atlas_db.get_atlas(
        session=session, atlas_id=atlas_id, readable=permissions.read_filter(viewer, Atlas)
    )
    shared = (
        atlas_db.granted_atlas_ids(session=session, user_id=viewer.user_id, atlas_ids=[atlas_id])
        if viewer.user_id is not None
        else set()
    )
    if record is None or not permissions.can_read(viewer, record, shared_ids=shared):
        raise NotFoundError(f"Atlas #{atlas_id} was not found. It may have been deleted.")
    return record


def atlas_result(record: Atlas) -> AtlasResult:
    return AtlasResult.from_json(record.result)


@dataclass(frozen=True)
class TopRow:
    position: int
    text: str
    value: float
    row_id: int


def top_rows(
    *, session: Session, viewer: Viewer, atlas_id: int, stat: str, layer: int, head: int
) -> list[TopRow]:
    """The dataset rows where one head's ``stat`` is highest, highest first."""
    record = open_atlas(session=session, viewer=viewer, atlas_id=atlas_id)
    return top_rows_of(session=session, record=record, stat=stat, layer=layer, head=head)


def top_rows_of(*, session: Session, record: Atlas, stat: str, layer: int, head: int) -> list[TopRow]:
    """`top_rows` of an atlas the caller has already opened (through the viewer or a link)."""
    if stat not in atlas_math.ATLAS_STATS:
        raise HeadlightError(f"Unknown score '{stat}'; choose one of {', '.join(atlas_math.ATLAS_STATS)}.")
    if not (0 <= layer < record.n_layers and 0 <= head < record.n_heads):
        raise HeadlightError(f"Choose a layer below {record.n_layers} and a head below {record.n_heads}.")
    ids = record.result["top_rows"][stat][layer][head]
    values = record.result["top_values"][stat][layer][head]
    found = dataset_db.rows_by_id(session=session, row_ids=[i for i in ids if i >= 0])
    return [
        TopRow(found[i].position, found[i].text, float(v), i)
        for i, v in zip(ids, values, strict=True)
        if i in found and v is not None
    ]


def _writable_atlas(session: Session, viewer: Viewer, atlas_id: int, *, deleted: bool = False) -> Atlas:
    jobs_db.take_write_lock(session=session)
    where = permissions.trash_filter(viewer, Atlas) if deleted else permissions.read_filter(viewer, Atlas)
    record = atlas_db.get_atlas(session=session, atlas_id=atlas_id, readable=where)
    if record is None:
        raise NotFoundError(f"Atlas #{atlas_id} was not found{' in the Trash' if deleted else ''}.")
    if not permissions.can_write(viewer, record):
        raise PermissionDeniedError("Only the owner of an atlas (or an admin) can change it.")
    return record


def _audit_atlas(session: Session, viewer: Viewer, action: str, atlas_id: int, **detail: Any) -> None:
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action=action,
        target_type=audit.ATLAS,
        target_id=atlas_id,
        detail=detail,
    )


def set_atlas_public(*, session: Session, viewer: Viewer, atlas_id: int, public: bool) -> None:
    record = _writable_atlas(session, viewer, atlas_id)
    atlas_db.set_public(session=session, atlas=record, public=public)
    _audit_atlas(session, viewer, audit.ATLAS_PUBLISH if public else audit.ATLAS_UNPUBLISH, atlas_id)


def share_atlas(*, session: Session, viewer: Viewer, atlas_id: int, username: str) -> None:
    """Let one more user read the atlas."""
    record = _writable_atlas(session, viewer, atlas_id)
    user = atlas_db.user_by_name(session=session, username=username.strip())
    if user is None:
        raise NotFoundError(f"There is no active user '{username.strip()}'.")
    assert viewer.user_id is not None
    atlas_db.grant(session=session, atlas=record, grantee_id=user.id, granted_by=viewer.user_id)
    _audit_atlas(session, viewer, "atlas.share", atlas_id, grantee=user.username)


def unshare_atlas(*, session: Session, viewer: Viewer, atlas_id: int, user_id: int) -> None:
    record = _writable_atlas(session, viewer, atlas_id)
    if atlas_db.revoke(session=session, atlas=record, grantee_id=user_id):
        _audit_atlas(session, viewer, "atlas.unshare", atlas_id, grantee_id=user_id)


def atlas_grantees(*, session: Session, viewer: Viewer, atlas_id: int) -> list[tuple[int, str]]:
    """``(user id, username)`` of the users the atlas is shared with (owner and admins only)."""
    _writable_atlas(session, viewer, atlas_id)
    return [(user.id, user.username) for user in atlas_db.grantees(session=session, atlas_id=atlas_id)]


def delete_atlas(*, session: Session, viewer: Viewer, atlas_id: int) -> None:
    atlas_db.soft_delete(session=session, atlas=_writable_atlas(session, viewer, atlas_id))
    _audit_atlas(session, viewer, "atlas.delete", atlas_id)


def restore_atlas(*, session: Session, viewer: Viewer, atlas_id: int) -> None:
    atlas_db.restore(session=session, atlas=_writable_atlas(session, viewer, atlas_id, deleted=True))
    _audit_atlas(session, viewer, "atlas.restore", atlas_id)


def export_atlas_csv(*, session: Session, viewer: Viewer, atlas_id: int) -> bytes:
    record = open_atlas(session=session, viewer=viewer, atlas_id=atlas_id)
    _audit_atlas(session, viewer, "atlas.export", atlas_id)
    return atlas_math.atlas_csv(atlas_result(record))
