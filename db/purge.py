"""Permanently delete analyses, comparisons, head atlases and datasets that have sat in the
Trash too long, and request-log rows past their retention.

    python -m db.purge [--days N] [--request-log-days M]

``N`` defaults to the ``trash_retention_days`` setting (``HEADLIGHT_TRASH_RETENTION_DAYS``,
30). Rows soft-deleted more than ``N`` days ago go, with their tags, annotations, grants,
share links and dataset rows (a dataset an atlas still uses stays). ``M`` defaults to
``request_log_retention_days`` (``HEADLIGHT_REQUEST_LOG_RETENTION_DAYS``, 90): logged
analysis requests older than that go. Everything happens in one transaction.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.domain.settings import get_settings
from db import queries
from db import request_log as request_log_db
from db.models import utcnow
from db.session import get_sessionmaker


def purge(*, session: Session, days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete rows soft-deleted before ``now - days``; returns rows removed per table."""
    if days < 0:
        raise ValueError("--days must be 0 or more.")
    cutoff = (now or utcnow()) - timedelta(days=days)
    removed = queries.purge_deleted(session=session, before=cutoff)
    queries.add_audit_event(
        session=session, actor_id=None, action="trash.purge", detail={"days": days, **removed}
    )
    return removed


def purge_request_log(*, session: Session, days: int, now: datetime | None = None) -> int:
    """Delete request-log rows logged before ``now - days``; returns how many."""
    if days < 1:
        raise ValueError("--request-log-days must be 1 or more.")
    removed = request_log_db.purge_requests(session=session, before=(now or utcnow()) - timedelta(days=days))
    queries.add_audit_event(
        session=session,
        actor_id=None,
        action="request_log.purge",
        detail={"days": days, "requests": removed},
    )
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db.purge", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--days",
        type=int,
        default=get_settings().trash_retention_days,
        help="delete what was soft-deleted more than this many days ago (default: %(default)s)",
    )
    parser.add_argument(
        "--request-log-days",
        type=int,
        default=get_settings().request_log_retention_days,
        help="delete logged analysis requests older than this many days (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.days < 0:
        parser.error("--days must be 0 or more")
    if args.request_log_days < 1:
        parser.error("--request-log-days must be 1 or more")
    with get_sessionmaker().begin() as session:
        removed = purge(session=session, days=args.days)
        requests = purge_request_log(session=session, days=args.request_log_days)
    print(
        f"Purged {removed['visualizations']} analyses, {removed['comparisons']} comparisons, "
        f"{removed['atlases']} head atlases and {removed['datasets']} datasets "
        f"deleted more than {args.days} days ago."
    )
    print(f"Purged {requests} logged analysis requests older than {args.request_log_days} days.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
