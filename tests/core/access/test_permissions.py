"""The permission module decides every read and write; lists never show more than `can_read`."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from core.access import permissions
from core.access.permissions import Scope
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import ANONYMOUS, Role, Viewer
from core.domain.owned import RecordKind
from core.store import analyses as library
from core.store import owned
from core.store.analyses import HistoryQuery
from db.models import Grant, Visualization, VisualizationTag, utcnow
from tests.factories import make_analysis
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save

RECORDS = ("private", "public", "shared", "deleted")
# viewer -> (records readable, records writable)
MATRIX = {
    "owner": ({"private", "public", "shared"}, set(RECORDS)),
    "other_analyst": ({"public"}, set()),
    "grantee_viewer": ({"public", "shared"}, set()),
    "admin": ({"private", "public", "shared"}, set(RECORDS)),
    "guest": ({"public"}, set()),
    "anonymous": ({"public"}, set()),
}


@pytest.fixture
def world(session: Session, make_user: UserFactory) -> tuple[dict[str, Viewer], dict[str, Visualization]]:
    viewers = {
        "owner": make_user("owner"),
        "other_analyst": make_user("other"),
        "grantee_viewer": make_user("watcher", Role.VIEWER),
        "admin": make_user("root", Role.ADMIN),
        "guest": make_user("visitor", Role.GUEST),
        "anonymous": ANONYMOUS,
    }
    owner = viewers["owner"]
    records = {name: save(session, owner, f"{name} record text", title=name) for name in RECORDS}
    records["public"].is_public = True
    session.add(
        Grant(
            visualization_id=records["shared"].id,
            grantee_id=viewers["grantee_viewer"].user_id,
            granted_by=owner.user_id,
        )
    )
    owned.delete(session=session, viewer=owner, kind=RecordKind.ANALYSIS, record_id=records["deleted"].id)
    session.flush()
    return viewers, records


@pytest.mark.parametrize("who", list(MATRIX))
def test_reads_match_the_matrix_in_python_and_sql(session: Session, world: tuple, who: str) -> None:
    """`can_read`, the list query and `open_saved` agree with the expected matrix."""
    viewers, records = world
    viewer, (readable, _) = viewers[who], MATRIX[who]
    shared = {records["shared"].id} if who == "grantee_viewer" else set()
    assert {n for n, r in records.items() if permissions.can_read(viewer, r, shared_ids=shared)} == readable
    page = library.search_history(session=session, viewer=viewer, query=HistoryQuery(page_size=100))
    assert {row.title for row in page.rows} == readable
    for name, record in records.items():
        if name in readable:
            assert (
                owned.open_readable(
                    session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=record.id
                ).id
                == record.id
            )
        else:
            with pytest.raises(NotFoundError, match="not found"):
                owned.open_readable(
                    session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=record.id
                )


@pytest.mark.parametrize("who", list(MATRIX))
def test_writes_match_the_matrix(session: Session, world: tuple, who: str) -> None:
    """Only owners (analysts) and admins may delete or restore; others are refused."""
    viewers, records = world
    viewer, writable = viewers[who], MATRIX[who][1]
    assert {n for n, r in records.items() if permissions.can_write(viewer, r)} == writable
    target = records["public"]
    if "public" in writable:
        owned.delete(session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=target.id)
        owned.restore(session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=target.id)
    else:
        with pytest.raises(PermissionDeniedError):
            owned.delete(session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=target.id)
    deleted = records["deleted"]
    if "deleted" in writable:
        owned.restore(session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=deleted.id)
    else:
        with pytest.raises(NotFoundError):
            owned.restore(session=session, viewer=viewer, kind=RecordKind.ANALYSIS, record_id=deleted.id)


@pytest.mark.parametrize("who", ["grantee_viewer", "guest", "anonymous"])
def test_readers_without_create_rights_cannot_save_or_annotate(
    session: Session, world: tuple, who: str
) -> None:
    viewers, records = world
    viewer = viewers[who]
    with pytest.raises(PermissionDeniedError):
        library.save_analysis(session=session, viewer=viewer, analysis=make_analysis(), title="", tags="")
    with pytest.raises(PermissionDeniedError):
        library.import_json(session=session, viewer=viewer, data=b"{}")
    with pytest.raises(PermissionDeniedError):
        library.annotate(
            session=session, viewer=viewer, visualization_id=records["public"].id, values={"body": "x"}
        )


def test_annotation_edits_are_for_authors_and_admins(session: Session, world: tuple) -> None:
    """Another analyst may annotate a public analysis but not change the owner's notes."""
    viewers, records = world
    public = records["public"].id
    owner_note = library.annotate(
        session=session, viewer=viewers["owner"], visualization_id=public, values={"body": "mine"}
    )
    other_note = library.annotate(
        session=session, viewer=viewers["other_analyst"], visualization_id=public, values={"body": "theirs"}
    )
    with pytest.raises(PermissionDeniedError, match="your own"):
        library.edit_annotation(
            session=session,
            viewer=viewers["other_analyst"],
            annotation_id=owner_note.id,
            values={"body": "hacked"},
        )
    with pytest.raises(PermissionDeniedError):
        library.delete_annotation(session=session, viewer=viewers["owner"], annotation_id=other_note.id)
    library.edit_annotation(
        session=session, viewer=viewers["admin"], annotation_id=other_note.id, values={"body": "ok"}
    )
    with pytest.raises(NotFoundError):
        library.annotate(
            session=session,
            viewer=viewers["other_analyst"],
            visualization_id=records["private"].id,
            values={"body": "x"},
        )
    with pytest.raises(NotFoundError):
        library.delete_annotation(session=session, viewer=viewers["owner"], annotation_id=10**9)


def test_scope_filters_never_widen_reads(session: Session, world: tuple) -> None:
    """Every scope stays inside what the viewer may read."""
    viewers, _ = world
    for who, (readable, _) in MATRIX.items():
        for scope in Scope:
            page = library.search_history(
                session=session, viewer=viewers[who], query=HistoryQuery(scope=scope, page_size=100)
            )
            assert {row.title for row in page.rows} <= readable


def test_grants_tags_and_visibility_changes_reach_every_filter(
    session: Session, make_user: UserFactory
) -> None:
    """Granting, revoking, tagging, untagging and publishing later are seen by the lists
    (on Postgres they flow into the indexed filter terms through triggers and a generated column)."""
    owner, reader = make_user("owner"), make_user("reader")
    record = save(session, owner, "a quiet analysis of zebras")

    def listed(**query: object) -> bool:
        page = library.search_history(session=session, viewer=reader, query=HistoryQuery(**query))
        return record.id in {row.id for row in page.rows}

    grant = Grant(visualization_id=record.id, grantee_id=reader.user_id, granted_by=owner.user_id)
    session.add(grant)
    session.flush()
    assert listed(scope=Scope.SHARED) and listed(text="zebras")
    grant.revoked_at = utcnow()
    session.flush()
    assert not listed(scope=Scope.SHARED) and not listed(text="zebras")
    grant.revoked_at = None
    session.flush()
    assert listed(scope=Scope.SHARED)
    session.delete(grant)
    session.flush()
    assert not listed()

    record.is_public = True
    session.flush()
    assert listed(scope=Scope.PUBLIC, text="zebras")
    tag = VisualizationTag(visualization_id=record.id, tag="stripes")
    session.add(tag)
    session.flush()
    assert listed(tags=("stripes",), text="zebras")
    session.delete(tag)
    session.flush()
    assert not listed(tags=("stripes",))
    record.is_public = False
    session.flush()
    assert not listed(scope=Scope.PUBLIC)
