"""The access matrix of issue 4, on SQLite and Postgres: every read and write path against
one private analysis (and its comparison, annotation, links and audit events), for every
kind of visitor, with the exact allow or deny of each cell.

Visitors holding a token are anonymous apart from it; the token only opens the shared page
("view"). Each path runs in a savepoint that is rolled back, so no path sees another's effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from core.access import audit
from core.attention.comparison import compare
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import ANONYMOUS, Role, Viewer
from core.domain.owned import RecordKind
from core.store import analyses as library
from core.store import comparisons as compare_store
from core.store import owned, sharing
from core.store.analyses import HistoryQuery
from db.models import Annotation, ShareLink, Visualization, utcnow
from tests.core.store.test_comparisons import TEXT, _request
from tests.factories import make_analysis
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save


@dataclass
class World:
    target: Visualization
    other: Visualization
    trashed: Visualization
    comparison_id: int
    annotation: Annotation
    live_link: int
    tokens: dict[str, str]


@dataclass(frozen=True)
class Visitor:
    viewer: Viewer
    token: str | None = None


Path = Callable[[Session, World, Visitor], bool]


def _link(session: Session, owner: Viewer, record: Visualization) -> sharing.NewLink:
    return sharing.create_link(
        session=session, viewer=owner, record_id=record.id, expires_in_days=None, now=utcnow()
    )


@pytest.fixture
def world(session: Session, make_user: UserFactory) -> tuple[World, dict[str, Visitor]]:
    owner = make_user("owner")
    viewers = {
        "owner": owner,
        "other_analyst": make_user("other"),
        "viewer": make_user("val", Role.VIEWER),
        "admin": make_user("root", Role.ADMIN),
    }
    target = save(session, owner, "the private target text", title="target")
    other = save(session, owner, "another private analysis", title="other")
    trashed = save(session, owner, "in the trash", title="trashed")
    owned.delete(session=session, viewer=owner, kind=RecordKind.ANALYSIS, record_id=trashed.id)
    annotation = library.annotate(
        session=session, viewer=owner, visualization_id=target.id, values={"body": "n"}
    )
    comparison = compare(
        make_analysis(TEXT, model_id="tiny-a"), make_analysis(TEXT, model_id="tiny-b", seed=1)
    )
    comparison_id = compare_store.save_comparison(
        session=session, viewer=owner, comparison=comparison, request=_request(), title="cmp"
    )
    links = {name: _link(session, owner, target) for name in ("valid", "expired", "revoked")}
    links["other"] = _link(session, owner, other)
    session.get_one(ShareLink, links["expired"].id).expires_at = utcnow() - timedelta(seconds=1)
    sharing.revoke_link(
        session=session, viewer=owner, record_id=target.id, link_id=links["revoked"].id, now=utcnow()
    )
    session.flush()
    state = World(
        target=target,
        other=other,
        trashed=trashed,
        comparison_id=comparison_id,
        annotation=annotation,
        live_link=links["valid"].id,
        tokens={name: link.token for name, link in links.items()},
    )
    visitors = {name: Visitor(viewer) for name, viewer in viewers.items()}
    visitors["anonymous"] = Visitor(ANONYMOUS)
    for name in ("valid", "expired", "revoked", "other"):
        visitors[f"{name}_token"] = Visitor(ANONYMOUS, state.tokens[name])
    return state, visitors


def _list(session: Session, w: World, v: Visitor) -> bool:
    page = library.search_history(session=session, viewer=v.viewer, query=HistoryQuery(page_size=100))
    return w.target.id in {row.id for row in page.rows}


def _view(session: Session, w: World, v: Visitor) -> bool:
    if v.token is not None:
        sharing.open_shared(session=session, record_id=w.target.id, token=v.token, now=utcnow())
    else:
        owned.open_readable(session=session, viewer=v.viewer, kind=RecordKind.ANALYSIS, record_id=w.target.id)
    return True


def _audit(session: Session, w: World, v: Visitor) -> bool:
    rows = audit.events(session=session, viewer=v.viewer)
    return any(r.target_type == audit.VISUALIZATION and r.target_id == w.target.id for r in rows)


def _comparison_list(session: Session, w: World, v: Visitor) -> bool:
    rows = compare_store.list_saved_comparisons(session=session, viewer=v.viewer)
    return w.comparison_id in {row.id for row in rows}


def _save_comparison(session: Session, w: World, v: Visitor) -> bool:
    comparison = compare(make_analysis(TEXT, model_id="tiny-a"), make_analysis(TEXT, model_id="tiny-b"))
    compare_store.save_comparison(
        session=session, viewer=v.viewer, comparison=comparison, request=_request(), title="new"
    )
    return True


def _call(action: Callable[..., object], **fixed: object) -> Path:
    def path(session: Session, w: World, v: Visitor) -> bool:
        values = {name: value(w) if callable(value) else value for name, value in fixed.items()}
        action(session=session, viewer=v.viewer, **values)
        return True

    return path


def _target(w: World) -> int:
    return w.target.id


PATHS: dict[str, Path] = {
    # reads
    "history_list": _list,
    "view": _view,
    "export_json": _call(library.export_json, visualization_id=_target),
    "export_zip": _call(library.export_zip, visualization_id=_target),
    "audit_log": _audit,
    "list_links": _call(sharing.list_links, record_id=_target, now=utcnow()),
    "comparison_view": _call(compare_store.open_comparison, comparison_id=lambda w: w.comparison_id),
    "comparison_list": _comparison_list,
    # writes
    "annotate": _call(library.annotate, visualization_id=_target, values={"body": "a note"}),
    "edit_annotation": _call(
        library.edit_annotation, annotation_id=lambda w: w.annotation.id, values={"body": "changed"}
    ),
    "delete": _call(owned.delete, kind=RecordKind.ANALYSIS, record_id=_target),
    "restore": _call(owned.restore, kind=RecordKind.ANALYSIS, record_id=lambda w: w.trashed.id),
    "make_public": _call(owned.set_public, kind=RecordKind.ANALYSIS, record_id=_target, public=True),
    "create_link": _call(sharing.create_link, record_id=_target, expires_in_days=7, now=utcnow()),
    "revoke_link": _call(sharing.revoke_link, record_id=_target, link_id=lambda w: w.live_link, now=utcnow()),
    "save_new": _call(library.save_analysis, analysis=make_analysis("fresh"), title="", tags=""),
    "save_comparison": _save_comparison,
}

EVERYTHING = set(PATHS)
NOTHING: set[str] = set()
# visitor -> the paths it is allowed; every other path is denied.
MATRIX: dict[str, set[str]] = {
    "owner": EVERYTHING,
    "other_analyst": {"save_new", "save_comparison"},
    "viewer": NOTHING,
    "admin": EVERYTHING,
    "anonymous": NOTHING,
    "valid_token": {"view"},
    "expired_token": NOTHING,
    "revoked_token": NOTHING,
    "other_token": NOTHING,
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_access_matrix(session: Session, world: tuple[World, dict[str, Visitor]], who: str) -> None:
    """Each path allows exactly the cells the matrix names; denials never leak existence."""
    state, visitors = world
    allowed = set()
    for name, path in PATHS.items():
        savepoint = session.begin_nested()
        try:
            if path(session, state, visitors[who]):
                allowed.add(name)
        except NotFoundError as exc:
            assert "not found" in str(exc), (name, str(exc))
        except PermissionDeniedError:
            pass
        finally:
            savepoint.rollback()
    assert sorted(allowed) == sorted(MATRIX[who])
