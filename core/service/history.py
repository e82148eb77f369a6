"""Saved analyses as the screens use them (History, and Save under Generate): one function
per user action, each in its own transaction, returning plain views.

Deleting, restoring and sharing an analysis are the generic `core.service.records` actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from core.domain.analysis import Analysis
from core.domain.identity import Actor, Viewer
from core.domain.owned import Download, RecordKind, SearchPage
from core.service.analysis_service import AnalysisService
from core.service.analysis_service import recompute as run_again
from core.store import analyses as library
from core.store import owned, records
from core.store.analyses import HistoryQuery, SavedAnalysisView
from core.store.transaction import unit_of_work

ExportKind = Literal["json", "zip", "csv"]


def filter_choices(*, viewer: Viewer) -> tuple[list[str], list[str]]:
    """Model ids and tags of the viewer's own analyses, for the filter menus."""
    with unit_of_work() as session:
        return library.filter_choices(session=session, viewer=viewer)


def search(*, viewer: Viewer, query: HistoryQuery, cursor: str | None = None) -> SearchPage:
    """One page of the viewer's history (or Trash) matching ``query``."""
    with unit_of_work() as session:
        return library.search_history(session=session, viewer=viewer, query=query, cursor=cursor)


def record_opened(*, viewer: Viewer, visualization_id: int) -> None:
    """Audit a user opening an analysis (the Open button); it must be readable."""
    with unit_of_work() as session:
        library.record_view(session=session, viewer=viewer, visualization_id=visualization_id)


def saved_analysis(*, viewer: Viewer, visualization_id: int) -> SavedAnalysisView:
    """An analysis the viewer may read, re-rendered from stored data (no model runs)."""
    with unit_of_work() as session:
        record = owned.open_readable(
            session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=visualization_id
        )
        return library.saved_view(session=session, viewer=viewer, record=record)


def recompute(*, viewer: Viewer, visualization_id: int, service: AnalysisService, actor: Actor) -> Analysis:
    """Run a saved analysis's request again with full detail (the model runs outside the
    transaction that read it)."""
    with unit_of_work() as session:
        record = owned.open_readable(
            session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=visualization_id
        )
        saved = records.analysis_from_record(record)
    return run_again(saved, service, actor=actor)


def save_analysis(*, viewer: Viewer, analysis: Analysis, title: str, tags: str | Sequence[str]) -> int:
    """Store ``analysis`` privately for the viewer; returns the new id."""
    with unit_of_work() as session:
        return library.save_analysis(
            session=session, viewer=viewer, analysis=analysis, title=title, tags=tags
        )


def import_analysis(*, viewer: Viewer, data: bytes) -> int:
    """Re-create an exported analysis (with its notes) as the viewer's; returns its id."""
    with unit_of_work() as session:
        return library.import_json(session=session, viewer=viewer, data=data)


def export_analysis(*, viewer: Viewer, visualization_id: int, kind: ExportKind) -> Download:
    """One analysis as JSON, as a ZIP (offline viewer, JSON, CSV), or the CSV of all the viewer's."""
    with unit_of_work() as session:
        if kind == "json":
            data = library.export_json(session=session, viewer=viewer, visualization_id=visualization_id)
            return Download(f"headlight-analysis-{visualization_id}.json", data, "application/json")
        if kind == "zip":
            data = library.export_zip(session=session, viewer=viewer, visualization_id=visualization_id)
            return Download(f"headlight-analysis-{visualization_id}.zip", data, "application/zip")
        return Download(
            "headlight-analyses.csv", library.export_csv(session=session, viewer=viewer), "text/csv"
        )


def add_note(*, viewer: Viewer, visualization_id: int, values: dict[str, object]) -> None:
    """Annotate an analysis (``values``: body, layer, head, token_start, token_end)."""
    with unit_of_work() as session:
        library.annotate(session=session, viewer=viewer, visualization_id=visualization_id, values=values)


def edit_note(*, viewer: Viewer, annotation_id: int, values: dict[str, object]) -> None:
    with unit_of_work() as session:
        library.edit_annotation(session=session, viewer=viewer, annotation_id=annotation_id, values=values)


def delete_note(*, viewer: Viewer, annotation_id: int) -> None:
    with unit_of_work() as session:
        library.delete_annotation(session=session, viewer=viewer, annotation_id=annotation_id)
