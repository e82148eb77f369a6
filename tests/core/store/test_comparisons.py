"""Saved comparisons on both databases: save, list, reopen without models, permissions."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.attention.comparison import CompareRequest, compare
from core.domain.analysis import GenerationParams
from core.domain.errors import HeadlightError, NotFoundError, PermissionDeniedError
from core.domain.identity import ANONYMOUS, Role, Viewer
from core.store import comparisons as compare_store
from db.models import AuditEvent, Grant
from db.models import Comparison as ComparisonRecord
from tests.factories import make_analysis
from tests.fixtures.databases import UserFactory

TEXT = "The quick brown fox jumps over the lazy dog"


def _request() -> CompareRequest:
    return CompareRequest.of(
        model_a=("tiny-a", "causal"),
        model_b=("tiny-b", "causal"),
        text=TEXT,
        generate=False,
        generation=GenerationParams(),
        top_k_next=5,
    )


def _save(session: Session, viewer: Viewer, title: str = "") -> tuple[int, np.ndarray]:
    a = make_analysis(TEXT, model_id="tiny-a", n_layers=2, n_heads=2)
    b = make_analysis(TEXT, model_id="tiny-b", n_layers=1, n_heads=3, seed=1)
    comparison = compare(a, b)
    record_id = compare_store.save_comparison(
        session=session, viewer=viewer, comparison=comparison, request=_request(), title=title
    )
    return record_id, comparison.similarity


def test_saved_comparison_reopens_without_models(session: Session, make_user: UserFactory) -> None:
    """The owner lists and reopens it: same matrix, analyses, request; audit logged."""
    alice = make_user("alice")
    record_id, similarity = _save(session, alice)
    [row] = compare_store.list_saved_comparisons(session=session, viewer=alice)
    assert (row.id, row.model_a_id, row.model_b_id) == (record_id, "tiny-a", "tiny-b")
    assert row.title.startswith("tiny-a vs tiny-b: The quick")
    outcome = compare_store.open_comparison(session=session, viewer=alice, comparison_id=record_id)
    assert outcome.comparison is not None and outcome.a is not None
    np.testing.assert_array_equal(outcome.comparison.similarity, similarity)
    assert outcome.a.tokens == TEXT.split() and outcome.a.attention is None
    assert outcome.request == _request()
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == record_id))
    assert "comparison.save" in list(actions)


def test_private_by_default_shared_and_public(session: Session, make_user: UserFactory) -> None:
    """Others see nothing until a grant or publication; admins see everything."""
    alice, bob, admin = make_user("alice"), make_user("bob"), make_user("root", Role.ADMIN)
    record_id, _ = _save(session, alice, title="mine")
    assert compare_store.list_saved_comparisons(session=session, viewer=bob) == []
    with pytest.raises(NotFoundError):
        compare_store.open_comparison(session=session, viewer=bob, comparison_id=record_id)
    assert compare_store.open_comparison(session=session, viewer=admin, comparison_id=record_id)

    assert alice.user_id is not None and bob.user_id is not None
    session.add(Grant(comparison_id=record_id, grantee_id=bob.user_id, granted_by=alice.user_id))
    session.flush()
    assert [r.id for r in compare_store.list_saved_comparisons(session=session, viewer=bob)] == [record_id]
    assert compare_store.open_comparison(session=session, viewer=bob, comparison_id=record_id)

    with pytest.raises(NotFoundError):
        compare_store.open_comparison(session=session, viewer=ANONYMOUS, comparison_id=record_id)
    record = session.get(ComparisonRecord, record_id)
    assert record is not None
    record.is_public = True
    session.flush()
    assert compare_store.open_comparison(session=session, viewer=ANONYMOUS, comparison_id=record_id)


def test_viewers_cannot_save(session: Session, make_user: UserFactory) -> None:
    """Saving needs an analyst or admin."""
    with pytest.raises(PermissionDeniedError):
        _save(session, make_user("vera", Role.VIEWER))


def test_oversized_result_is_refused(session: Session, make_user: UserFactory, monkeypatch) -> None:
    """A result over the store's limit gets a message; nothing is written."""
    monkeypatch.setattr(compare_store, "MAX_ATTENTION_BYTES", 100)
    with pytest.raises(HeadlightError, match="can be saved"):
        _save(session, make_user("alice"))
    assert session.scalars(select(ComparisonRecord)).first() is None
