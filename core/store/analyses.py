"""Saved analyses: saving, searching, notes, exports and imports.

Every function takes keyword-only ``session`` and ``viewer``, asks `core.access.permissions`
before reading or writing, and never commits. Services (`core.service.history`) wrap one
action in `unit_of_work`, which commits on success, rolls back on any error, and turns
database failures into a `StorageError` with a message fit for the screen. Opening, the
Trash and publishing follow the one lifecycle of `core.store.owned`: a record the viewer may
not read is reported exactly like one that does not exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from core.access import audit, permissions
from core.access.permissions import Scope
from core.attention import codec
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError, NotFoundError, PermissionDeniedError, validation_message
from core.domain.identity import Viewer
from core.domain.owned import Access, RecordKind, SearchPage, Sort
from core.store import export, owned
from core.store.records import analysis_from_record
from db import queries, search
from db.models import MAX_ANNOTATION_CHARS, MAX_TAG_CHARS, MAX_TITLE_CHARS, Annotation, Visualization
from db.search import SearchFilters

logger = logging.getLogger(__name__)

ANALYSIS = RecordKind.ANALYSIS

MAX_PAGE_SIZE = 100
DEFAULT_TITLE_CHARS = 80
_SPACES = re.compile(r"\s+")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def default_title(text: str) -> str:
    """The title used when none is typed: the start of the text, on one line."""
    return _shorten(_SPACES.sub(" ", text).strip(), DEFAULT_TITLE_CHARS) or "Untitled analysis"


def clean_title(title: str, fallback_text: str) -> str:
    """One line, at most 200 characters; `default_title` of the text when left empty."""
    title = _SPACES.sub(" ", title).strip()
    return _shorten(title, MAX_TITLE_CHARS) if title else default_title(fallback_text)


def parse_tags(tags: str | Sequence[str]) -> list[str]:
    """Tags from ``"a, b"`` or a list: lower-case, single-spaced, unique, in order given."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    cleaned = [_SPACES.sub(" ", item).strip().lower() for item in items]
    unique = list(dict.fromkeys(tag for tag in cleaned if tag))
    if len(unique) > export.MAX_TAGS:
        raise HeadlightError(f"Use at most {export.MAX_TAGS} tags; {len(unique)} were given.")
    too_long = [tag for tag in unique if len(tag) > MAX_TAG_CHARS]
    if too_long:
        raise HeadlightError(f"Tags are at most {MAX_TAG_CHARS} characters; shorten {too_long[0]!r}.")
    return unique


def save_analysis(
    *, session: Session, viewer: Viewer, analysis: Analysis, title: str, tags: str | Sequence[str]
) -> int:
    """Store ``analysis`` privately for the viewer; returns the new id."""
    if not permissions.can_create(viewer):
        raise PermissionDeniedError("Your role cannot save analyses.")
    assert viewer.user_id is not None
    record = queries.create_visualization(
        session=session,
        owner_id=viewer.user_id,
        fields=codec.analysis_fields(analysis),
        title=clean_title(title, analysis.request.text),
        tags=parse_tags(tags),
    )
    _audit(session, viewer, audit.ANALYSIS_SAVE, record)
    return record.id


@dataclass(frozen=True)
class HistoryQuery:
    """What the History screen asks for. Dates are inclusive, in UTC."""

    text: str = ""
    scope: Scope = Scope.ALL
    model_ids: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    tags: tuple[str, ...] = ()
    sort: Sort = Sort.NEWEST
    trash: bool = False
    page_size: int = 20


def search_history(
    *, session: Session, viewer: Viewer, query: HistoryQuery, cursor: str | None = None
) -> SearchPage:
    """One page of the viewer's history (or Trash) matching ``query``."""
    if query.trash:
        readable = permissions.trash_filter(viewer)
    else:
        readable = permissions.list_filter(viewer, query.scope, dialect=_dialect(session))
    filters = SearchFilters(
        text=query.text,
        model_ids=query.model_ids,
        created_from=datetime.combine(query.date_from, time.min, UTC) if query.date_from else None,
        created_to=(
            datetime.combine(query.date_to + timedelta(days=1), time.min, UTC) if query.date_to else None
        ),
        tags=tuple(parse_tags(query.tags)),
    )
    return search.search_visualizations(
        session=session,
        readable=readable,
        filters=filters,
        sort=query.sort,
        cursor=cursor,
        page_size=max(1, min(query.page_size, MAX_PAGE_SIZE)),
    )


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def filter_choices(*, session: Session, viewer: Viewer) -> tuple[list[str], list[str]]:
    """Model ids and tags of the viewer's own analyses, for the filter menus."""
    if viewer.user_id is None:
        return [], []
    return queries.filter_options(session=session, owner_id=viewer.user_id)


def _open(session: Session, viewer: Viewer, visualization_id: int) -> Visualization:
    """A live analysis the viewer may read, with tags and annotations loaded."""
    return owned.open_readable(session=session, viewer=viewer, kind=ANALYSIS, record_id=visualization_id)


def record_view(*, session: Session, viewer: Viewer, visualization_id: int) -> Visualization:
    """An analysis opened, audited as a view: for a user explicitly opening it."""
    record = _open(session, viewer, visualization_id)
    _audit(session, viewer, audit.ANALYSIS_VIEW, record)
    return record


def _audit(session: Session, viewer: Viewer, action: str, record: Visualization) -> None:
    owned.audit(session=session, viewer=viewer, kind=ANALYSIS, action=action, record=record)


@dataclass(frozen=True)
class NoteView:
    """One annotation as the notes panel shows it; the pin's token indexes are inclusive."""

    id: int
    body: str
    author: str
    layer: int | None
    head: int | None
    token_start: int | None
    token_end: int | None
    can_edit: bool


@dataclass(frozen=True)
class SavedAnalysisView:
    """An opened saved analysis: its facts, what the viewer may do, its notes and the analysis
    itself, re-rendered from stored data (no model runs)."""

    id: int
    title: str
    model_id: str
    is_public: bool
    n_layers: int
    n_heads: int
    token_count: int
    access: Access
    can_annotate: bool
    notes: tuple[NoteView, ...]
    analysis: Analysis


def saved_view(*, session: Session, viewer: Viewer, record: Visualization) -> SavedAnalysisView:
    """The view of an analysis the viewer has opened."""
    shared = owned.shared_ids(session=session, viewer=viewer, kind=ANALYSIS, record_id=record.id)
    notes = tuple(
        owned.view_of(
            NoteView,
            note,
            author=note.author.display_name or note.author.username,
            can_edit=permissions.can_edit_annotation(viewer, note),
        )
        for note in record.annotations
    )
    return owned.view_of(
        SavedAnalysisView,
        record,
        n_layers=record.model_info["n_layers"],
        n_heads=record.model_info["n_heads"],
        access=owned.access(viewer, ANALYSIS, record),
        can_annotate=permissions.can_annotate(viewer, record, shared_ids=shared),
        notes=notes,
        analysis=analysis_from_record(record),
    )


class AnnotationInput(BaseModel):
    """An annotation as typed: a body and an optional pin (token indexes inclusive)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    body: str = Field(min_length=1, max_length=MAX_ANNOTATION_CHARS)
    layer: int | None = Field(default=None, ge=0)
    head: int | None = Field(default=None, ge=0)
    token_start: int | None = Field(default=None, ge=0)
    token_end: int | None = Field(default=None, ge=0)

    def pin_for(self, record: Visualization) -> dict[str, int | None]:
        """The pin columns, checked against the analysis's layers, heads and tokens."""
        n_layers, n_heads = record.model_info["n_layers"], record.model_info["n_heads"]
        if self.head is not None and self.layer is None:
            raise HeadlightError("Choose a layer for the head the annotation is pinned to.")
        if self.layer is not None and self.layer >= n_layers:
            raise HeadlightError(f"Layer must be below {n_layers}.")
        if self.head is not None and self.head >= n_heads:
            raise HeadlightError(f"Head must be below {n_heads}.")
        start, end = self.token_start, self.token_end
        if start is None and end is not None:
            start = end
        if start is not None and end is None:
            end = start
        if start is not None and end is not None:
            if start > end:
                raise HeadlightError("The first pinned token must come before the last one.")
            if end >= record.token_count:
                raise HeadlightError(f"Tokens are numbered 0 to {record.token_count - 1}.")
        return {"layer": self.layer, "head": self.head, "token_start": start, "token_end": end}


def _annotation_input(values: dict[str, object]) -> AnnotationInput:
    try:
        return AnnotationInput.model_validate(values)
    except ValidationError as exc:
        raise HeadlightError(validation_message(exc)) from exc


def annotate(
    *, session: Session, viewer: Viewer, visualization_id: int, values: dict[str, object]
) -> Annotation:
    """Add an annotation (``values``: body, layer, head, token_start, token_end)."""
    note = _annotation_input(values)
    record = _open(session, viewer, visualization_id)
    shared = owned.shared_ids(session=session, viewer=viewer, kind=ANALYSIS, record_id=record.id)
    if not permissions.can_annotate(viewer, record, shared_ids=shared):
        raise PermissionDeniedError("Your role cannot annotate analyses.")
    assert viewer.user_id is not None
    notes = [(note.body, note.pin_for(record))]
    [annotation] = queries.add_annotations(
        session=session, visualization=record, author_id=viewer.user_id, notes=notes
    )
    return annotation


def _own_annotation(session: Session, viewer: Viewer, annotation_id: int) -> Annotation:
    annotation = queries.get_annotation(session=session, annotation_id=annotation_id)
    if annotation is None:
        raise NotFoundError(f"Annotation #{annotation_id} was not found.")
    _open(session, viewer, annotation.visualization_id)
    if not permissions.can_edit_annotation(viewer, annotation):
        raise PermissionDeniedError("You can only change your own annotations.")
    return annotation


def edit_annotation(
    *, session: Session, viewer: Viewer, annotation_id: int, values: dict[str, object]
) -> None:
    note = _annotation_input(values)
    annotation = _own_annotation(session, viewer, annotation_id)
    queries.update_annotation(
        session=session, annotation=annotation, body=note.body, pin=note.pin_for(annotation.visualization)
    )


def delete_annotation(*, session: Session, viewer: Viewer, annotation_id: int) -> None:
    queries.delete_annotation(session=session, annotation=_own_annotation(session, viewer, annotation_id))


def export_json(*, session: Session, viewer: Viewer, visualization_id: int) -> bytes:
    """One analysis as the JSON export document."""
    record = _open(session, viewer, visualization_id)
    _audit(session, viewer, audit.ANALYSIS_EXPORT, record)
    return export.to_json_bytes(export.export_document(record, exported_at=datetime.now(UTC)))


def export_csv(*, session: Session, viewer: Viewer) -> bytes:
    """CSV of all the viewer's own live analyses."""
    readable = permissions.list_filter(viewer, Scope.MINE, dialect=_dialect(session))
    return export.csv_bytes(queries.summary_rows(session=session, readable=readable))


def export_zip(*, session: Session, viewer: Viewer, visualization_id: int) -> bytes:
    """ZIP: the offline HTML viewer of one analysis, its JSON, and the CSV of all mine."""
    record = _open(session, viewer, visualization_id)
    document = export.export_document(record, exported_at=datetime.now(UTC))
    _audit(session, viewer, audit.ANALYSIS_EXPORT, record)
    summary = export_csv(session=session, viewer=viewer)
    return export.zip_bundle(document, summary, stem=f"headlight-analysis-{record.id}")


def import_json(*, session: Session, viewer: Viewer, data: bytes) -> int:
    """Re-create an exported analysis (with its annotations) as the viewer's; returns its id."""
    if not permissions.can_create(viewer):
        raise PermissionDeniedError("Your role cannot import analyses.")
    assert viewer.user_id is not None
    document, fields = export.parse_import(data)
    record = queries.create_visualization(
        session=session,
        owner_id=viewer.user_id,
        fields=fields,
        title=clean_title(document.analysis.title, fields["input_text"]),
        tags=parse_tags(document.analysis.tags),
    )
    notes = [
        (note.body, _annotation_input(note.model_dump(exclude={"author", "created_at"})).pin_for(record))
        for note in document.annotations
    ]
    if notes:
        queries.add_annotations(session=session, visualization=record, author_id=viewer.user_id, notes=notes)
    _audit(session, viewer, audit.ANALYSIS_IMPORT, record)
    return record.id
