"""History search: full-text match, filters, sorting and keyset pages of visualizations.

Like `db.queries`, functions take a keyword-only ``session``, never commit, and take a
required ``readable`` WHERE clause from `core.access.permissions`.

Text search is dialect specific. Postgres: ``websearch_to_tsquery`` against the generated
``search_vector`` (English stemming), with the viewer, model and tag filters as terms in the
same GIN index (`db.models.PG_FILTER_TERMS`). SQLite: an FTS5 table (Porter stemming) queried
with `fts5_query`, which quotes every user term so nothing typed is read as FTS5 syntax.

Pages are keyset pages: rows are ordered by ``(sort key, id)`` and the cursor is the last
row's pair, so rows saved while someone pages never shift or repeat a page. Matches are
counted up to `COUNT_CAP`; past it the total reads "1,000+".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    exists,
    false,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

from core.domain.owned import HistoryRow, SearchPage, Sort
from db.models import (
    PG_FILTER_TERMS,
    PG_SEARCH_VECTOR,
    Annotation,
    Visualization,
    VisualizationTag,
    model_term,
    tag_term,
)

MAX_SEARCH_CHARS = 500
SNIPPET_CHARS = 200
COUNT_CAP = 1_000
# Postgres text-search configuration; SQLite's FTS5 table uses the Porter stemmer to match.
TS_CONFIG = "english"


@dataclass(frozen=True)
class SearchFilters:
    """What a history list is narrowed to; empty fields do not filter.

    ``created_from`` is inclusive and ``created_to`` exclusive; every tag in ``tags`` must be
    present. ``text`` uses web-search syntax: words (all must match), ``"a phrase"``,
    ``or`` between alternatives, ``-word`` to exclude.
    """

    text: str = ""
    model_ids: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cursor:
    """The position after which a page starts: the last row's sort key and id."""

    sort: Sort
    key: datetime | str
    id: int

    def encode(self) -> str:
        key = self.key.isoformat() if isinstance(self.key, datetime) else self.key
        raw = json.dumps([self.sort.value, key, self.id], ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, token: str, sort: Sort) -> Cursor:
        """Parse `encode`'s output; raises ``ValueError`` if malformed or for another sort."""
        try:
            sort_name, key, row_id = json.loads(base64.urlsafe_b64decode(token.encode()))
            parsed_sort = Sort(sort_name)
            if parsed_sort is not Sort.TITLE:
                key = datetime.fromisoformat(key)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError("The page position is invalid; start again from the first page.") from exc
        if parsed_sort is not sort or type(row_id) is not int or not isinstance(key, (str, datetime)):
            raise ValueError("The page position does not fit this list; start again from the first page.")
        return cls(parsed_sort, key, row_id)


_TERM = re.compile(r'"([^"]*)"|(\S+)')


def _fts5_string(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts5_query(user_text: str) -> tuple[str | None, str | None]:
    """``(match, exclude)``: safe FTS5 MATCH expressions with web-search semantics.

    Rows match when they match ``match`` (if any) and do not match ``exclude`` (if any);
    both None means nothing can match. Every term becomes a double-quoted FTS5 string
    (inner quotes doubled), so no user input is ever read as FTS5 syntax; only ``or`` and a
    leading ``-`` are honoured, as in Postgres's ``websearch_to_tsquery``. Terms without a
    letter or digit are dropped, as the Postgres parser drops punctuation and emoji.
    """
    groups: list[tuple[list[str], list[str]]] = [([], [])]
    for phrase, word in _TERM.findall(user_text):
        if not phrase and word.lower() == "or":
            groups.append(([], []))
            continue
        negate = not phrase and word.startswith("-")
        term = phrase or word.removeprefix("-")
        if any(ch.isalnum() for ch in term):
            groups[-1][1 if negate else 0].append(_fts5_string(term))
    clauses = [
        "(" + " AND ".join(positive) + "".join(f" NOT {n}" for n in negative) + ")"
        for positive, negative in groups
        if positive
    ]
    if clauses:
        return " OR ".join(clauses), None
    negatives = [n for _, negative in groups for n in negative]
    # Only exclusions ("-word"): every row without those words, as on Postgres.
    return None, (" OR ".join(negatives) or None)


def _clean_search(user_text: str) -> str:
    # NUL cannot travel to Postgres; very long input is cut rather than refused.
    return user_text.replace("\x00", " ").strip()[:MAX_SEARCH_CHARS]


def text_match(session: Session, user_text: str) -> ColumnElement[bool] | None:
    """WHERE clause for full-text search in the session's dialect; None when no text.

    Text with no searchable word (only punctuation or emoji, say) matches nothing.
    """
    cleaned = _clean_search(user_text)
    if not cleaned:
        return None
    if session.get_bind().dialect.name == "postgresql":
        query = func.websearch_to_tsquery(literal_column(f"'{TS_CONFIG}'::regconfig"), cleaned)
        return PG_SEARCH_VECTOR.op("@@")(query)
    match, exclude = fts5_query(cleaned)
    if match is None and exclude is None:
        return false()
    if match is not None:
        return Visualization.id.in_(_fts5_rowids(match))
    return Visualization.id.not_in(_fts5_rowids(exclude or ""))


def _fts5_rowids(expression: str) -> TextualSelect:
    statement = text("SELECT rowid FROM visualizations_fts WHERE visualizations_fts MATCH :fts_query")
    return statement.bindparams(fts_query=expression).columns(rowid=Integer())


def _filtered(
    session: Session, readable: ColumnElement[bool], filters: SearchFilters
) -> list[ColumnElement[bool]]:
    clauses = [readable]
    match = text_match(session, filters.text)
    if match is not None:
        clauses.append(match)
    if filters.created_from is not None:
        clauses.append(Visualization.created_at >= filters.created_from)
    if filters.created_to is not None:
        clauses.append(Visualization.created_at < filters.created_to)
    tags = list(dict.fromkeys(filters.tags))
    if session.get_bind().dialect.name == "postgresql":
        # Model and tags are filter terms in the full-text index there (see db.models).
        if filters.model_ids:
            clauses.append(PG_FILTER_TERMS.overlap([model_term(m) for m in filters.model_ids]))
        if tags:
            clauses.append(PG_FILTER_TERMS.contains([tag_term(tag) for tag in tags]))
        return clauses
    if filters.model_ids:
        clauses.append(Visualization.model_id.in_(filters.model_ids))
    clauses += [
        exists().where(VisualizationTag.visualization_id == Visualization.id, VisualizationTag.tag == tag)
        for tag in tags
    ]
    return clauses


def _order(sort: Sort) -> tuple[Any, Any, bool]:
    """(sort key column, tie-breaker, descending)."""
    if sort is Sort.TITLE:
        return Visualization.title, Visualization.id, False
    return Visualization.created_at, Visualization.id, sort is Sort.NEWEST


def _after(sort: Sort, cursor: Cursor) -> ColumnElement[bool]:
    key, tie, descending = _order(sort)
    position = tuple_(key, tie)
    # Bound with the columns' types, so timestamps go through UTCDateTime on every dialect.
    boundary = tuple_(literal(cursor.key, type_=key.type), literal(cursor.id, type_=tie.type))
    return position < boundary if descending else position > boundary


def search_visualizations(
    *,
    session: Session,
    readable: ColumnElement[bool],
    filters: SearchFilters,
    sort: Sort = Sort.NEWEST,
    cursor: str | None = None,
    page_size: int = 20,
) -> SearchPage:
    """One page of matching visualizations, the total count, and the next page's cursor."""
    clauses = _filtered(session, readable, filters)
    # Matches are collected up to COUNT_CAP + 1: an exact count of a frequent word's matches
    # among a million rows costs hundreds of milliseconds, and "1,000+" tells as much.
    matches = session.scalars(select(Visualization.id).where(*clauses).limit(COUNT_CAP + 1)).all()
    capped = len(matches) > COUNT_CAP
    # Within the cap the page is picked among those ids, so the filters run only once.
    page_clauses = list(clauses) if capped else [Visualization.id.in_(matches)]
    key, tie, descending = _order(sort)
    if cursor:
        page_clauses.append(_after(sort, Cursor.decode(cursor, sort)))
    order = (key.desc(), tie.desc()) if descending else (key.asc(), tie.asc())
    query: Select[Any] = (
        select(
            Visualization.id,
            Visualization.title,
            Visualization.model_id,
            Visualization.owner_id,
            Visualization.is_public,
            Visualization.created_at,
            Visualization.deleted_at,
            Visualization.token_count,
            func.substr(Visualization.input_text, 1, SNIPPET_CHARS).label("snippet"),
        )
        .where(*page_clauses)
        .order_by(*order)
        .limit(page_size + 1)
    )
    found = session.execute(query).all()
    has_next = len(found) > page_size
    found = found[:page_size]
    rows = _history_rows(session, found)
    next_cursor = None
    if has_next:
        last = found[-1]
        next_cursor = Cursor(sort, last.title if sort is Sort.TITLE else last.created_at, last.id).encode()
    return SearchPage(
        rows=rows, total=min(len(matches), COUNT_CAP), total_capped=capped, next_cursor=next_cursor
    )


def _history_rows(session: Session, found: Sequence[Any]) -> list[HistoryRow]:
    ids = [row.id for row in found]
    tags: dict[int, list[str]] = {i: [] for i in ids}
    counts: dict[int, int] = {}
    if ids:
        for vis_id, tag in session.execute(
            select(VisualizationTag.visualization_id, VisualizationTag.tag)
            .where(VisualizationTag.visualization_id.in_(ids))
            .order_by(VisualizationTag.tag)
        ):
            tags[vis_id].append(tag)
        counts = dict(
            session.execute(
                select(Annotation.visualization_id, func.count())
                .where(Annotation.visualization_id.in_(ids))
                .group_by(Annotation.visualization_id)
            ).all()
        )
    return [
        HistoryRow(
            id=row.id,
            title=row.title,
            model_id=row.model_id,
            owner_id=row.owner_id,
            is_public=row.is_public,
            created_at=row.created_at,
            deleted_at=row.deleted_at,
            token_count=row.token_count,
            snippet=row.snippet,
            tags=tuple(tags[row.id]),
            annotation_count=counts.get(row.id, 0),
        )
        for row in found
    ]
