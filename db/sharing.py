"""Share links in the manner of `db.queries` (keyword-only ``session``, never a commit).

A link targets one analysis, comparison or head atlas (one of its three foreign keys is
set). Only the sha256 of a link's token is stored. Lookups go by record id, never by the
hash, so the caller compares hashes itself (in constant time) and a token for another
record is indistinguishable from a wrong one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from db.models import Atlas, Comparison, ShareLink, Visualization

SharedModel = type[Visualization] | type[Comparison] | type[Atlas]


def _target(model: SharedModel) -> InstrumentedAttribute[int | None]:
    """The ``share_links`` column that points at rows of ``model``."""
    columns = {
        Visualization: ShareLink.visualization_id,
        Comparison: ShareLink.comparison_id,
        Atlas: ShareLink.atlas_id,
    }
    return columns[model]


def create_link(
    *,
    session: Session,
    model: SharedModel,
    record_id: int,
    token_hash: str,
    created_by: int,
    expires_at: datetime | None,
) -> ShareLink:
    link = ShareLink(token_hash=token_hash, created_by=created_by, expires_at=expires_at)
    setattr(link, _target(model).key, record_id)
    session.add(link)
    session.flush()
    return link


def live_links(*, session: Session, model: SharedModel, record_id: int, now: datetime) -> list[ShareLink]:
    """Links of one record that are neither revoked nor expired at ``now``."""
    return list(
        session.scalars(
            select(ShareLink).where(
                _target(model) == record_id,
                ShareLink.revoked_at.is_(None),
                (ShareLink.expires_at.is_(None)) | (ShareLink.expires_at > now),
            )
        )
    )


def links_of(*, session: Session, model: SharedModel, record_id: int) -> list[ShareLink]:
    """Every link of one record, newest first (revoked and expired included)."""
    return list(
        session.scalars(
            select(ShareLink)
            .where(_target(model) == record_id)
            .order_by(ShareLink.created_at.desc(), ShareLink.id.desc())
        )
    )


def get_link(*, session: Session, link_id: int) -> ShareLink | None:
    return session.get(ShareLink, link_id)


def get_live_record(
    *, session: Session, model: SharedModel, record_id: int, live: ColumnElement[bool]
) -> Any:
    """The row of ``model`` with that id if ``live`` (from `core.access.permissions`) admits it."""
    return session.scalar(select(model).where(model.id == record_id, live))


def revoke(*, session: Session, link: ShareLink, at: datetime) -> None:
    if link.revoked_at is None:
        link.revoked_at = at
    session.flush()
