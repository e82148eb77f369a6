"""Share links and the public switch, on SQLite and Postgres: tokens are random and stored
hashed, expire, revoke, are listed for their owner, and every failure looks the same."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import ANONYMOUS
from core.domain.owned import RecordKind
from core.service.rate_limit import RateLimiter
from core.store import owned, sharing
from db.models import AuditEvent, ShareLink, utcnow
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save


def missing_message(session: Session, visualization_id: int) -> str:
    with pytest.raises(NotFoundError) as caught:
        owned.open_readable(
            session=session, viewer=ANONYMOUS, kind=RecordKind.ANALYSIS, record_id=visualization_id
        )
    return str(caught.value)


def test_token_is_random_long_and_stored_only_hashed(session: Session, make_user: UserFactory) -> None:
    owner = make_user("owner")
    record = save(session, owner, "shared text")
    first = sharing.create_link(
        session=session, viewer=owner, record_id=record.id, expires_in_days=None, now=utcnow()
    )
    second = sharing.create_link(
        session=session, viewer=owner, record_id=record.id, expires_in_days=1, now=utcnow()
    )
    assert first.token != second.token and len(first.token) >= 43  # 256 bits in base64url
    stored = session.scalars(select(ShareLink.token_hash).order_by(ShareLink.id)).all()
    assert stored == [hashlib.sha256(t.encode()).hexdigest() for t in (first.token, second.token)]
    assert all(first.token not in str(row) for row in stored)


def test_link_opens_until_revoked_then_reads_as_missing(session: Session, make_user: UserFactory) -> None:
    """The same message for a revoked link, a wrong token, another analysis's token and no such id."""
    owner = make_user("owner")
    record = save(session, owner, "shared text")
    other = save(session, owner, "other text")
    link = sharing.create_link(
        session=session, viewer=owner, record_id=record.id, expires_in_days=None, now=utcnow()
    )
    other_link = sharing.create_link(
        session=session, viewer=owner, record_id=other.id, expires_in_days=None, now=utcnow()
    )
    opened, link_id = sharing.open_shared(
        session=session, record_id=record.id, token=link.token, now=utcnow()
    )
    assert (opened.id, link_id) == (record.id, link.id)
    sharing.revoke_link(session=session, viewer=owner, record_id=record.id, link_id=link.id, now=utcnow())
    expected = missing_message(session, record.id)
    for token in (link.token, other_link.token, "x" * 43, ""):
        with pytest.raises(NotFoundError) as caught:
            sharing.open_shared(session=session, record_id=record.id, token=token, now=utcnow())
        assert str(caught.value) == expected
    assert missing_message(session, 999_999) == expected.replace(str(record.id), "999999")


def test_expiry_and_deletion_end_a_link(session: Session, make_user: UserFactory) -> None:
    owner = make_user("owner")
    record = save(session, owner, "shared text")
    now = utcnow()
    link = sharing.create_link(session=session, viewer=owner, record_id=record.id, expires_in_days=1, now=now)
    sharing.open_shared(session=session, record_id=record.id, token=link.token, now=now + timedelta(hours=23))
    with pytest.raises(NotFoundError):
        sharing.open_shared(
            session=session, record_id=record.id, token=link.token, now=now + timedelta(days=2)
        )
    owned.delete(session=session, viewer=owner, kind=RecordKind.ANALYSIS, record_id=record.id)
    with pytest.raises(NotFoundError):
        sharing.open_shared(session=session, record_id=record.id, token=link.token, now=now)


def test_links_are_listed_with_status_for_the_owner(session: Session, make_user: UserFactory) -> None:
    owner = make_user("owner")
    record = save(session, owner, "shared text")
    now = utcnow()
    kept = sharing.create_link(
        session=session, viewer=owner, record_id=record.id, expires_in_days=None, now=now
    )
    short = sharing.create_link(
        session=session, viewer=owner, record_id=record.id, expires_in_days=1, now=now
    )
    gone = sharing.create_link(session=session, viewer=owner, record_id=record.id, expires_in_days=7, now=now)
    sharing.revoke_link(session=session, viewer=owner, record_id=record.id, link_id=gone.id, now=now)
    rows = sharing.list_links(session=session, viewer=owner, record_id=record.id, now=now + timedelta(days=2))
    assert {row.id: row.status for row in rows} == {
        kept.id: "active",
        short.id: "expired",
        gone.id: "revoked",
    }
    with pytest.raises(NotFoundError):
        sharing.revoke_link(session=session, viewer=owner, record_id=record.id, link_id=9999, now=now)


def test_bad_expiry_is_refused(session: Session, make_user: UserFactory) -> None:
    owner = make_user("owner")
    record = save(session, owner, "shared text")
    with pytest.raises(ValueError, match="1 to 365 days"):
        sharing.create_link(
            session=session, viewer=owner, record_id=record.id, expires_in_days=0, now=utcnow()
        )


def test_public_switch_is_audited_and_owner_only(session: Session, make_user: UserFactory) -> None:
    owner, other = make_user("owner"), make_user("other")
    record = save(session, owner, "shared text")
    owned.set_public(
        session=session, viewer=owner, kind=RecordKind.ANALYSIS, record_id=record.id, public=True
    )
    owned.set_public(
        session=session, viewer=owner, kind=RecordKind.ANALYSIS, record_id=record.id, public=True
    )
    assert (
        owned.open_readable(
            session=session, viewer=ANONYMOUS, kind=RecordKind.ANALYSIS, record_id=record.id
        ).id
        == record.id
    )
    with pytest.raises(PermissionDeniedError):  # reads it (public) but cannot change it
        owned.set_public(
            session=session, viewer=other, kind=RecordKind.ANALYSIS, record_id=record.id, public=False
        )
    owned.set_public(
        session=session, viewer=owner, kind=RecordKind.ANALYSIS, record_id=record.id, public=False
    )
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_id == record.id).order_by(AuditEvent.id)
    ).all()
    assert actions[-2:] == ["analysis.publish", "analysis.unpublish"]


def test_guessing_is_rate_limited_per_client(session: Session, make_user: UserFactory) -> None:
    """Failed lookups count per client; once used up even a right token waits; others are unaffected."""
    owner = make_user("owner")
    record = save(session, owner, "shared text")
    link = sharing.create_link(
        session=session, viewer=owner, record_id=record.id, expires_in_days=None, now=utcnow()
    )
    limiter = RateLimiter({sharing.SHARE_LIMIT_ROLE: "3/minute"})

    def attempt(client: str, token: str) -> None:
        sharing.open_link(
            session=session,
            limiter=limiter,
            client=client,
            record_id=record.id,
            token=token,
            now=utcnow(),
        )

    attempt("10.0.0.1", link.token)  # successes never count
    for _ in range(3):
        with pytest.raises(NotFoundError):
            attempt("10.0.0.1", "guess")
    with pytest.raises(sharing.TooManyAttemptsError, match="Try again in"):
        attempt("10.0.0.1", link.token)
    attempt("10.0.0.2", link.token)


def test_share_url_targets_the_shared_page() -> None:
    origin = sharing.origin_of("https://headlight.example.org/history?x=1")
    assert sharing.share_url(origin, 12, "abc-_") == "https://headlight.example.org/shared?id=12&token=abc-_"
    assert sharing.share_url("https://example.org/tools/headlight/", 3, "t").startswith(
        "https://example.org/tools/headlight/shared?id=3"
    )
    assert sharing.parse_id("12") == 12 and sharing.parse_id("12abc") == 0 and sharing.parse_id("") == 0
