"""Share links to a saved record (an analysis, a comparison or a head atlas). The public switch
is `core.store.owned.set_public`.

A share link is ``/shared?id=<record id>&token=<token>`` for an analysis and
``/shared?kind=<comparison|atlas>&id=…&token=…`` for the other kinds. The token is 256
random bits (`secrets.token_urlsafe`), shown once to its creator and stored only as its
sha256. Opening a link compares that hash with the live links of the named record in
constant time (`hmac.compare_digest`). A wrong, expired or revoked token, a token of
another record and an id that does not exist all raise the same `NotFoundError` with the
same message (`core.store.owned.not_found`). Guessing is rate-limited per client: `open_link`
takes the limiter (`SHARE_LIMIT_ROLE`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from sqlalchemy.orm import Session

from core.access import audit, permissions
from core.access.permissions import SavedRecord
from core.domain.errors import HeadlightError, NotFoundError, PermissionDeniedError
from core.domain.identity import Viewer
from core.domain.owned import LINK_KINDS, RecordKind
from core.store import owned
from db import sharing as sharing_db
from db.models import ShareLink, utcnow

TOKEN_BYTES = 32
SHARED_PATH = "shared"
# The limiter role under which failed lookups are counted.
SHARE_LIMIT_ROLE = "anonymous"
EXPIRY_DAYS: dict[str, int | None] = {"Never": None, "1 day": 1, "7 days": 7, "30 days": 30}
MAX_EXPIRY_DAYS = 365


class AttemptLimiter(Protocol):
    """Counts a client's failed lookups (`core.service.rate_limit.RateLimiter` is one).

    ``acquire`` counts one attempt; beyond the limit it raises a `HeadlightError`.
    """

    def status(self, user_key: str, role: str) -> AttemptStatus: ...

    def acquire(self, user_key: str, role: str) -> object: ...


class AttemptStatus(Protocol):
    remaining: int

    @property
    def reset_in_seconds(self) -> int: ...


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
    """The kind named by a link's ``kind`` parameter (analysis when absent); None if no link opens it."""
    kind = RecordKind._value2member_map_.get(text or RecordKind.ANALYSIS.value)
    return kind if kind in LINK_KINDS else None


def client_key(client: str) -> str:
    """The rate-limit key of one client's share-link lookups."""
    return f"share-token:{client}"


def _shareable(session: Session, viewer: Viewer, kind: RecordKind, record_id: int) -> SavedRecord:
    if kind not in LINK_KINDS:
        raise PermissionDeniedError(f"{owned.KINDS[kind].label}s have no share links.")
    return owned.open_shareable(session=session, viewer=viewer, kind=kind, record_id=record_id)


def _audit(
    session: Session, viewer: Viewer | None, action: str, kind: RecordKind, record: object, **detail: object
) -> None:
    owned.audit(session=session, viewer=viewer, kind=kind, action=action, record=record, **detail)


def create_link(
    *,
    session: Session,
    viewer: Viewer,
    record_id: int,
    expires_in_days: int | None,
    now: datetime | None = None,
    kind: RecordKind = RecordKind.ANALYSIS,
) -> NewLink:
    """A new link to one record; ``expires_in_days`` None means it lasts until revoked.

    ``now`` (here and below) is the current time unless a caller fixes it.
    """
    now = now or utcnow()
    record = _shareable(session, viewer, kind, record_id)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise HeadlightError(f"A link lasts 1 to {MAX_EXPIRY_DAYS} days, or until revoked.")
    assert viewer.user_id is not None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    link = sharing_db.create_link(
        session=session,
        model=owned.KINDS[kind].model,
        record_id=record.id,
        token_hash=token_hash(token),
        created_by=viewer.user_id,
        expires_at=expires_at,
    )
    _audit(session, viewer, audit.SHARE_CREATE, kind, record, link=link.id, expires_in_days=expires_in_days)
    return NewLink(id=link.id, token=token, expires_at=expires_at)


def _status(link: ShareLink, now: datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    return "active"


def list_links(
    *,
    session: Session,
    viewer: Viewer,
    record_id: int,
    now: datetime | None = None,
    kind: RecordKind = RecordKind.ANALYSIS,
) -> list[LinkRow]:
    """Every link of a record the viewer may share, newest first."""
    now = now or utcnow()
    record = _shareable(session, viewer, kind, record_id)
    return [
        LinkRow(
            id=link.id,
            created_at=link.created_at,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
            status=_status(link, now),
        )
        for link in sharing_db.links_of(session=session, model=owned.KINDS[kind].model, record_id=record.id)
    ]


def revoke_link(
    *,
    session: Session,
    viewer: Viewer,
    record_id: int,
    link_id: int,
    now: datetime | None = None,
    kind: RecordKind = RecordKind.ANALYSIS,
) -> None:
    """Stop a link from working; the link stays listed as revoked."""
    now = now or utcnow()
    rules = owned.KINDS[kind]
    record = _shareable(session, viewer, kind, record_id)
    link = sharing_db.get_link(session=session, link_id=link_id)
    if link is None or permissions.link_target(link, rules.model) != record.id:
        raise NotFoundError(f"Share link #{link_id} was not found on {rules.noun} #{record.id}.")
    if link.revoked_at is None:
        sharing_db.revoke(session=session, link=link, at=now)
        _audit(session, viewer, audit.SHARE_REVOKE, kind, record, link=link.id)


def _matching_link(links: list[ShareLink], token: str) -> ShareLink | None:
    wanted = token_hash(token)
    found = None
    # Every candidate is compared, so the time taken does not tell which one matched.
    for link in links:
        if hmac.compare_digest(link.token_hash, wanted):
            found = link
    return found


def open_shared(
    *,
    session: Session,
    record_id: int,
    token: str,
    now: datetime | None = None,
    kind: RecordKind = RecordKind.ANALYSIS,
) -> tuple[SavedRecord, int]:
    """The record a live link opens and that link's id; `NotFoundError` otherwise."""
    now = now or utcnow()
    if kind not in LINK_KINDS:
        raise owned.not_found(kind, record_id)
    model = owned.KINDS[kind].model
    links = sharing_db.live_links(session=session, model=model, record_id=record_id, now=now)
    link = _matching_link(links, token) if token else None
    record = None
    if link is not None:
        record = sharing_db.get_live_record(
            session=session, model=model, record_id=record_id, live=permissions.live_filter(model)
        )
    if link is None or record is None or not permissions.can_read_with_link(link, record, now=now):
        raise owned.not_found(kind, record_id)
    return record, link.id


class TooManyAttemptsError(HeadlightError):
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
    limiter: AttemptLimiter,
    client: str,
    record_id: int,
    token: str,
    now: datetime | None = None,
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
        # Past the limit `acquire` refuses; the next call is refused up front.
        with contextlib.suppress(HeadlightError):
            limiter.acquire(key, SHARE_LIMIT_ROLE)
        raise


def record_view(
    *, session: Session, record_id: int, link_id: int, kind: RecordKind = RecordKind.ANALYSIS
) -> None:
    """Audit one visitor opening a record through a link (once per browser session)."""
    _audit(session, None, owned.action(kind, "view"), kind, record_id, via="share link", link=link_id)
