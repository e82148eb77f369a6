"""Sharing a saved analysis: the public switch and share links.

A share link is ``/shared?id=<analysis id>&token=<token>``. The token is 256 random bits
(`secrets.token_urlsafe`), shown once to its creator and stored only as its sha256. Opening
a link compares that hash with the live links of the named analysis in constant time
(`hmac.compare_digest`). A wrong, expired or revoked token, a token of another analysis and
an id that does not exist all raise the same `NotFoundError` with the same message.
Guessing is rate-limited per client by the caller (`SHARE_LIMIT_ROLE`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session

from core import audit, library, permissions
from core.library import PermissionDeniedError
from core.permissions import Viewer
from core.rate_limit import RateLimitedError, RateLimiter
from db import queries
from db import sharing as sharing_db
from db.models import ShareLink, Visualization

TOKEN_BYTES = 32
SHARED_PATH = "shared"
# The `core.rate_limit.RateLimiter` role under which failed lookups are counted.
SHARE_LIMIT_ROLE = "anonymous"
EXPIRY_DAYS: dict[str, int | None] = {"Never": None, "1 day": 1, "7 days": 7, "30 days": 30}
MAX_EXPIRY_DAYS = 365


@dataclass(frozen=True)
class NewLink:
    """A link just created: the only moment its token is known."""

    id: int
    token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class LinkRow:
    """One link as its owner sees it listed (never the token)."""

    id: int
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def origin_of(url: str) -> str:
    """Scheme and host of a page address (``https://host:port``), without its path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url.rstrip("/")


def share_url(base: str, visualization_id: int, token: str) -> str:
    """The absolute link under ``base``, the address the app is served at."""
    return f"{base.rstrip('/')}/{SHARED_PATH}?{urlencode({'id': visualization_id, 'token': token})}"


def client_key(client: str) -> str:
    """The rate-limit key of one client's share-link lookups."""
    return f"share-token:{client}"


def _shareable(session: Session, viewer: Viewer, visualization_id: int) -> Visualization:
    record = library.open_saved(session=session, viewer=viewer, visualization_id=visualization_id)
    if not permissions.can_share(viewer, record):
        raise PermissionDeniedError("Only the owner of an analysis (or an admin) can share it.")
    return record


def _audit(session: Session, viewer: Viewer, action: str, visualization_id: int, **detail: object) -> None:
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action=action,
        target_type=audit.VISUALIZATION,
        target_id=visualization_id,
        detail=detail or None,
    )


def set_public(*, session: Session, viewer: Viewer, visualization_id: int, public: bool) -> None:
    """Make an analysis readable by everyone (guests included), or private again."""
    record = _shareable(session, viewer, visualization_id)
    if record.is_public == public:
        return
    record.is_public = public
    session.flush()
    _audit(session, viewer, audit.ANALYSIS_PUBLISH if public else audit.ANALYSIS_UNPUBLISH, record.id)


def create_link(
    *, session: Session, viewer: Viewer, visualization_id: int, expires_in_days: int | None, now: datetime
) -> NewLink:
    """A new link to one analysis; ``expires_in_days`` None means it lasts until revoked."""
    record = _shareable(session, viewer, visualization_id)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise library.HeadlightError(f"A link lasts 1 to {MAX_EXPIRY_DAYS} days, or until revoked.")
    assert viewer.user_id is not None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    link = sharing_db.create_link(
        session=session,
        visualization_id=record.id,
        token_hash=token_hash(token),
        created_by=viewer.user_id,
        expires_at=expires_at,
    )
    _audit(session, viewer, audit.SHARE_CREATE, record.id, link=link.id, expires_in_days=expires_in_days)
    return NewLink(id=link.id, token=token, expires_at=expires_at)


def _status(link: ShareLink, now: datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    return "active"


def list_links(*, session: Session, viewer: Viewer, visualization_id: int, now: datetime) -> list[LinkRow]:
    """Every link of an analysis the viewer may share, newest first."""
    record = _shareable(session, viewer, visualization_id)
    return [
        LinkRow(
            id=link.id,
            created_at=link.created_at,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
            status=_status(link, now),
        )
        for link in sharing_db.links_of(session=session, visualization_id=record.id)
    ]


def revoke_link(
    *, session: Session, viewer: Viewer, visualization_id: int, link_id: int, now: datetime
) -> None:
    """Stop a link from working; the link stays listed as revoked."""
    record = _shareable(session, viewer, visualization_id)
    link = sharing_db.get_link(session=session, link_id=link_id)
    if link is None or link.visualization_id != record.id:
        raise library.NotFoundError(f"Share link #{link_id} was not found on analysis #{record.id}.")
    if link.revoked_at is None:
        sharing_db.revoke(session=session, link=link, at=now)
        _audit(session, viewer, audit.SHARE_REVOKE, record.id, link=link.id)


def _matching_link(links: list[ShareLink], token: str) -> ShareLink | None:
    wanted = token_hash(token)
    found = None
    # Every candidate is compared, so the time taken does not tell which one matched.
    for link in links:
        if hmac.compare_digest(link.token_hash, wanted):
            found = link
    return found


def open_shared(
    *, session: Session, visualization_id: int, token: str, now: datetime
) -> tuple[Visualization, int]:
    """The analysis a live link opens and that link's id; `NotFoundError` otherwise."""
    links = sharing_db.live_links(session=session, visualization_id=visualization_id, now=now)
    link = _matching_link(links, token) if token else None
    record = None
    if link is not None:
        record = queries.get_visualization(
            session=session, visualization_id=visualization_id, readable=permissions.live_filter()
        )
    if link is None or record is None or not permissions.can_read_with_link(link, record, now=now):
        raise library.not_found(visualization_id)
    return record, link.id


class TooManyAttemptsError(library.HeadlightError):
    """This client has tried too many links that did not work; it must wait."""

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"Too many share links that did not work were tried from here. Try again in {seconds} s."
        )


def parse_id(text: str) -> int:
    """The analysis id of a link; 0 (which no analysis has) when it is not a positive number."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else 0


def open_link(
    *,
    session: Session,
    limiter: RateLimiter,
    client: str,
    visualization_id: int,
    token: str,
    now: datetime,
) -> tuple[Visualization, int]:
    """`open_shared` for a visitor, refused while ``client`` has used up its failed attempts.

    Only failures count, so people opening a working link are never slowed down.
    """
    key = client_key(client)
    status = limiter.status(key, SHARE_LIMIT_ROLE)
    if status.remaining <= 0:
        raise TooManyAttemptsError(status.reset_in_seconds)
    try:
        return open_shared(session=session, visualization_id=visualization_id, token=token, now=now)
    except library.NotFoundError:
        with contextlib.suppress(RateLimitedError):
            limiter.acquire(key, SHARE_LIMIT_ROLE)
        raise


def record_view(*, session: Session, visualization_id: int, link_id: int) -> None:
    """Audit one visitor opening an analysis through a link (once per browser session)."""
    audit.record(
        session=session,
        actor_id=None,
        action=audit.ANALYSIS_VIEW,
        target_type=audit.VISUALIZATION,
        target_id=visualization_id,
        detail={"via": "share link", "link": link_id},
    )
