"""Saving, soft delete, restore, purge, annotations and error handling of saved analyses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.domain.errors import HeadlightError, NotFoundError, StorageError
from core.domain.identity import Role
from core.domain.owned import RecordKind
from core.domain.settings import get_settings
from core.store import analyses as library
from core.store import owned, transaction
from core.store.analyses import HistoryQuery
from db import purge as purge_command
from db import session as db_session
from db import users as users_db
from db.models import Annotation, AuditEvent, Comparison, Visualization, VisualizationTag, utcnow
from tests.factories import make_analysis
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save


def test_save_sets_defaults_tags_and_audit(session: Session, make_user: UserFactory) -> None:
    """An untitled save takes the start of the text; tags are cleaned; the save is audited."""
    alice = make_user("alice")
    text = "word " * 40
    record_id = library.save_analysis(
        session=session, viewer=alice, analysis=make_analysis(text), title="  ", tags=" Geo ,  big  DATA,geo,"
    )
    record = owned.open_readable(session=session, viewer=alice, kind=RecordKind.ANALYSIS, record_id=record_id)
    assert record.title.endswith("…") and len(record.title) <= library.DEFAULT_TITLE_CHARS
    assert record.tag_names == ["big data", "geo"]
    assert not record.is_public
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == record_id)).all()
    assert actions == ["analysis.save"]


def test_titles_and_tags_are_bounded() -> None:
    assert library.clean_title("x" * 500, "") == "x" * 199 + "…"
    assert library.clean_title("a\n  b", "ignored") == "a b"
    assert library.default_title("") == "Untitled analysis"
    assert library.parse_tags(["A", "a", ""]) == ["a"]
    with pytest.raises(HeadlightError, match="at most 20 tags"):
        library.parse_tags(",".join(f"t{i}" for i in range(21)))
    with pytest.raises(HeadlightError, match="at most 40 characters"):
        library.parse_tags("y" * 41)


def test_soft_delete_restore_and_purge(session: Session, make_user: UserFactory) -> None:
    """Deleted analyses leave the list for the Trash, come back on restore, and purge removes
    old ones for good with their notes, tags and search entries."""
    alice = make_user("alice")
    old = save(session, alice, "ancient zebra text", tags="old")
    recent = save(session, alice, "recent zebra text")
    library.annotate(session=session, viewer=alice, visualization_id=old.id, values={"body": "gone soon"})
    for record in (old, recent):
        owned.delete(session=session, viewer=alice, kind=RecordKind.ANALYSIS, record_id=record.id)
    assert library.search_history(session=session, viewer=alice, query=HistoryQuery(text="zebra")).total == 0
    with pytest.raises(NotFoundError):
        owned.delete(session=session, viewer=alice, kind=RecordKind.ANALYSIS, record_id=old.id)
    owned.restore(session=session, viewer=alice, kind=RecordKind.ANALYSIS, record_id=recent.id)
    assert library.search_history(session=session, viewer=alice, query=HistoryQuery(text="zebra")).total == 1
    with pytest.raises(NotFoundError, match="Trash"):
        owned.restore(session=session, viewer=alice, kind=RecordKind.ANALYSIS, record_id=recent.id)

    old.deleted_at = utcnow() - timedelta(days=40)
    comparison = Comparison(
        owner_id=alice.user_id,
        title="c",
        model_a_id="a",
        model_a_revision="1",
        model_b_id="b",
        model_b_revision="1",
        text="t",
        deleted_at=utcnow() - timedelta(days=31),
    )
    session.add(comparison)
    session.flush()
    old_id, recent_id = old.id, recent.id
    nothing = {"visualizations": 0, "comparisons": 0, "atlases": 0, "datasets": 0}
    assert purge_command.purge(session=session, days=60) == nothing
    assert purge_command.purge(session=session, days=30) == {**nothing, "visualizations": 1, "comparisons": 1}
    session.expire_all()
    assert session.get(Visualization, old_id) is None
    assert session.get(Visualization, recent_id) is not None
    assert session.scalar(select(func.count()).select_from(Annotation)) == 0
    assert session.scalar(select(func.count()).select_from(VisualizationTag)) == 0
    assert (
        library.search_history(session=session, viewer=alice, query=HistoryQuery(text="ancient")).total == 0
    )
    with pytest.raises(ValueError, match="0 or more"):
        purge_command.purge(session=session, days=-1)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"body": "   "}, "at least 1 character"),
        ({"body": "x", "layer": 1}, "Layer must be below 1"),
        ({"body": "x", "head": 0}, "Choose a layer"),
        ({"body": "x", "layer": 0, "head": 2}, "Head must be below 2"),
        ({"body": "x", "token_start": 3, "token_end": 1}, "must come before"),
        ({"body": "x", "token_start": 0, "token_end": 99}, "numbered 0 to"),
        ({"body": "x", "layer": -1}, "greater than or equal to 0"),
        ({"body": "x" * 5001}, "at most 5000"),
    ],
)
def test_annotation_input_is_validated(
    session: Session, make_user: UserFactory, values: dict, message: str
) -> None:
    alice = make_user("alice")
    record = save(session, alice, "one two three four")
    with pytest.raises(HeadlightError, match=message):
        library.annotate(session=session, viewer=alice, visualization_id=record.id, values=values)


def test_pins_are_normalised(session: Session, make_user: UserFactory) -> None:
    """A single pinned token fills both ends of the range; pinned notes keep layer and head."""
    alice = make_user("alice")
    record = save(session, alice, "one two three four")
    note = library.annotate(
        session=session,
        viewer=alice,
        visualization_id=record.id,
        values={"body": " look ", "layer": 0, "head": 1, "token_end": 2},
    )
    assert (note.body, note.layer, note.head, note.token_start, note.token_end) == ("look", 0, 1, 2, 2)
    assert note.is_pinned


def test_database_down_is_a_clear_storage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable database raises StorageError with a readable message; no engine is
    cached for it, so the next action tries again."""
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        with pytest.raises(StorageError, match="unavailable"), transaction.unit_of_work():
            pass
        # Only this URL: engines other tests left for their own databases are not this test's concern.
        assert url not in db_session._factories
    finally:
        get_settings.cache_clear()


def test_unit_of_work_commits_and_maps_integrity_errors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Success commits; a constraint violation becomes StorageError; other errors pass through;
    the purge command runs against the configured database."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'uow.db'}")
    get_settings.cache_clear()
    try:
        with transaction.unit_of_work() as session:
            user_id = users_db.create_user(
                session=session, username="kept", password_hash="x", role=Role.ANALYST
            ).id
        with transaction.unit_of_work() as session:
            kept = users_db.get_by_username(session=session, username="kept")
            assert kept is not None and kept.id == user_id  # committed, found again
        with pytest.raises(StorageError, match="refused"), transaction.unit_of_work() as session:
            session.add(
                Comparison(
                    owner_id=10**6,
                    title="x",
                    model_a_id="a",
                    model_a_revision="1",
                    model_b_id="b",
                    model_b_revision="1",
                    text="t",
                )
            )
        with pytest.raises(KeyError), transaction.unit_of_work():
            raise KeyError("not a database error")
        assert purge_command.main(["--days", "0"]) == 0
        with pytest.raises(SystemExit):
            purge_command.main(["--days", "-1"])
    finally:
        db_session.dispose_all()
        get_settings.cache_clear()
