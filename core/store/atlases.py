"""Saved head atlases: lists, the opened atlas, the rows where one head scores highest, sharing
with single users and the CSV export.

Atlases follow the one lifecycle of `core.store.owned` (read like analyses: owner, admins,
grantees and public readers; Trash; public switch). Functions take keyword-only ``session``
and ``viewer`` and never commit; what they return is plain (`AtlasSummary`, `AtlasView`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.access import permissions
from core.access.permissions import Scope
from core.attention import atlas as atlas_math
from core.attention.atlas import AtlasResult
from core.domain.errors import HeadlightError, NotFoundError
from core.domain.identity import Viewer
from core.domain.owned import Access, RecordKind
from core.store import owned
from db import atlases as atlas_db
from db import datasets as dataset_db
from db.models import Atlas

ATLAS = RecordKind.ATLAS
SHARE, UNSHARE, EXPORT = (owned.action(ATLAS, verb) for verb in ("share", "unshare", "export"))


@dataclass(frozen=True)
class AtlasSummary:
    """One line of a list of atlases."""

    id: int
    title: str
    model_id: str
    dataset_name: str
    rows_used: int
    is_public: bool
    created_at: datetime


@dataclass(frozen=True)
class AtlasView:
    """An opened atlas: its facts, what the viewer may do with it, and its scores."""

    id: int
    title: str
    model_id: str
    n_layers: int
    n_heads: int
    rows_used: int
    rows_failed: int
    is_public: bool
    created_at: datetime
    access: Access
    result: AtlasResult


@dataclass(frozen=True)
class TopRow:
    position: int
    text: str
    value: float
    row_id: int


def list_atlases(*, session: Session, viewer: Viewer, scope: Scope = Scope.ALL) -> list[AtlasSummary]:
    """Readable atlases in ``scope`` with their dataset names, newest first."""
    rows = atlas_db.list_atlases(session=session, readable=permissions.list_filter(viewer, scope, Atlas))
    return [owned.view_of(AtlasSummary, record, dataset_name=dataset_name) for record, dataset_name in rows]


def atlas_view(record: Atlas, access: Access) -> AtlasView:
    """The view of an atlas that was opened for a viewer (or through a link, with no rights)."""
    return owned.view_of(AtlasView, record, access=access, result=AtlasResult.from_json(record.result))


def open_atlas(*, session: Session, viewer: Viewer, atlas_id: int) -> AtlasView:
    """An atlas the viewer may read."""
    record = owned.open_readable(session=session, viewer=viewer, kind=ATLAS, record_id=atlas_id)
    return atlas_view(record, owned.access(viewer, ATLAS, record))


def top_rows(
    *, session: Session, viewer: Viewer, atlas_id: int, stat: str, layer: int, head: int
) -> list[TopRow]:
    """The dataset rows where one head's ``stat`` is highest, highest first."""
    return top_rows_of(
        session=session,
        atlas=open_atlas(session=session, viewer=viewer, atlas_id=atlas_id),
        stat=stat,
        layer=layer,
        head=head,
    )


def top_rows_of(*, session: Session, atlas: AtlasView, stat: str, layer: int, head: int) -> list[TopRow]:
    """`top_rows` of an atlas the caller has already opened (through the viewer or a link)."""
    if stat not in atlas_math.ATLAS_STATS:
        raise HeadlightError(f"Unknown score '{stat}'; choose one of {', '.join(atlas_math.ATLAS_STATS)}.")
    if not (0 <= layer < atlas.n_layers and 0 <= head < atlas.n_heads):
        raise HeadlightError(f"Choose a layer below {atlas.n_layers} and a head below {atlas.n_heads}.")
    ids = [int(i) for i in atlas.result.top_rows[stat][layer, head]]
    values = [float(v) for v in atlas.result.top_values[stat][layer, head]]
    found = dataset_db.rows_by_id(session=session, row_ids=[i for i in ids if i >= 0])
    return [
        TopRow(found[i].position, found[i].text, v, i)
        for i, v in zip(ids, values, strict=True)
        if i in found and not math.isnan(v)
    ]


def _shareable(session: Session, viewer: Viewer, atlas_id: int) -> Atlas:
    return owned.open_shareable(session=session, viewer=viewer, kind=ATLAS, record_id=atlas_id)


def share_with(*, session: Session, viewer: Viewer, atlas_id: int, username: str) -> None:
    """Let one more user read the atlas."""
    record = _shareable(session, viewer, atlas_id)
    user = atlas_db.user_by_name(session=session, username=username.strip())
    if user is None:
        raise NotFoundError(f"There is no active user '{username.strip()}'.")
    assert viewer.user_id is not None
    atlas_db.grant(session=session, atlas=record, grantee_id=user.id, granted_by=viewer.user_id)
    owned.audit(
        session=session, viewer=viewer, kind=ATLAS, action=SHARE, record=record, grantee=user.username
    )


def unshare(*, session: Session, viewer: Viewer, atlas_id: int, user_id: int) -> None:
    """Stop sharing the atlas with one user."""
    record = _shareable(session, viewer, atlas_id)
    if atlas_db.revoke(session=session, atlas=record, grantee_id=user_id):
        owned.audit(
            session=session, viewer=viewer, kind=ATLAS, action=UNSHARE, record=record, grantee_id=user_id
        )


def grantees(*, session: Session, viewer: Viewer, atlas_id: int) -> list[tuple[int, str]]:
    """``(user id, username)`` of the users the atlas is shared with (owner and admins only)."""
    _shareable(session, viewer, atlas_id)
    return [(user.id, user.username) for user in atlas_db.grantees(session=session, atlas_id=atlas_id)]


def export_csv(*, session: Session, viewer: Viewer, atlas_id: int) -> bytes:
    """The atlas's per-head scores as CSV; audited."""
    record = owned.open_readable(session=session, viewer=viewer, kind=ATLAS, record_id=atlas_id)
    owned.audit(
        session=session, viewer=viewer, kind=ATLAS, action=owned.action(ATLAS, "export"), record=record
    )
    return atlas_math.atlas_csv(AtlasResult.from_json(record.result))
