"""The job status contract shared by the screens, the workers and the database.

The database is the source of truth: a job's status lives in ``jobs.status`` and changes
only along `TRANSITIONS`, by a conditional update (`db.jobs.transition`) that names the
statuses it may leave, so two workers can never both move one job. The enum itself is
`db.models.JobStatus` (the db layer stores it and imports nothing of ours); it is
re-exported here so callers need one import, as is the status of a job's row
(`db.models.JobRowStatus`: claimed by a worker, done with scores, or failed with an error).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from core.domain.errors import HeadlightError
from db.models import JobRowStatus as RowStatus
from db.models import JobStatus

__all__ = [
    "ACTIVE",
    "FINISHED",
    "TRANSITIONS",
    "EventKind",
    "InvalidTransitionError",
    "JobStatus",
    "RowStatus",
    "TransientError",
    "check_transition",
    "eta_seconds",
    "sources_of",
]

# queued -> running -> completed | failed | cancelled; a running job whose worker vanished
# goes back to queued; failed and cancelled jobs can be resumed (queued again). Completed
# is final. A queued job can be cancelled, or failed when it cannot start at all.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset(),
}
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class InvalidTransitionError(HeadlightError):
    """A status change the contract does not allow."""


class TransientError(Exception):
    """A failure worth retrying (a dropped connection, a busy resource)."""


class EventKind(StrEnum):
    """The kinds of entries in a job's timeline (`db.models.JobEvent`)."""

    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    RETRY = "retry"
    ROW_FAILED = "row failed"
    CANCEL_REQUESTED = "cancel requested"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    RESUMED = "resumed"
    COMPLETED = "completed"
    FAILED = "failed"
    WEBHOOK = "webhook"


def check_transition(current: JobStatus, new: JobStatus) -> None:
    """Raise `InvalidTransitionError` unless ``current -> new`` is in the contract."""
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing"
        raise InvalidTransitionError(f"A {current.value} job cannot become {new.value} (only: {allowed}).")


def sources_of(new: JobStatus, among: Collection[JobStatus] | None = None) -> frozenset[JobStatus]:
    """The statuses that may become ``new`` (optionally only those in ``among``)."""
    sources = frozenset(s for s, targets in TRANSITIONS.items() if new in targets)
    return sources if among is None else sources & frozenset(among)


def eta_seconds(remaining: int, recent_rows: int, window_s: float) -> float | None:
    """Seconds left at the recent pace (``recent_rows`` finished in the last ``window_s``).

    None while there is no pace to go by.
    """
    if remaining <= 0:
        return 0.0
    if recent_rows <= 0 or window_s <= 0:
        return None
    return remaining * window_s / recent_rows
