"""Sharing a saved record (an analysis, a comparison or a head atlas): the public switch and
share links.

A share link is ``/shared?id=<record id>&token=<token>`` for an analysis and
``/shared?kind=<comparison|atlas>&id=…&token=…`` for the other kinds. The token is 256
random bits (`secrets.token_urlsafe`), shown once to its creator and stored only as its
sha256. Opening a link compares that hash with the live links of the named record in
constant time (`hmac.compare_digest`). A wrong, expired or revoked token, a token of
another record and an id that does not exist all raise the same `NotFoundError` with the
same message. Guessing is rate-limited per client by the caller (`SHARE_LIMIT_ROLE`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session

from core.access import audit, permissions
from core.access.permissions import SavedModel, SavedRecord
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import Viewer
from core.service.rate_limit import RateLimitedError, RateLimiter
from core.store import analyses as library
from core.store import batch
from core.store import comparisons as compare_store
from db import sharing as sharing_db
from db.models import Atlas, Comparison, ShareLink, Visualization

TOKEN_BYTES = 32
SHARED_PATH = "shared"
# The `core.service.rate_limit.RateLimiter` role under which failed lookups are counted.
SHARE_LIMIT_ROLE = "anonymous"
EXPIRY_DAYS: dict[str, int | None] = {"Never": None, "1 day": 1, "7 days": 7, "30 days": 30}
MAX_EXPIRY_DAYS = 365


class RecordKind(StrEnum):
    """What a share link opens; the value is the ``kind`` of its address."""

    ANALYSIS = "analysis"
    COMPARISON = "comparison"
    ATLAS = "atlas"


@dataclass(frozen=True)
class _KindRules:
    model: SavedModel
    noun: str
    audit_target: str
    publish: tuple[str, str]  # audit actions for public on / off
    # Opens a live record for a signed-in viewer under `core.access.permissions` (NotFoundError otherwise).
    open_for: Callable[[Session, Viewer, int], SavedRecord]


_RULES: dict[RecordKind, _KindRules] = {
    RecordKind.ANALYSIS: _KindRules(
        Visualization,
        "analysis",
        audit.VISUALIZATION,
        (audit.ANALYSIS_PUBLISH, audit.ANALYSIS_UNPUBLISH),
        lambda s, v, i: library.open_saved(session=s, viewer=v, visualization_id=i),
    ),
    RecordKind.COMPARISON: _KindRules(
        Comparison,
        "comparison",
        audit.COMPARISON,
        (audit.COMPARISON_PUBLISH, audit.COMPARISON_UNPUBLISH),
        lambda s, v, i: compare_store.open_comparison_record(session=s, viewer=v, comparison_id=i),
    ),
    RecordKind.ATLAS: _KindRules(
        Atlas,
        "head atlas",
        audit.ATLAS,
        (audit.ATLAS_PUBLISH, audit.ATLAS_UNPUBLISH),
        lambda s, v, i: batch.open_atlas(session=s, viewer=v, atlas_id=i),
    ),
}


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


def share_url(base: str, record_id: int, token: str, kind: RecordKind = RecordKind.ANALYSIS) -> str:
    """The absolute link under ``base``, the address the app is served at."""
    query = {"id": record_id, "token": token}
    if kind is not RecordKind.ANALYSIS:
        query = {"kind": kind.value, **query}
    return f"{base.rstrip('/')}/{SHARED_PATH}?{urlencode(query)}"


def parse_kind(text: str) -> RecordKind | None:
    """The kind named by a link's ``kind`` parameter (analysis when absent); None if unknown."""
    try:
        return RecordKind(text or RecordKind.ANALYSIS.value)
    except ValueError:
        return None


def client_key(client: str) -> str:
    """The rate-limit key of one client's share-link lookups."""
    return f"share-token:{client}"


def not_found(kind: RecordKind, record_id: int) -> NotFoundError:
    """The one answer for a record that is missing, deleted, private or behind a bad link."""
    if kind is RecordKind.ANALYSIS:
        return library.not_found(record_id)
    return NotFoundError(
        f"{_RULES[kind].noun.capitalize()} #{record_id} was not found. It may have been deleted."
    )


def _shareable(session: Session, viewer: Viewer, kind: RecordKind, record_id: int) -> SavedRecord:
    rules = _RULES[kind]
    record = rules.open_for(session, viewer, record_id)
    if not permissions.can_share(viewer, record):
        raise PermissionDeniedError(f"Only the owner of a {rules.noun} (or an admin) can share it.")
    return record


def _audit(
    session: Session, viewer: Viewer, action: str, kind: RecordKind, record_id: int, **detail: object
) -> None:
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action=action,
        target_type=_RULES[kind].audit_target,
        target_id=record_id,
        detail=detail or None,
    )


def set_public(
    *, session: Session, viewer: Viewer, record_id: int, public: bool, kind: RecordKind = RecordKind.ANALYSIS
) -> None:
    """Make a record readable by everyone (guests included), or private again."""
    record = _shareable(session, viewer, kind, record_id)
    if record.is_public == public:
        return
    record.is_public = public
    session.flush()
    on, off = _RULES[kind].publish
    _audit(session, viewer, on if public else off, kind, record.id)


def create_link(
    *,
    session: Session,
    viewer: Viewer,
    record_id: int,
    expires_in_days: int | None,
    now: datetime,
    kind: RecordKind = RecordKind.ANALYSIS,
) -> NewLink:
    """A new link to one record; ``expires_in_days`` None means it lasts until revoked."""
    record = _shareable(session, viewer, kind, record_id)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise library.HeadlightError(f"A link lasts 1 to {MAX_EXPIRY_DAYS} days, or until revoked.")
    assert viewer.user_id is not None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    link = sharing_db.create_link(
        session=session,
        model=_RULES[kind].model,
        record_id=record.id,
        token_hash=token_hash(token),
        created_by=viewer.user_id,
        expires_at=expires_at,
    )
    _audit(
        session, viewer, audit.SHARE_CREATE, kind, record.id, link=link.id, expires_in_days=expires_in_days
    )
    return NewLink(id=link.id, token=token, expires_at=expires_at)


def _status(link: ShareLink, now: datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    return "active"


def list_links(
    *, session: Session, viewer: Viewer, record_id: int, now: datetime, kind: RecordKind = RecordKind.ANALYSIS
) -> list[LinkRow]:
    """Every link of a record the viewer may share, newest first."""
    record = _shareable(session, viewer, kind, record_id)
    return [
        LinkRow(
            id=link.id,
            created_at=link.created_at,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
            status=_status(link, now),
        )
        for link in sharing_db.links_of(session=session, model=_RULES[kind].model, record_id=record.id)
    ]


def revoke_link(
    *,
    session: Session,
    viewer: Viewer,
    record_id: int,
    link_id: int,
    now: datetime,
    kind: RecordKind = RecordKind.ANALYSIS,
) -> None:
    """Stop a link from working; the link stays listed as revoked."""
    rules = _RULES[kind]
    record = _shareable(session, viewer, kind, record_id)
    link = sharing_db.get_link(session=session, link_id=link_id)
    if link is None or permissions.link_target(link, rules.model) != record.id:
        raise NotFoundError(f"Share link #{link_id} was not found on {rules.noun} #{record.id}.")
    if link.revoked_at is None:
        sharing_db.revoke(session=session, link=link, at=now)
        _audit(session, viewer, audit.SHARE_REVOKE, kind, record.id, link=link.id)


def _matching_link(links: list[ShareLink], token: str) -> ShareLink | None:
    wanted = token_hash(token)
    found = None
    # Every candidate is compared, so the time taken does not tell which one matched.
    for link in links:
        if hmac.compare_digest(link.token_hash, wanted):
            found = link
    return found


def open_shared(
    *, session: Session, record_id: int, token: str, now: datetime, kind: RecordKind = RecordKind.ANALYSIS
) -> tuple[SavedRecord, int]:
    """The record a live link opens and that link's id; `NotFoundError` otherwise."""
    model = _RULES[kind].model
    links = sharing_db.live_links(session=session, model=model, record_id=record_id, now=now)
    link = _matching_link(links, token) if token else None
    record = None
    if link is not None:
        record = sharing_db.get_live_record(
            session=session, model=model, record_id=record_id, live=permissions.live_filter(model)
        )
    if link is None or record is None or not permissions.can_read_with_link(link, record, now=now):
        raise not_found(kind, record_id)
    return record, link.id


class TooManyAttemptsError(library.HeadlightError):
    """This client has tried too many links that did not work; it must wait."""

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"Too many share links that did not work were tried from here. Try again in {seconds} s."
        )


def parse_id(text: str) -> int:
    """The record id of a link; 0 (which no record has) when it is not a positive number."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else 0


def open_link(
    *,
    session: Session,
    limiter: RateLimiter,
    client: str,
    record_id: int,
    token: str,
    now: datetime,
    kind: RecordKind = RecordKind.ANALYSIS,
) -> tuple[SavedRecord, int]:
    """`open_shared` for a visitor, refused while ``client`` has used up its failed attempts.

    Only failures count, so people opening a working link are never slowed down.
    """
    key = client_key(client)
    status = limiter.status(key, SHARE_LIMIT_ROLE)
    if status.remaining <= 0:
        raise TooManyAttemptsError(status.reset_in_seconds)
    try:
        return open_shared(session=session, record_id=record_id, token=token, now=now, kind=kind)
    except NotFoundError:
        with contextlib.suppress(RateLimitedError):
            limiter.acquire(key, SHARE_LIMIT_ROLE)
        raise


def record_view(
    *, session: Session, record_id: int, link_id: int, kind: RecordKind = RecordKind.ANALYSIS
) -> None:
    """Audit one visitor opening a record through a link (once per browser session)."""
    audit.record(
        session=session,
        actor_id=None,
        action=audit.VIEW_ACTIONS[_RULES[kind].audit_target],
        target_type=_RULES[kind].audit_target,
        target_id=record_id,
        detail={"via": "share link", "link": link_id},
    )
