"""The request log (`analysis_requests`): written in batches by `core.store.request_log`, read by
the per-model analytics and drift. Keyword-only ``session``, never a commit.

Analytics aggregate in SQL (`aggregate`: counts, sums, error kinds and latency percentiles
per model, user or time bucket; `length_histogram`: input lengths per bin), so a window of
any size costs one row per group, not one per request. Latency percentiles are computed
by the database where it can (Postgres ``percentile_cont``, linear interpolation like
numpy's default); SQLite has no percentile aggregate, so there only the one latency
column of served requests is read. Token profiles are streamed (`iter_profiles`) and
summed by the caller, newest first, up to a cap the caller is told about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy import ColumnElement, Integer, and_, case, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from db.models import AnalysisRequestLog, User

# Token profiles read per drift window at most (newest first); the screen says when more exist.
MAX_PROFILE_ROWS = 50_000
_PROFILE_BATCH = 2_000

GroupBy = Literal["model", "user", "bucket"]


def insert_requests(*, session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert request rows (column name -> value) in one statement; returns how many."""
    values = [dict(row) for row in rows]
    if values:
        session.execute(insert(AnalysisRequestLog), values)
    return len(values)


def purge_requests(*, session: Session, before: datetime) -> int:
    """Delete requests logged before ``before``; returns how many."""
    result = session.execute(delete(AnalysisRequestLog).where(AnalysisRequestLog.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Aggregate:
    """Totals of one group (a model id, a user id or a time bucket index) over a window.

    ``run_p50_s``/``run_p95_s`` are over served requests the model ran (cache hits and
    errors excluded); ``hit_p50_s`` is the median latency of cache hits.
    """

    key: Any
    requests: int
    served: int
    cache_hits: int
    tokens: int
    run_p50_s: float | None = None
    run_p95_s: float | None = None
    hit_p50_s: float | None = None
    label: str | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)


def epoch_seconds(session: Session, column: Any) -> ColumnElement[Any]:
    """``column`` (a UTC timestamp) as whole seconds since the epoch, on either dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), Integer)
    # SQLite keeps naive UTC text; strftime('%s') reads it as UTC.
    return cast(func.strftime("%s", column), Integer)


def _group_key(session: Session, by: GroupBy, bucket_seconds: int | None) -> ColumnElement[Any]:
    log = AnalysisRequestLog
    if by == "model":
        return log.model_id  # type: ignore[return-value]
    if by == "user":
        return log.user_id  # type: ignore[return-value]
    if not bucket_seconds:
        raise ValueError("Grouping by bucket needs bucket_seconds.")
    # Integer division of non-negative seconds: buckets aligned to whole multiples of the
    # width since the epoch (SQLite may lack floor()).
    return epoch_seconds(session, log.at) // int(bucket_seconds)


def _percentiles(values: Sequence[float]) -> tuple[float, float] | None:
    if not values:
        return None
    p50, p95 = np.percentile(np.asarray(values, dtype=np.float64), [50, 95])
    return float(p50), float(p95)


def aggregate(
    *,
    session: Session,
    since: datetime,
    until: datetime,
    by: GroupBy,
    model_id: str | None = None,
    bucket_seconds: int | None = None,
) -> list[Aggregate]:
    """Per group in ``[since, until)``: requests, served, cache hits, tokens (served), error
    kinds and latency percentiles; most requests first (buckets: in time order)."""
    log = AnalysisRequestLog
    key = _group_key(session, by, bucket_seconds).label("key")
    window = and_(log.at >= since, log.at < until)
    if model_id is not None:
        window = and_(window, log.model_id == model_id)
    served = log.error_kind.is_(None)
    run = and_(served, log.cache_hit.is_(False))
    hit = and_(served, log.cache_hit.is_(True))
    columns: list[Any] = [
        key,
        func.count(),
        func.sum(case((served, 1), else_=0)),
        func.sum(case((hit, 1), else_=0)),
        func.sum(case((served, log.tokens), else_=0)),
    ]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # percentile_cont skips NULLs, so CASE picks the rows each percentile is over.
        run_latency = case((run, log.latency_s))
        hit_latency = case((hit, log.latency_s))
        columns += [
            func.percentile_cont(0.5).within_group(run_latency),
            func.percentile_cont(0.95).within_group(run_latency),
            func.percentile_cont(0.5).within_group(hit_latency),
        ]
    rows = session.execute(select(*columns).where(window).group_by(key)).all()

    kinds: dict[Any, dict[str, int]] = defaultdict(dict)
    kind_query = (
        select(key, log.error_kind, func.count())
        .where(window, log.error_kind.is_not(None))
        .group_by(key, log.error_kind)
    )
    for group, kind, count in session.execute(kind_query):
        kinds[group][kind] = int(count)

    latencies: dict[tuple[Any, bool], list[float]] = defaultdict(list)
    if not postgres:
        # One float per served request: the only per-request data read on SQLite.
        for group, latency, cache_hit in session.execute(
            select(key, log.latency_s, log.cache_hit).where(window, served)
        ):
            latencies[(group, bool(cache_hit))].append(float(latency))

    labels: dict[Any, str] = {}
    if by == "user":
        ids = [row[0] for row in rows if row[0] is not None]
        if ids:
            labels = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())

    result = []
    for row in rows:
        group = row[0]
        if postgres:
            run_p50, run_p95, hit_p50 = (None if v is None else float(v) for v in row[5:8])
        else:
            runs = _percentiles(latencies.get((group, False), []))
            hits = _percentiles(latencies.get((group, True), []))
            run_p50, run_p95 = runs if runs else (None, None)
            hit_p50 = hits[0] if hits else None
        result.append(
            Aggregate(
                key=group,
                requests=int(row[1]),
                served=int(row[2] or 0),
                cache_hits=int(row[3] or 0),
                tokens=int(row[4] or 0),
                run_p50_s=run_p50,
                run_p95_s=run_p95,
                hit_p50_s=hit_p50,
                label=labels.get(group),
                error_kinds=dict(sorted(kinds.get(group, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
            )
        )
    if by == "bucket":
        return sorted(result, key=lambda a: a.key)
    return sorted(result, key=lambda a: (-a.requests, str(a.key)))


def length_histogram(
    *, session: Session, since: datetime, until: datetime, model_id: str, edges: Sequence[float]
) -> np.ndarray:
    """Requests of ``model_id`` in ``[since, until)`` per input-length bin ``[edges[i], edges[i+1])``."""
    log = AnalysisRequestLog
    bins = len(edges) - 1
    # Bin index by the upper edges (the last bin is open-ended), grouped in the database.
    index = case(
        *((log.input_chars < edges[i + 1], i) for i in range(bins - 1)),
        else_=bins - 1,
    ).label("bin")
    query = (
        select(index, func.count())
        .where(log.model_id == model_id, log.at >= since, log.at < until)
        .group_by(index)
    )
    counts = np.zeros(bins, dtype=np.int64)
    for position, count in session.execute(query):
        counts[int(position)] = int(count)
    return counts


def iter_profiles(
    *, session: Session, since: datetime, until: datetime, model_id: str, limit: int = MAX_PROFILE_ROWS
) -> Iterator[Mapping[str, Any]]:
    """Token profiles of ``model_id``'s requests in ``[since, until)``, newest first, at most
    ``limit``; streamed in batches so a window never sits in memory at once."""
    log = AnalysisRequestLog
    query = (
        select(log.token_profile)
        .where(log.model_id == model_id, log.at >= since, log.at < until, log.token_profile.is_not(None))
        .order_by(log.at.desc(), log.id.desc())
        .limit(limit)
        .execution_options(yield_per=_PROFILE_BATCH)
    )
    for (profile,) in session.execute(query):
        yield profile


def count_profiles(*, session: Session, since: datetime, until: datetime, model_id: str) -> int:
    """How many requests of ``model_id`` in ``[since, until)`` carry a token profile."""
    log = AnalysisRequestLog
    query = select(func.count()).where(
        log.model_id == model_id, log.at >= since, log.at < until, log.token_profile.is_not(None)
    )
    return int(session.scalar(query) or 0)
