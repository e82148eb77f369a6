"""Reads and writes of jobs, their timeline and their per-row results.

The database is the source of truth for job state. Status changes are conditional updates
that name the statuses they may leave (`transition`), so concurrent workers cannot both
move a job. Rows are claimed by inserting a ``claimed`` placeholder under the unique
``(job_id, row_id)`` constraint, so no two workers ever hold one row, and results are
written by an upsert that never overwrites a finished row: a job resumed any number of
times ends with exactly one result per row. Every function takes a keyword-only
``session`` and never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, delete, exists, false, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import DatasetRow, Job, JobEvent, JobRow, JobRowStatus, JobStatus, utcnow


def _insert(session: Session, table: type[JobRow]) -> Insert:
    """A dialect-specific INSERT that supports ON CONFLICT (Postgres and SQLite both do)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def create_job(
    *, session: Session, kind: str, owner_id: int | None, params: dict[str, Any], rows_total: int
) -> Job:
    job = Job(kind=kind, owner_id=owner_id, params=params, rows_total=rows_total)
    session.add(job)
    session.flush()
    return job


def get_job(*, session: Session, job_id: int, readable: ColumnElement[bool]) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id, readable))


def list_jobs(*, session: Session, readable: ColumnElement[bool], limit: int = 50) -> list[Job]:
    """The newest readable jobs."""
    query = select(Job).where(readable).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(session.scalars(query))


def transition(
    *, session: Session, job_id: int, new: JobStatus, sources: Collection[JobStatus], **values: Any
) -> bool:
    """Move a job to ``new`` only if its status is one of ``sources``; whether it moved.

    ``values`` sets other columns in the same statement.
    """
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(list(sources)))
        .values(status=new, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return result.rowcount == 1


def take_write_lock(*, session: Session) -> None:
    """On SQLite, make the database's write lock the transaction's first act (a no-op write).

    SQLite refuses to turn a read snapshot that another writer has since outdated into a
    write ("database is locked" at once, no waiting); a transaction that writes first waits
    out other writers instead. Postgres locks rows as it goes and needs nothing here.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Job).where(false()).values(id=Job.id).execution_options(synchronize_session=False)
        )


def lock_job(*, session: Session, job_id: int) -> None:
    """Take the job's write lock as a transaction's first statement.

    On Postgres this locks the job's row, so writers of one job take turns; on SQLite it
    takes the database's write lock up front (see `take_write_lock`).
    """
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def set_cancel_requested(*, session: Session, job_id: int) -> bool:
    """Raise the flag a worker reads between rows; only while the job is queued or running."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .values(cancel_requested=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return result.rowcount == 1


def add_event(
    *,
    session: Session,
    job_id: int,
    kind: str,
    message: str = "",
    worker: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(JobEvent(job_id=job_id, kind=kind, message=message, worker=worker, detail=detail or {}))
    session.flush()


def events(*, session: Session, job_id: int) -> list[JobEvent]:
    """A job's timeline, oldest first."""
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def count_events(*, session: Session, job_id: int, kind: str) -> int:
    query = select(func.count()).where(JobEvent.job_id == job_id, JobEvent.kind == kind)
    return session.scalar(query) or 0


def claim_rows(
    *, session: Session, job: Job, dataset_id: int, worker: str, limit: int, stale_before: datetime
) -> list[tuple[int, str]]:
    """Claim up to ``limit`` rows of ``job`` for ``worker``: ``(row_id, text)`` in dataset order.

    Rows nobody has touched come first; then rows whose claim is older than
    ``stale_before`` (their worker stopped). A claim lost to another worker is skipped.
    """
    now = utcnow()
    untouched = (
        select(DatasetRow.id)
        .where(
            DatasetRow.dataset_id == dataset_id,
            ~exists().where(JobRow.job_id == job.id, JobRow.row_id == DatasetRow.id),
        )
        .order_by(DatasetRow.position)
        .limit(limit)
    )
    candidates = list(session.scalars(untouched))
    claimed: list[int] = []
    if candidates:
        statement = (
            _insert(session, JobRow)
            .values(
                [
                    {
                        "job_id": job.id,
                        "row_id": row_id,
                        "status": JobRowStatus.CLAIMED,
                        "worker": worker,
                        "claimed_at": now,
                        "attempts": 0,
                        "truncated": False,
                    }
                    for row_id in candidates
                ]
            )
            .on_conflict_do_nothing(index_elements=["job_id", "row_id"])
            .returning(JobRow.row_id)
        )
        claimed = list(session.scalars(statement))
    if len(claimed) < limit:
        stale = list(
            session.scalars(
                select(JobRow.row_id)
                .where(
                    JobRow.job_id == job.id,
                    JobRow.status == JobRowStatus.CLAIMED,
                    JobRow.claimed_at < stale_before,
                )
                .limit(limit - len(claimed))
            )
        )
        if stale:
            taken = session.scalars(
                update(JobRow)
                .where(
                    JobRow.job_id == job.id,
                    JobRow.row_id.in_(stale),
                    JobRow.status == JobRowStatus.CLAIMED,
                    JobRow.claimed_at < stale_before,
                )
                .values(worker=worker, claimed_at=now)
                .returning(JobRow.row_id)
                .execution_options(synchronize_session=False)
            )
            claimed += list(taken)
    if not claimed:
        return []
    found = session.execute(
        select(DatasetRow.id, DatasetRow.text).where(DatasetRow.id.in_(claimed)).order_by(DatasetRow.position)
    )
    return [(row_id, text) for row_id, text in found]


def record_row(
    *,
    session: Session,
    job_id: int,
    row_id: int,
    worker: str,
    status: JobRowStatus,
    attempts: int,
    scores: bytes | None = None,
    token_count: int | None = None,
    truncated: bool = False,
    error: str | None = None,
) -> bool:
    """Upsert one row's result; a row already done is never overwritten. Whether it was written."""
    values = {
        "status": status,
        "worker": worker,
        "finished_at": utcnow(),
        "attempts": attempts,
        "scores": scores,
        "token_count": token_count,
        "truncated": truncated,
        "error": error,
    }
    statement = _insert(session, JobRow).values(job_id=job_id, row_id=row_id, claimed_at=utcnow(), **values)
    statement = statement.on_conflict_do_update(
        index_elements=["job_id", "row_id"],
        set_=values,
        where=JobRow.status != JobRowStatus.DONE,
    ).returning(JobRow.id)
    return session.scalar(statement) is not None


def refresh_counts(*, session: Session, job_id: int, worker: str | None = None) -> Job:
    """Recount the job's finished rows from ``job_rows``, store them with a heartbeat, and
    return the job as it is now (status and cancel flag included)."""
    counts = dict(
        session.execute(
            select(JobRow.status, func.count())
            .where(JobRow.job_id == job_id, JobRow.status != JobRowStatus.CLAIMED)
            .group_by(JobRow.status)
        ).all()
    )
    done, failed = counts.get(JobRowStatus.DONE, 0), counts.get(JobRowStatus.FAILED, 0)
    now = utcnow()
    total = session.scalar(select(Job.rows_total).where(Job.id == job_id)) or 0
    values: dict[str, Any] = {
        "rows_done": done,
        "rows_failed": failed,
        "progress": min(1.0, (done + failed) / total) if total else 1.0,
        "heartbeat_at": now,
        "updated_at": now,
    }
    if worker is not None:
        values["worker"] = worker
    session.execute(
        update(Job).where(Job.id == job_id).values(**values).execution_options(synchronize_session=False)
    )
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def release_claims(*, session: Session, job_id: int, worker: str) -> None:
    """Drop ``worker``'s unfinished claims on one job, so others can take those rows now."""
    session.execute(
        delete(JobRow)
        .where(JobRow.job_id == job_id, JobRow.worker == worker, JobRow.status == JobRowStatus.CLAIMED)
        .execution_options(synchronize_session=False)
    )


def release_claims_by_prefix(*, session: Session, prefix: str) -> set[int]:
    """Drop the unfinished claims of every worker named ``prefix...``; the jobs touched."""
    released = session.scalars(
        delete(JobRow)
        .where(JobRow.worker.startswith(prefix, autoescape=True), JobRow.status == JobRowStatus.CLAIMED)
        .returning(JobRow.job_id)
        .execution_options(synchronize_session=False)
    )
    return set(released)


def running_jobs_of(*, session: Session, prefix: str) -> list[Job]:
    """Running jobs whose last report came from a worker named ``prefix...``."""
    query = select(Job).where(Job.status == JobStatus.RUNNING, Job.worker.startswith(prefix, autoescape=True))
    return list(session.scalars(query.order_by(Job.id)))


def active_jobs(*, session: Session, job_ids: Collection[int]) -> list[Job]:
    """The queued or running jobs among ``job_ids``."""
    if not job_ids:
        return []
    query = select(Job).where(
        Job.id.in_(list(job_ids)), Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
    )
    return list(session.scalars(query.order_by(Job.id)))


def delete_rows(*, session: Session, job_id: int, statuses: Collection[JobRowStatus]) -> int:
    """Forget rows in ``statuses`` so they are done again (a resumed job retries its failures)."""
    result = session.execute(
        delete(JobRow)
        .where(JobRow.job_id == job_id, JobRow.status.in_(list(statuses)))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def stale_jobs(*, session: Session, before: datetime) -> list[Job]:
    """Running jobs without a sign of life since ``before``."""
    last_seen = func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)
    query = select(Job).where(Job.status == JobStatus.RUNNING, last_seen < before).order_by(Job.id)
    return list(session.scalars(query))


def queued_jobs(*, session: Session, before: datetime | None = None, limit: int = 100) -> list[Job]:
    """Queued jobs, oldest first (created before ``before`` when given)."""
    query = select(Job).where(Job.status == JobStatus.QUEUED)
    if before is not None:
        query = query.where(Job.created_at < before)
    return list(session.scalars(query.order_by(Job.created_at, Job.id).limit(limit)))


def rows_finished_since(*, session: Session, job_id: int, since: datetime) -> int:
    query = select(func.count()).where(
        JobRow.job_id == job_id, JobRow.status != JobRowStatus.CLAIMED, JobRow.finished_at >= since
    )
    return session.scalar(query) or 0


def failed_rows(*, session: Session, job_id: int, limit: int = 100) -> list[tuple[JobRow, DatasetRow]]:
    """Failed rows with their dataset rows, in dataset order."""
    query = (
        select(JobRow, DatasetRow)
        .join(DatasetRow, DatasetRow.id == JobRow.row_id)
        .where(JobRow.job_id == job_id, JobRow.status == JobRowStatus.FAILED)
        .order_by(DatasetRow.position)
        .limit(limit)
    )
    return [(job_row, row) for job_row, row in session.execute(query).all()]


def iter_scores(*, session: Session, job_id: int, batch: int = 500) -> Iterator[list[tuple[int, bytes]]]:
    """``(row_id, scores)`` of every done row, in batches (keyset paging over ``job_rows.id``)."""
    after = 0
    while True:
        found = session.execute(
            select(JobRow.id, JobRow.row_id, JobRow.scores)
            .where(JobRow.job_id == job_id, JobRow.status == JobRowStatus.DONE, JobRow.id > after)
            .order_by(JobRow.id)
            .limit(batch)
        ).all()
        if not found:
            return
        yield [(row_id, scores) for _, row_id, scores in found if scores is not None]
        after = found[-1][0]
