"""Saved comparisons as the screens use them (History's comparisons, Compare's save and open):
one function per user action, each in its own transaction, returning plain views.

Deleting, restoring and sharing a comparison are the generic `core.service.records` actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.attention.comparison import CompareOutcome, CompareRequest, Comparison
from core.domain.identity import Viewer
from core.domain.owned import Access, ComparisonRow, Download, RecordKind
from core.store import comparisons as compare_store
from core.store import owned
from core.store.comparisons import ComparisonQuery
from core.store.transaction import unit_of_work

COMPARISON = RecordKind.COMPARISON
MIME = {"json": "application/json", "csv": "text/csv"}


@dataclass(frozen=True)
class SavedComparisonView:
    """An opened saved comparison: its facts, what the viewer may do, and (when asked for)
    the comparison itself, re-rendered from stored data (neither model runs)."""

    id: int
    title: str
    is_public: bool
    access: Access
    outcome: CompareOutcome | None = None


def list_comparisons(*, viewer: Viewer, query: ComparisonQuery | None = None) -> list[ComparisonRow]:
    """The newest comparisons the viewer may read in the query's scope (or restore, from the Trash)."""
    with unit_of_work() as session:
        return compare_store.list_saved_comparisons(
            session=session, viewer=viewer, query=query or ComparisonQuery()
        )


def open_comparison(*, viewer: Viewer, comparison_id: int) -> CompareOutcome:
    """A comparison the viewer may read, ready to render; audited as a view (the Open button)."""
    with unit_of_work() as session:
        return compare_store.open_comparison(session=session, viewer=viewer, comparison_id=comparison_id)


def saved_comparison(
    *, viewer: Viewer, comparison_id: int, with_outcome: bool = False
) -> SavedComparisonView:
    """A comparison the viewer may (still) read; ``with_outcome`` decodes the stored result too."""
    with unit_of_work() as session:
        record = owned.open_readable(session=session, viewer=viewer, kind=COMPARISON, record_id=comparison_id)
        return owned.view_of(
            SavedComparisonView,
            record,
            access=owned.access(viewer, COMPARISON, record),
            outcome=compare_store.outcome_from_record(record) if with_outcome else None,
        )


def save_comparison(*, viewer: Viewer, comparison: Comparison, request: CompareRequest, title: str) -> int:
    """Store ``comparison`` privately for the viewer; returns the new id."""
    with unit_of_work() as session:
        return compare_store.save_comparison(
            session=session, viewer=viewer, comparison=comparison, request=request, title=title
        )


def export_comparison(*, viewer: Viewer, comparison_id: int, kind: str) -> Download:
    """A readable comparison as ``json`` (everything) or ``csv`` (the head matches); audited."""
    with unit_of_work() as session:
        data = compare_store.export_comparison(
            session=session, viewer=viewer, comparison_id=comparison_id, kind=kind
        )
    return Download(f"headlight-comparison-{comparison_id}.{kind}", data, MIME[kind])
