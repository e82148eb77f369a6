"""Per-model analytics over the request log, aggregated by the database (`db.request_log`).

Definitions (the screen and the tests use the same ones):

- **requests**: every logged request, whatever its outcome;
- **served**: requests that returned an analysis (model run or cache hit); **errors** the rest,
  rate-limit refusals included (they are what a user saw fail);
- **latency p50/p95**: over *model runs* only, served requests that were not cache hits,
  linear interpolation between order statistics (numpy's default, Postgres
  ``percentile_cont``). Refusals' and cache hits' few milliseconds would flatter the
  numbers, and the Service tab counts the same way; the median latency of cache hits is
  reported on its own (`Summary.hit_p50_s`);
- **cache hit rate**: cache hits / served requests;
- **tokens processed**: the sum of tokens the model covered (prompt plus generated) over
  served requests, cache hits included (they were processed once, and served again).

Counts and sums are computed in SQL, one row per group, so a window's size does not
decide the memory a screen needs. Drift reads input lengths as a histogram computed in
SQL and sums token profiles as they stream in, up to `db.request_log.MAX_PROFILE_ROWS` per
window (newest first; `ModelDrift.profiles_capped` says when more existed).

The per-user breakdown names users, so it is for admins only (`core.access.permissions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from core.access import permissions
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.ops import drift
from db import request_log as request_log_db
from db.request_log import Aggregate

# Token profiles read per drift window at the most (newest first).
MAX_PROFILE_ROWS = request_log_db.MAX_PROFILE_ROWS
GUEST_LABEL = "guests (not signed in)"
LATENCY_DEFINITION = "latency over model runs: served requests that were not cache hits"
# Bucket widths offered for a time window, so every series has between ~12 and ~300 points.
_BUCKETS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
)
_MAX_POINTS = 300
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AnalyticsPermissionError(HeadlightError):
    """Only admins see who sent which requests."""


@dataclass(frozen=True)
class Summary:
    """Totals of a set of requests (one model, one user, or one time bucket)."""

    requests: int
    served: int
    errors: int
    cache_hits: int
    tokens: int
    p50_s: float | None
    p95_s: float | None
    hit_p50_s: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cache_hits / self.served if self.served else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


EMPTY = Summary(requests=0, served=0, errors=0, cache_hits=0, tokens=0, p50_s=None, p95_s=None)


def summary_of(aggregate: Aggregate) -> Summary:
    """A `Summary` from the database's totals of one group."""
    return Summary(
        requests=aggregate.requests,
        served=aggregate.served,
        errors=aggregate.requests - aggregate.served,
        cache_hits=aggregate.cache_hits,
        tokens=aggregate.tokens,
        p50_s=aggregate.run_p50_s,
        p95_s=aggregate.run_p95_s,
        hit_p50_s=aggregate.hit_p50_s,
        error_kinds=dict(aggregate.error_kinds),
    )


def per_model(*, session: Session, since: datetime, until: datetime) -> dict[str, Summary]:
    """One `Summary` per model id with requests in ``[since, until)``, most requested first."""
    groups = request_log_db.aggregate(session=session, since=since, until=until, by="model")
    return {str(group.key): summary_of(group) for group in groups}


def bucket_width(span: timedelta) -> timedelta:
    """The narrowest bucket that keeps a window of ``span`` under 300 points."""
    for width in _BUCKETS:
        if span / width <= _MAX_POINTS:
            return width
    return _BUCKETS[-1]


@dataclass(frozen=True)
class Series:
    """Per-bucket values over a window: ``starts[i]`` begins bucket ``i`` (UTC)."""

    starts: list[datetime]
    width: timedelta
    requests: list[int]
    errors: list[int]
    cache_hits: list[int]
    tokens: list[int]
    p50_s: list[float | None]
    p95_s: list[float | None]


def time_series(
    *,
    session: Session,
    model_id: str,
    since: datetime,
    until: datetime,
    width: timedelta | None = None,
) -> Series:
    """Requests, errors, cache hits, tokens and latency percentiles per bucket of ``[since, until)``.

    Buckets are aligned to whole multiples of the width since the epoch, so two views of
    overlapping windows put a request in the same bucket.
    """
    width = width or bucket_width(until - since)
    seconds = int(width.total_seconds())
    first = int((since - _EPOCH).total_seconds()) // seconds
    count = max(1, -(-int((until - _EPOCH).total_seconds()) // seconds) - first)  # ceiling
    groups = request_log_db.aggregate(
        session=session, since=since, until=until, by="bucket", model_id=model_id, bucket_seconds=seconds
    )
    summaries = [EMPTY] * count
    for group in groups:
        index = int(group.key) - first
        if 0 <= index < count:
            summaries[index] = summary_of(group)
    return Series(
        starts=[_EPOCH + (first + i) * width for i in range(count)],
        width=width,
        requests=[s.requests for s in summaries],
        errors=[s.errors for s in summaries],
        cache_hits=[s.cache_hits for s in summaries],
        tokens=[s.tokens for s in summaries],
        p50_s=[s.p50_s for s in summaries],
        p95_s=[s.p95_s for s in summaries],
    )


@dataclass(frozen=True)
class UserBreakdown:
    """One user's share of a model's requests."""

    user: str
    user_id: int | None
    summary: Summary


def per_user(
    viewer: Viewer, *, session: Session, model_id: str, since: datetime, until: datetime
) -> list[UserBreakdown]:
    """Requests per user (guests together), most active first. Admins only."""
    if not permissions.can_view_request_users(viewer):
        raise AnalyticsPermissionError("Only admins can see requests per user.")
    groups = request_log_db.aggregate(session=session, since=since, until=until, by="user", model_id=model_id)
    rows = [
        UserBreakdown(
            GUEST_LABEL if g.key is None else (g.label or f"user #{g.key}"),
            None if g.key is None else int(g.key),
            summary_of(g),
        )
        for g in groups
    ]
    return sorted(rows, key=lambda b: (-b.summary.requests, b.user))


@dataclass(frozen=True)
class DriftWindows:
    """The two windows drift compares: ``[baseline_start, recent_start)`` and ``[recent_start, end)``."""

    baseline_start: datetime
    recent_start: datetime
    end: datetime

    @classmethod
    def ending_at(cls, end: datetime, *, recent: timedelta, baseline: timedelta) -> DriftWindows:
        return cls(end - recent - baseline, end - recent, end)


@dataclass(frozen=True)
class ModelDrift:
    """A drift report and whether either window had more token profiles than were read."""

    report: drift.DriftReport
    profiles_capped: bool


def _window_tokens(
    session: Session, model_id: str, since: datetime, until: datetime, limit: int
) -> tuple[np.ndarray, bool]:
    total = np.zeros(drift.PROFILE_BUCKETS, dtype=np.int64)
    read = 0
    for profile in request_log_db.iter_profiles(
        session=session, since=since, until=until, model_id=model_id, limit=limit
    ):
        drift.add_profile(total, profile)
        read += 1
    capped = read >= limit and (
        request_log_db.count_profiles(session=session, since=since, until=until, model_id=model_id) > read
    )
    return total, capped


def model_drift(
    *,
    session: Session,
    model_id: str,
    windows: DriftWindows,
    profile_limit: int = MAX_PROFILE_ROWS,
) -> ModelDrift:
    """Drift of ``model_id``'s inputs between the two windows.

    Every request counts, failed ones included: what users send is the question, not what
    the model managed to serve (failed requests carry a length but no token profile).
    """
    edges = drift.LENGTH_EDGES
    spans = (
        (windows.baseline_start, windows.recent_start),
        (windows.recent_start, windows.end),
    )
    lengths = [
        request_log_db.length_histogram(session=session, since=a, until=b, model_id=model_id, edges=edges)
        for a, b in spans
    ]
    tokens = [_window_tokens(session, model_id, a, b, profile_limit) for a, b in spans]
    report = drift.compare_counts(
        baseline_requests=int(lengths[0].sum()),
        recent_requests=int(lengths[1].sum()),
        baseline_lengths=lengths[0],
        recent_lengths=lengths[1],
        baseline_tokens=tokens[0][0],
        recent_tokens=tokens[1][0],
    )
    return ModelDrift(report, profiles_capped=tokens[0][1] or tokens[1][1])
