"""Saved comparisons: one function per user action, checked by `core.permissions` exactly
like saved analyses (private by default; owner, admins, grantees and public readers).

A row keeps both models' ids and revisions, the text, the request minus its text
(``params``) and ``result``: zlib-compressed UTF-8 JSON of `core.compare.comparison_to_dict`
(both analyses' compact forms, the alignment and the similarity matrix), so it reopens
without running either model. A result over `MAX_ATTENTION_BYTES` is refused.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from sqlalchemy.orm import Session

from core import permissions
from core.compare import CompareOutcome, CompareRequest, Comparison, comparison_from_dict, comparison_to_json
from core.errors import HeadlightError
from core.library import NotFoundError, PermissionDeniedError, clean_title
from core.permissions import Viewer
from db import comparisons as queries
from db.comparisons import ComparisonRow
from db.models import MAX_ATTENTION_BYTES
from db.models import Comparison as ComparisonRecord
from db.queries import add_audit_event

_TEXT_FIELDS = {"a": {"text"}, "b": {"text"}}


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
    add_audit_event(
        session=session,
        actor_id=viewer.user_id,
        action="comparison.save",
        target_type="comparison",
        target_id=record.id,
    )
    return record.id


def list_saved_comparisons(*, session: Session, viewer: Viewer, limit: int = 50) -> list[ComparisonRow]:
    """The newest comparisons the viewer may read."""
    readable = permissions.read_filter(viewer, ComparisonRecord)
    return queries.list_comparisons(session=session, readable=readable, limit=limit)


def open_comparison(*, session: Session, viewer: Viewer, comparison_id: int) -> CompareOutcome:
    """A live comparison the viewer may read; unreadable ones are reported as not found."""
    record = queries.get_comparison(
        session=session,
        comparison_id=comparison_id,
        readable=permissions.read_filter(viewer, ComparisonRecord),
    )
    shared: set[int] = set()
    if viewer.user_id is not None:
        shared = queries.granted_comparison_ids(
            session=session, user_id=viewer.user_id, comparison_ids=[comparison_id]
        )
    if record is None or not permissions.can_read(viewer, record, shared_ids=shared):
        raise NotFoundError(f"Comparison #{comparison_id} was not found. It may have been deleted.")
    return outcome_from_record(record)
