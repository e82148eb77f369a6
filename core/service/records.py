"""The actions every kind of owned record shares, one transaction each: delete (to the Trash),
restore, the public switch, share links, and opening a record through a link.

They are the same for analyses, comparisons, head atlases, datasets and presets
(`core.domain.owned.RecordKind`): `core.store.owned` holds the table of kinds that says how
each is stored and guarded, and the one wording of "not found".
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from core.attention.comparison import CompareOutcome
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.domain.owned import Access, RecordKind
from core.store import comparisons as compare_store
from core.store import owned, sharing
from core.store.atlases import AtlasView, atlas_view
from core.store.records import analysis_from_record
from core.store.sharing import AttemptLimiter, LinkRow, NewLink
from core.store.transaction import unit_of_work


def delete(*, viewer: Viewer, kind: RecordKind, record_id: int) -> None:
    """Move a record to the Trash (restorable until purged)."""
    with unit_of_work() as session:
        owned.delete(session=session, viewer=viewer, kind=kind, record_id=record_id)


def restore(*, viewer: Viewer, kind: RecordKind, record_id: int) -> None:
    """Bring a record back from the Trash."""
    with unit_of_work() as session:
        owned.restore(session=session, viewer=viewer, kind=kind, record_id=record_id)


def set_public(*, viewer: Viewer, kind: RecordKind, record_id: int, public: bool) -> None:
    """Make a record readable by everyone its kind allows, or private again."""
    with unit_of_work() as session:
        owned.set_public(session=session, viewer=viewer, kind=kind, record_id=record_id, public=public)


def share_links(*, viewer: Viewer, kind: RecordKind, record_id: int) -> list[LinkRow]:
    """Every link of a record the viewer may share, newest first."""
    with unit_of_work() as session:
        return sharing.list_links(session=session, viewer=viewer, record_id=record_id, kind=kind)


def create_link(*, viewer: Viewer, kind: RecordKind, record_id: int, expires_in_days: int | None) -> NewLink:
    """A new link to one record; its token is known only now."""
    with unit_of_work() as session:
        return sharing.create_link(
            session=session, viewer=viewer, record_id=record_id, expires_in_days=expires_in_days, kind=kind
        )


def revoke_link(*, viewer: Viewer, kind: RecordKind, record_id: int, link_id: int) -> None:
    """Stop a link from working; it stays listed as revoked."""
    with unit_of_work() as session:
        sharing.revoke_link(session=session, viewer=viewer, record_id=record_id, link_id=link_id, kind=kind)


@dataclass(frozen=True)
class SharedRecord:
    """What a share link opened: the record's title and its content, read-only.

    ``content`` is an `Analysis`, a `CompareOutcome` or an `AtlasView` by ``kind``; ``problem``
    says why the content cannot be shown when it cannot (then ``content`` is None).
    """

    kind: RecordKind
    record_id: int
    title: str
    link_id: int
    content: Analysis | CompareOutcome | AtlasView | None
    problem: str | None = None


# How each kind that a link opens is shown to a visitor (who may change nothing).
_CONTENT: dict[RecordKind, Callable[[Any], Analysis | CompareOutcome | AtlasView]] = {
    RecordKind.ANALYSIS: analysis_from_record,
    RecordKind.COMPARISON: compare_store.outcome_from_record,
    RecordKind.ATLAS: lambda record: atlas_view(record, Access(can_write=False, can_share=False)),
}


def open_shared(
    *,
    kind: RecordKind,
    record_id: int,
    token: str,
    limiter: AttemptLimiter,
    client: str,
    seen_links: Collection[int] = (),
) -> SharedRecord:
    """The record a live link opens for a visitor; audited once per link and browser session
    (``seen_links`` are the links this session opened before). Failed lookups are counted per
    ``client``; every failure is the same `NotFoundError`."""
    with unit_of_work() as session:
        record, link_id = sharing.open_link(
            session=session,
            limiter=limiter,
            client=client,
            record_id=record_id,
            token=token,
            kind=kind,
        )
        if link_id not in seen_links:
            sharing.record_view(session=session, record_id=record.id, link_id=link_id, kind=kind)
        try:
            content, problem = _CONTENT[kind](record), None
        except HeadlightError as exc:
            content, problem = None, str(exc)
        return SharedRecord(kind, record.id, record.title, link_id, content, problem)
