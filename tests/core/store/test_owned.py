"""One lifecycle for every owned kind (`core.store.owned`), on SQLite and Postgres: opening with
the permission check and the one "not found" wording, writable-or-in-Trash, delete and restore
with their audit events, and the public switch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import Role, Viewer
from core.domain.owned import LINK_KINDS, RecordKind
from core.store import owned, sharing
from db.models import AuditEvent, utcnow
from tests.core.store.test_batch import _atlas, _upload
from tests.core.store.test_comparisons import _save
from tests.core.store.test_presets_and_request_log import _create
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save

KINDS = list(RecordKind)
# What each kind is called on screen, and what its audit events are named and aimed at.
LABELS = {
    RecordKind.ANALYSIS: ("Analysis", "analysis", "visualization"),
    RecordKind.COMPARISON: ("Comparison", "comparison", "comparison"),
    RecordKind.ATLAS: ("Head atlas", "atlas", "atlas"),
    RecordKind.DATASET: ("Dataset", "dataset", "dataset"),
    RecordKind.PRESET: ("Preset", "preset", "preset"),
}
MAKERS: dict[RecordKind, Callable[[Session, Viewer], int]] = {
    RecordKind.ANALYSIS: lambda session, owner: save(session, owner, "an owned text").id,
    RecordKind.COMPARISON: lambda session, owner: _save(session, owner)[0],
    RecordKind.ATLAS: lambda session, owner: _atlas(session, owner, _upload(session, owner)),
    RecordKind.DATASET: lambda session, owner: _upload(session, owner).id,
    RecordKind.PRESET: lambda session, owner: _create(session, owner),
}


def _make(session: Session, owner: Viewer, kind: RecordKind) -> int:
    return MAKERS[kind](session, owner)


def _events(session: Session, kind: RecordKind, record_id: int) -> list[tuple[str, int | None]]:
    target = LABELS[kind][2]
    query = select(AuditEvent.action, AuditEvent.actor_id).where(
        AuditEvent.target_type == target, AuditEvent.target_id == record_id
    )
    return [(action, actor) for action, actor in session.execute(query.order_by(AuditEvent.id))]


def _publish(session: Session, kind: RecordKind, record_id: int) -> None:
    """Make a record readable by other signed-in users, as its public switch (or, for a
    dataset, which has none, as a built-in one) would."""
    record = session.get(owned.KINDS[kind].model, record_id)
    record.is_public = True
    session.flush()


def test_every_kind_has_rules() -> None:
    """The table covers every kind; only the saved kinds open through links."""
    assert set(owned.KINDS) == set(RecordKind)
    assert {kind for kind in RecordKind if sharing.parse_kind(kind.value)} == LINK_KINDS
    assert {RecordKind.DATASET, RecordKind.PRESET}.isdisjoint(LINK_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_deleted_and_unreadable_records_read_alike(
    session: Session, make_user: UserFactory, kind: RecordKind
) -> None:
    """A private record of another user, a deleted one and an id that never existed all raise
    the same `NotFoundError` wording."""
    owner, outsider = make_user("owner"), make_user("outsider")
    record_id = _make(session, owner, kind)
    label = LABELS[kind][0]

    def message(viewer: Viewer, wanted: int) -> str:
        with pytest.raises(NotFoundError) as caught:
            owned.open_readable(session=session, viewer=viewer, kind=kind, record_id=wanted)
        return str(caught.value)

    expected = f"{label} #{record_id} was not found. It may have been deleted."
    assert owned.open_readable(session=session, viewer=owner, kind=kind, record_id=record_id).id == record_id
    assert message(outsider, record_id) == expected
    assert message(owner, record_id + 10_000) == expected.replace(str(record_id), str(record_id + 10_000))
    owned.delete(session=session, viewer=owner, kind=kind, record_id=record_id)
    assert message(owner, record_id) == expected
    assert str(owned.not_found(kind, record_id)) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_writable_means_live_and_owned_or_in_the_trash(
    session: Session, make_user: UserFactory, kind: RecordKind
) -> None:
    """A reader who is not the owner may not write; the Trash holds only the owner's (and
    admins') deleted records, and a live record is not in it."""
    owner, reader, admin = make_user("owner"), make_user("reader"), make_user("root", Role.ADMIN)
    record_id = _make(session, owner, kind)
    label = LABELS[kind][0]
    _publish(session, kind, record_id)
    assert owned.open_readable(session=session, viewer=reader, kind=kind, record_id=record_id).id == record_id
    with pytest.raises(
        PermissionDeniedError, match=r"Only the owner of an? [a-z ]+ \(or an admin\) can change it"
    ):
        owned.open_writable(session=session, viewer=reader, kind=kind, record_id=record_id)
    assert owned.open_writable(session=session, viewer=owner, kind=kind, record_id=record_id).id == record_id
    assert owned.open_writable(session=session, viewer=admin, kind=kind, record_id=record_id).id == record_id
    in_trash = f"{label} #{record_id} was not found in the Trash."
    with pytest.raises(NotFoundError, match=in_trash):
        owned.open_writable(session=session, viewer=owner, kind=kind, record_id=record_id, in_trash=True)

    owned.delete(session=session, viewer=owner, kind=kind, record_id=record_id)
    with pytest.raises(NotFoundError, match="It may have been deleted"):
        owned.open_writable(session=session, viewer=owner, kind=kind, record_id=record_id)
    for writer in (owner, admin):
        found = owned.open_writable(
            session=session, viewer=writer, kind=kind, record_id=record_id, in_trash=True
        )
        assert found.id == record_id and found.deleted_at is not None
    with pytest.raises(NotFoundError, match=in_trash):
        owned.open_writable(session=session, viewer=reader, kind=kind, record_id=record_id, in_trash=True)


@pytest.mark.parametrize("kind", KINDS)
def test_delete_and_restore_are_audited_once_each(
    session: Session, make_user: UserFactory, kind: RecordKind
) -> None:
    """Delete and restore write one event each, named for the kind and aimed at the record;
    neither happens twice, and no one else may do either."""
    owner, outsider = make_user("owner"), make_user("outsider")
    record_id = _make(session, owner, kind)
    prefix = LABELS[kind][1]
    with pytest.raises(NotFoundError):
        owned.delete(session=session, viewer=outsider, kind=kind, record_id=record_id)
    owned.delete(session=session, viewer=owner, kind=kind, record_id=record_id)
    with pytest.raises(NotFoundError):
        owned.delete(session=session, viewer=owner, kind=kind, record_id=record_id)
    with pytest.raises(NotFoundError, match="in the Trash"):
        owned.restore(session=session, viewer=outsider, kind=kind, record_id=record_id)
    restored = owned.restore(session=session, viewer=owner, kind=kind, record_id=record_id)
    assert restored.deleted_at is None
    with pytest.raises(NotFoundError, match="in the Trash"):
        owned.restore(session=session, viewer=owner, kind=kind, record_id=record_id)
    events = [
        event
        for event in _events(session, kind, record_id)
        if event[0].split(".")[1] in ("delete", "restore")
    ]
    assert events == [(f"{prefix}.delete", owner.user_id), (f"{prefix}.restore", owner.user_id)]


@pytest.mark.parametrize("kind", KINDS)
def test_public_switch_is_for_owners_and_audited_on_change(
    session: Session, make_user: UserFactory, kind: RecordKind
) -> None:
    """Owners (and admins) publish and unpublish; a repeated switch writes nothing; readers
    may not; datasets have no switch at all."""
    owner, reader, admin = make_user("owner"), make_user("reader"), make_user("root", Role.ADMIN)
    record_id = _make(session, owner, kind)
    prefix = LABELS[kind][1]
    if kind is RecordKind.DATASET:
        with pytest.raises(PermissionDeniedError, match="Datasets are not shared"):
            owned.set_public(session=session, viewer=owner, kind=kind, record_id=record_id, public=True)
        assert not owned.access(owner, kind, session.get(owned.KINDS[kind].model, record_id)).can_share
        return
    for public in (True, True):
        owned.set_public(session=session, viewer=owner, kind=kind, record_id=record_id, public=public)
    assert owned.open_readable(session=session, viewer=reader, kind=kind, record_id=record_id).is_public
    with pytest.raises(PermissionDeniedError, match="can share it"):
        owned.set_public(session=session, viewer=reader, kind=kind, record_id=record_id, public=False)
    owned.set_public(session=session, viewer=admin, kind=kind, record_id=record_id, public=False)
    switches = [event for event in _events(session, kind, record_id) if "publish" in event[0]]
    assert switches == [(f"{prefix}.publish", owner.user_id), (f"{prefix}.unpublish", admin.user_id)]
    owned.delete(session=session, viewer=owner, kind=kind, record_id=record_id)
    with pytest.raises(NotFoundError):  # a record in the Trash is not published
        owned.set_public(session=session, viewer=owner, kind=kind, record_id=record_id, public=True)


@pytest.mark.parametrize("kind", [RecordKind.DATASET, RecordKind.PRESET])
def test_kinds_without_links_have_none(session: Session, make_user: UserFactory, kind: RecordKind) -> None:
    """Datasets and presets are never behind a share link: none is made, none opens."""
    owner = make_user("owner")
    record_id = _make(session, owner, kind)
    with pytest.raises(PermissionDeniedError, match="have no share links"):
        sharing.create_link(
            session=session, viewer=owner, record_id=record_id, expires_in_days=1, now=utcnow(), kind=kind
        )
    with pytest.raises(NotFoundError, match=f"#{record_id} was not found"):
        sharing.open_shared(session=session, record_id=record_id, token="x" * 43, now=utcnow(), kind=kind)
