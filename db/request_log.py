"""The request log (`analysis_requests`): written in batches by `core.request_log`, read by
the per-model analytics and drift. Keyword-only ``session``, never a commit.

Reads return plain `RequestRow` tuples rather than ORM objects: an analytics window can
hold tens of thousands of rows, and the analytics are pure functions over them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from db.models import AnalysisRequestLog, User

# A window larger than this is cut to its newest rows, so one screen never loads an
# unbounded history into memory (about 100 bytes per row without profiles).
MAX_ROWS = 200_000


@dataclass(frozen=True)
class RequestRow:
    """One logged request as the analytics read it; ``username`` is None for guests."""

    at: datetime
    model_id: str
    model_revision: str | None
    user_id: int | None
    username: str | None
    mode: str
    latency_s: float
    cache_hit: bool
    tokens: int
    input_chars: int
    input_tokens: int | None
    error_kind: str | None
    token_profile: Mapping[str, Any] | None = None


def insert_requests(*, session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert request rows (column name -> value) in one statement; returns how many."""
    values = [dict(row) for row in rows]
    if values:
        session.execute(insert(AnalysisRequestLog), values)
    return len(values)


def logged_models(*, session: Session, since: datetime | None = None) -> list[str]:
    """Model ids with at least one logged request (since ``since``), most requested first."""
    query = select(AnalysisRequestLog.model_id, func.count()).group_by(AnalysisRequestLog.model_id)
    if since is not None:
        query = query.where(AnalysisRequestLog.at >= since)
    return [model_id for model_id, _ in sorted(session.execute(query), key=lambda r: (-r[1], r[0]))]


def list_requests(
    *,
    session: Session,
    since: datetime,
    until: datetime | None = None,
    model_id: str | None = None,
    with_profiles: bool = False,
    limit: int = MAX_ROWS,
) -> list[RequestRow]:
    """Requests logged in ``[since, until)``, oldest first (the newest ``limit`` when more)."""
    log = AnalysisRequestLog
    columns = [
        log.at,
        log.model_id,
        log.model_revision,
        log.user_id,
        User.username,
        log.mode,
        log.latency_s,
        log.cache_hit,
        log.tokens,
        log.input_chars,
        log.input_tokens,
        log.error_kind,
    ]
    if with_profiles:
        columns.append(log.token_profile)
    query = select(*columns).outerjoin(User, User.id == log.user_id).where(log.at >= since)
    if until is not None:
        query = query.where(log.at < until)
    if model_id is not None:
        query = query.where(log.model_id == model_id)
    query = query.order_by(log.at.desc(), log.id.desc()).limit(limit)
    return [RequestRow(*row) for row in reversed(session.execute(query).all())]


def purge_requests(*, session: Session, before: datetime) -> int:
    """Delete requests logged before ``before``; returns how many."""
    result = session.execute(delete(AnalysisRequestLog).where(AnalysisRequestLog.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
