"""Comparisons and head atlases are shared, listed, exported and trashed under the same
rules as analyses (both databases)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access.permissions import Scope
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import ANONYMOUS, Role
from core.domain.owned import RecordKind
from core.store import analyses as library
from core.store import comparisons as compare_store
from core.store import owned, sharing
from core.store.comparisons import ComparisonQuery
from db.models import AuditEvent, utcnow
from tests.core.store.test_batch import _atlas, _upload
from tests.core.store.test_comparisons import _save
from tests.factories import make_analysis
from tests.fixtures.databases import UserFactory


def _actions(session: Session, target_type: str, target_id: int) -> list[str]:
    query = select(AuditEvent.action).where(
        AuditEvent.target_type == target_type, AuditEvent.target_id == target_id
    )
    return list(session.scalars(query.order_by(AuditEvent.id)))


@pytest.mark.parametrize("kind", [RecordKind.COMPARISON, RecordKind.ATLAS])
def test_link_opens_its_record_until_revoked(
    session: Session, make_user: UserFactory, kind: RecordKind
) -> None:
    """A link opens exactly its own record of its own kind, for anyone, until revoked."""
    alice, bob = make_user("alice"), make_user("bob")
    if kind is RecordKind.COMPARISON:
        record_id, _ = _save(session, alice, title="a vs b")
    else:
        record_id = _atlas(session, alice, _upload(session, alice))
    # An analysis with the same id must not open through this record's link.
    analysis_id = library.save_analysis(
        session=session, viewer=alice, analysis=make_analysis("other"), title="x", tags=""
    )
    link = sharing.create_link(
        session=session, viewer=alice, record_id=record_id, expires_in_days=None, now=utcnow(), kind=kind
    )
    record, link_id = sharing.open_shared(
        session=session, record_id=record_id, token=link.token, now=utcnow(), kind=kind
    )
    assert (record.id, link_id) == (record_id, link.id)
    with pytest.raises(NotFoundError):
        sharing.open_shared(session=session, record_id=analysis_id, token=link.token, now=utcnow())
    other_kind = RecordKind.ATLAS if kind is RecordKind.COMPARISON else RecordKind.COMPARISON
    with pytest.raises(NotFoundError):
        sharing.open_shared(
            session=session, record_id=record_id, token=link.token, now=utcnow(), kind=other_kind
        )
    with pytest.raises(NotFoundError):  # bob cannot read alice's private record, let alone share it
        sharing.create_link(
            session=session, viewer=bob, record_id=record_id, expires_in_days=1, now=utcnow(), kind=kind
        )
    [row] = sharing.list_links(session=session, viewer=alice, record_id=record_id, now=utcnow(), kind=kind)
    assert row.status == "active"
    sharing.revoke_link(
        session=session, viewer=alice, record_id=record_id, link_id=link.id, now=utcnow(), kind=kind
    )
    with pytest.raises(NotFoundError, match=f"#{record_id} was not found"):
        sharing.open_shared(session=session, record_id=record_id, token=link.token, now=utcnow(), kind=kind)
    sharing.record_view(session=session, record_id=record_id, link_id=link.id, kind=kind)
    target = "comparison" if kind is RecordKind.COMPARISON else "atlas"
    assert _actions(session, target, record_id)[-3:] == ["share.create", "share.revoke", f"{target}.view"]


def test_expired_links_and_deleted_records_open_nothing(session: Session, make_user: UserFactory) -> None:
    alice = make_user("alice")
    record_id, _ = _save(session, alice)
    now = utcnow()
    link = sharing.create_link(
        session=session,
        viewer=alice,
        record_id=record_id,
        expires_in_days=1,
        now=now,
        kind=RecordKind.COMPARISON,
    )
    later = now + timedelta(days=2)
    with pytest.raises(NotFoundError):
        sharing.open_shared(
            session=session, record_id=record_id, token=link.token, now=later, kind=RecordKind.COMPARISON
        )
    fresh = sharing.create_link(
        session=session,
        viewer=alice,
        record_id=record_id,
        expires_in_days=None,
        now=now,
        kind=RecordKind.COMPARISON,
    )
    owned.delete(session=session, viewer=alice, kind=RecordKind.COMPARISON, record_id=record_id)
    with pytest.raises(NotFoundError):
        sharing.open_shared(
            session=session, record_id=record_id, token=fresh.token, now=now, kind=RecordKind.COMPARISON
        )


def test_public_switch_for_comparisons_is_owner_only_and_audited(
    session: Session, make_user: UserFactory
) -> None:
    alice, bob, admin = make_user("alice"), make_user("bob"), make_user("root", Role.ADMIN)
    record_id, _ = _save(session, alice)
    with pytest.raises(NotFoundError):
        owned.open_readable(
            session=session, viewer=ANONYMOUS, kind=RecordKind.COMPARISON, record_id=record_id
        )
    owned.set_public(
        session=session, viewer=alice, kind=RecordKind.COMPARISON, record_id=record_id, public=True
    )
    assert owned.open_readable(
        session=session, viewer=ANONYMOUS, kind=RecordKind.COMPARISON, record_id=record_id
    )
    with pytest.raises(PermissionDeniedError):
        owned.set_public(
            session=session, viewer=bob, kind=RecordKind.COMPARISON, record_id=record_id, public=False
        )
    owned.set_public(
        session=session, viewer=admin, kind=RecordKind.COMPARISON, record_id=record_id, public=False
    )
    assert _actions(session, "comparison", record_id)[-2:] == ["comparison.publish", "comparison.unpublish"]


def test_comparisons_search_scope_trash_and_restore(session: Session, make_user: UserFactory) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    fox, _ = _save(session, alice, title="Fox heads")
    other, _ = _save(session, alice, title="Another pair")
    public, _ = _save(session, bob, title="bob's public one")
    owned.set_public(session=session, viewer=bob, kind=RecordKind.COMPARISON, record_id=public, public=True)

    def ids(**query: object) -> list[int]:
        return [
            r.id
            for r in compare_store.list_saved_comparisons(
                session=session, viewer=alice, query=ComparisonQuery(**query)
            )
        ]

    assert ids() == [public, other, fox]
    assert ids(scope=Scope.MINE) == [other, fox]
    assert ids(scope=Scope.PUBLIC) == [public]
    assert ids(text="HEADS") == [fox]
    assert ids(text="lazy dog") == [public, other, fox]  # the compared text matches too
    assert ids(text="100%") == []  # LIKE wildcards are literal
    assert ids(model_id="tiny-b") == [public, other, fox] and ids(model_id="nope") == []
    assert ids(limit=2) == [public, other] and ids(limit=2, offset=2) == [fox]

    with pytest.raises(PermissionDeniedError):
        owned.delete(session=session, viewer=alice, kind=RecordKind.COMPARISON, record_id=public)
    owned.delete(session=session, viewer=alice, kind=RecordKind.COMPARISON, record_id=fox)
    assert ids() == [public, other] and ids(trash=True) == [fox]
    assert [
        r.id
        for r in compare_store.list_saved_comparisons(
            session=session, viewer=bob, query=ComparisonQuery(trash=True)
        )
    ] == []
    with pytest.raises(NotFoundError):
        compare_store.open_comparison(session=session, viewer=alice, comparison_id=fox)
    owned.restore(session=session, viewer=alice, kind=RecordKind.COMPARISON, record_id=fox)
    assert ids() == [public, other, fox]
    assert _actions(session, "comparison", fox)[-2:] == ["comparison.delete", "comparison.restore"]


def test_comparison_exports_follow_read_rules(session: Session, make_user: UserFactory) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    record_id, similarity = _save(session, alice, title="=HYPERLINK(1)")
    document = json.loads(
        compare_store.export_comparison(session=session, viewer=alice, comparison_id=record_id, kind="json")
    )
    assert document["format"] == compare_store.EXPORT_FORMAT and document["title"] == "=HYPERLINK(1)"
    assert document["model_a"]["id"] == "tiny-a" and len(document["result"]["similarity"]) > 0
    data = compare_store.export_comparison(session=session, viewer=alice, comparison_id=record_id, kind="csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == similarity.shape[0] + similarity.shape[1]  # every head of A, then of B
    first = rows[0]
    assert (first["side"], first["layer"], first["head"]) == ("A", "0", "0")
    assert float(first["similarity"]) == pytest.approx(float(similarity[0].max()), abs=1e-5)
    with pytest.raises(NotFoundError):
        compare_store.export_comparison(session=session, viewer=bob, comparison_id=record_id, kind="json")
    with pytest.raises(library.HeadlightError, match="Unknown export format"):
        compare_store.export_comparison(session=session, viewer=alice, comparison_id=record_id, kind="xml")
    assert _actions(session, "comparison", record_id)[-2:] == ["comparison.export", "comparison.export"]


def test_share_urls_name_their_kind() -> None:
    base = "https://h.example.org"
    assert sharing.share_url(base, 5, "t") == f"{base}/shared?id=5&token=t"
    assert sharing.share_url(base, 5, "t", RecordKind.ATLAS) == f"{base}/shared?kind=atlas&id=5&token=t"
    assert sharing.parse_kind("") is RecordKind.ANALYSIS
    assert sharing.parse_kind("comparison") is RecordKind.COMPARISON
    assert sharing.parse_kind("visualization") is None
