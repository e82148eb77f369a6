"""Saved comparisons, checked by `core.access.permissions` exactly like saved analyses (private
by default; owner, admins, grantees and public readers) and opened, trashed and published
through the one lifecycle of `core.store.owned`.

A row keeps both models' ids and revisions, the text, the request minus its text
(``params``) and ``result``: zlib-compressed UTF-8 JSON of `core.attention.comparison.comparison_to_dict`
(both analyses' compact forms, the alignment and the similarity matrix), so it reopens
without running either model. A result over `MAX_ATTENTION_BYTES` is refused.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.access import audit, permissions
from core.access.permissions import Scope
from core.attention.comparison import (
    CompareOutcome,
    CompareRequest,
    Comparison,
    comparison_from_dict,
    comparison_to_json,
)
from core.domain.errors import HeadlightError, PermissionDeniedError
from core.domain.identity import Viewer
from core.domain.owned import ComparisonRow, RecordKind
from core.domain.spreadsheet import csv_cell
from core.store import owned
from core.store.analyses import clean_title
from db import comparisons as queries
from db.models import MAX_ATTENTION_BYTES
from db.models import Comparison as ComparisonRecord

COMPARISON = RecordKind.COMPARISON
_TEXT_FIELDS = {"a": {"text"}, "b": {"text"}}
EXPORT_FORMAT = "headlight-comparison/1"


def record_fields(comparison: Comparison, request: CompareRequest) -> dict[str, Any]:
    """Column values of a `db.models.Comparison` holding ``comparison`` (owner and title aside)."""
    result = zlib.compress(comparison_to_json(comparison))
    if len(result) > MAX_ATTENTION_BYTES:
        raise HeadlightError(
            f"This comparison takes {len(result) / 2**20:.1f} MiB; at most "
            f"{MAX_ATTENTION_BYTES / 2**20:.0f} MiB can be saved. Compare a shorter text."
        )
    a, b = comparison.a.model, comparison.b.model
    return {
        "model_a_id": a.model_id,
        "model_a_revision": a.revision,
        "model_b_id": b.model_id,
        "model_b_revision": b.revision,
        "text": request.a.text,
        "params": request.model_dump(mode="json", exclude=_TEXT_FIELDS),
        "result": result,
    }


def outcome_from_record(record: ComparisonRecord) -> CompareOutcome:
    """The stored comparison and its request, ready to render; no model runs."""
    if record.result is None:
        raise HeadlightError(f"Comparison #{record.id} has no stored result; run it again.")
    params = record.params
    request = CompareRequest.model_validate(
        {**params, "a": {**params["a"], "text": record.text}, "b": {**params["b"], "text": record.text}}
    )
    comparison = comparison_from_dict(json.loads(zlib.decompress(record.result)))
    return CompareOutcome.of(comparison, request)


def save_comparison(
    *, session: Session, viewer: Viewer, comparison: Comparison, request: CompareRequest, title: str
) -> int:
    """Store ``comparison`` privately for the viewer; returns the new id."""
    if not permissions.can_create(viewer):
        raise PermissionDeniedError("Your role cannot save comparisons.")
    assert viewer.user_id is not None
    fallback = f"{comparison.a.model.model_id} vs {comparison.b.model.model_id}: {request.a.text}"
    record = queries.create_comparison(
        session=session,
        owner_id=viewer.user_id,
        fields=record_fields(comparison, request),
        title=clean_title(title, fallback),
    )
    _audit(session, viewer, audit.COMPARISON_SAVE, record)
    return record.id


@dataclass(frozen=True)
class ComparisonQuery:
    """What a list of saved comparisons asks for: ``text`` in titles and texts, ``model_id`` on
    either side, the ``scope`` (or the Trash), and one page of ``limit`` rows from ``offset``."""

    scope: Scope = Scope.ALL
    text: str = ""
    model_id: str | None = None
    trash: bool = False
    limit: int = 50
    offset: int = 0


def list_saved_comparisons(
    *, session: Session, viewer: Viewer, query: ComparisonQuery = ComparisonQuery()
) -> list[ComparisonRow]:
    """The newest comparisons the viewer may read in the query's scope (or restore, from the Trash)."""
    where = (
        permissions.trash_filter(viewer, ComparisonRecord)
        if query.trash
        else permissions.list_filter(viewer, query.scope, ComparisonRecord)
    )
    return queries.list_comparisons(
        session=session,
        readable=where,
        text=query.text,
        model_id=query.model_id,
        limit=query.limit,
        offset=query.offset,
    )


def open_comparison(*, session: Session, viewer: Viewer, comparison_id: int) -> CompareOutcome:
    """A comparison the viewer may read, ready to render (no model runs); audited as a view."""
    record = owned.open_readable(session=session, viewer=viewer, kind=COMPARISON, record_id=comparison_id)
    _audit(session, viewer, audit.COMPARISON_VIEW, record)
    return outcome_from_record(record)


def export_document(record: ComparisonRecord) -> dict[str, Any]:
    """The JSON export of a stored comparison: its facts, request and full result."""
    return {
        "format": EXPORT_FORMAT,
        "id": record.id,
        "title": record.title,
        "created_at": record.created_at.isoformat(),
        "model_a": {"id": record.model_a_id, "revision": record.model_a_revision},
        "model_b": {"id": record.model_b_id, "revision": record.model_b_revision},
        "text": record.text,
        "params": record.params,
        "result": json.loads(zlib.decompress(record.result)) if record.result is not None else None,
    }


def head_match_rows(comparison: Comparison) -> list[dict[str, object]]:
    """One row per head of either model: its best match on the other side and the score."""
    rows: list[dict[str, object]] = []
    for side, mine, other, best, score in (
        ("A", comparison.a.model, comparison.b.model, comparison.best_in_b, comparison.best_score_a),
        ("B", comparison.b.model, comparison.a.model, comparison.best_in_a, comparison.best_score_b),
    ):
        for index in range(mine.n_layers * mine.n_heads):
            layer, head = divmod(index, mine.n_heads)
            match_layer, match_head = divmod(int(best[index]), other.n_heads)
            rows.append(
                {
                    "side": side,
                    "model": mine.model_id,
                    "layer": layer,
                    "head": head,
                    "best_match_layer": match_layer,
                    "best_match_head": match_head,
                    "similarity": round(float(score[index]), 6),
                    "only_in_this_model": bool(score[index] < comparison.threshold),
                }
            )
    return rows


def head_match_csv(comparison: Comparison) -> bytes:
    """`head_match_rows` as CSV (UTF-8 with BOM, for spreadsheets)."""
    buffer = io.StringIO()
    rows = head_match_rows(comparison)
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def export_comparison(*, session: Session, viewer: Viewer, comparison_id: int, kind: str) -> bytes:
    """A readable comparison as ``json`` (everything) or ``csv`` (the head matches); audited."""
    if kind not in ("json", "csv"):
        raise HeadlightError(f"Unknown export format '{kind}'; choose json or csv.")
    record = owned.open_readable(session=session, viewer=viewer, kind=COMPARISON, record_id=comparison_id)
    _audit(session, viewer, audit.COMPARISON_EXPORT, record, format=kind)
    if kind == "csv":
        comparison = outcome_from_record(record).comparison
        assert comparison is not None
        return head_match_csv(comparison)
    return json.dumps(export_document(record), ensure_ascii=False).encode("utf-8")


def _audit(session: Session, viewer: Viewer, action: str, record: ComparisonRecord, **detail: object) -> None:
    owned.audit(session=session, viewer=viewer, kind=COMPARISON, action=action, record=record, **detail)
