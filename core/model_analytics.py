"""Per-model analytics over the request log: pure functions of `db.request_log.RequestRow`s.

Definitions (the screen and the tests use the same ones):

- **requests**: every logged request, whatever its outcome;
- **served**: requests that returned an analysis (model run or cache hit); **errors** the rest,
  rate-limit refusals included (they are what a user saw fail);
- **latency p50/p95**: over served requests only (a refusal's few milliseconds would flatter
  the numbers), linear interpolation between order statistics (numpy's default);
- **cache hit rate**: cache hits / served requests;
- **tokens processed**: the sum of tokens the model covered (prompt plus generated) over
  served requests, cache hits included (they were processed once, and served again).

The per-user breakdown names users, so it is for admins only (`core.permissions`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from core import drift, permissions
from core.errors import HeadlightError
from core.permissions import Viewer
from db.request_log import RequestRow

GUEST_LABEL = "guests (not signed in)"
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
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cache_hits / self.served if self.served else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, None when empty."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def summarise(rows: Iterable[RequestRow]) -> Summary:
    """Requests, served, errors (by kind), cache hits, tokens and latency percentiles."""
    rows = list(rows)
    served = [r for r in rows if r.error_kind is None]
    latencies = [r.latency_s for r in served]
    return Summary(
        requests=len(rows),
        served=len(served),
        errors=len(rows) - len(served),
        cache_hits=sum(1 for r in served if r.cache_hit),
        tokens=sum(r.tokens for r in served),
        p50_s=percentile(latencies, 50),
        p95_s=percentile(latencies, 95),
        error_kinds=dict(Counter(r.error_kind for r in rows if r.error_kind is not None).most_common()),
    )


def per_model(rows: Iterable[RequestRow]) -> dict[str, Summary]:
    """One `Summary` per model id, most requested first."""
    groups: dict[str, list[RequestRow]] = defaultdict(list)
    for row in rows:
        groups[row.model_id].append(row)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return {model_id: summarise(group) for model_id, group in ordered}


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


def _floor(at: datetime, start: datetime, width: timedelta) -> int:
    return int((at - start) // width)


def time_series(
    rows: Iterable[RequestRow], *, since: datetime, until: datetime, width: timedelta | None = None
) -> Series:
    """Requests, errors, cache hits, tokens and latency percentiles per bucket of ``[since, until)``.

    Buckets are aligned to whole multiples of the width since the epoch, so two views of
    overlapping windows put a request in the same bucket.
    """
    width = width or bucket_width(until - since)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + ((since - epoch) // width) * width
    count = max(1, -(-(until - start) // width))  # ceiling division
    grouped: list[list[RequestRow]] = [[] for _ in range(count)]
    for row in rows:
        if since <= row.at < until:
            grouped[_floor(row.at, start, width)].append(row)
    summaries = [summarise(group) for group in grouped]
    return Series(
        starts=[start + i * width for i in range(count)],
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


def per_user(viewer: Viewer, rows: Iterable[RequestRow]) -> list[UserBreakdown]:
    """Requests per user (guests together), most active first. Admins only."""
    if not permissions.can_view_request_users(viewer):
        raise AnalyticsPermissionError("Only admins can see requests per user.")
    groups: dict[int | None, list[RequestRow]] = defaultdict(list)
    names: dict[int | None, str] = {None: GUEST_LABEL}
    for row in rows:
        groups[row.user_id].append(row)
        if row.user_id is not None:
            names[row.user_id] = row.username or f"user #{row.user_id}"
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), names[item[0]]))
    return [UserBreakdown(names[user_id], user_id, summarise(group)) for user_id, group in ordered]


@dataclass(frozen=True)
class DriftWindows:
    """The two windows drift compares: ``[baseline_start, recent_start)`` and ``[recent_start, end)``."""

    baseline_start: datetime
    recent_start: datetime
    end: datetime

    @classmethod
    def ending_at(cls, end: datetime, *, recent: timedelta, baseline: timedelta) -> DriftWindows:
        return cls(end - recent - baseline, end - recent, end)


def model_drift(rows: Iterable[RequestRow], windows: DriftWindows) -> drift.DriftReport:
    """Drift of the inputs in ``rows`` (one model's, with profiles) between the two windows.

    Every request counts, failed ones included: what users send is the question, not what
    the model managed to serve (failed requests carry a length but no token profile).
    """
    baseline: list[drift.WindowInputs] = []
    recent: list[drift.WindowInputs] = []
    for row in rows:
        inputs = drift.WindowInputs(row.input_chars, row.token_profile)
        if windows.baseline_start <= row.at < windows.recent_start:
            baseline.append(inputs)
        elif windows.recent_start <= row.at < windows.end:
            recent.append(inputs)
    return drift.compare_windows(baseline, recent)
