"""Share links in the manner of `db.queries` (keyword-only ``session``, never a commit).

Only the sha256 of a link's token is stored. Lookups go by visualization id, never by the
hash, so the caller compares hashes itself (in constant time) and a token for another
analysis is indistinguishable from a wrong one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ShareLink


def create_link(
    *, session: Session, visualization_id: int, token_hash: str, created_by: int, expires_at: datetime | None
) -> ShareLink:
    link = ShareLink(
        visualization_id=visualization_id,
        token_hash=token_hash,
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(link)
    session.flush()
    return link


def live_links(*, session: Session, visualization_id: int, now: datetime) -> list[ShareLink]:
    """Links of one visualization that are neither revoked nor expired at ``now``."""
    return list(
        session.scalars(
            select(ShareLink).where(
                ShareLink.visualization_id == visualization_id,
                ShareLink.revoked_at.is_(None),
                (ShareLink.expires_at.is_(None)) | (ShareLink.expires_at > now),
            )
        )
    )


def links_of(*, session: Session, visualization_id: int) -> list[ShareLink]:
    """Every link of one visualization, newest first (revoked and expired included)."""
    return list(
        session.scalars(
            select(ShareLink)
            .where(ShareLink.visualization_id == visualization_id)
            .order_by(ShareLink.created_at.desc(), ShareLink.id.desc())
        )
    )


def get_link(*, session: Session, link_id: int) -> ShareLink | None:
    return session.get(ShareLink, link_id)


def revoke(*, session: Session, link: ShareLink, at: datetime) -> None:
    if link.revoked_at is None:
        link.revoked_at = at
    session.flush()
