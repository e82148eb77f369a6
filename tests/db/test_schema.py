"""Schema and migrations: upgrade from empty and downgrade to base on both databases, the
models match the migrated schema, every foreign key is indexed, constraints hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.attention.codec import analysis_fields
from core.domain.identity import Role
from db import session as db_session
from db.models import (
    MAX_ATTENTION_BYTES,
    Annotation,
    AttentionTooLargeError,
    AuditEvent,
    Base,
    Comparison,
    Grant,
    Job,
    JobStatus,
    ShareLink,
    User,
    Visualization,
    VisualizationTag,
)
from db.session import alembic_config, include_object, init_db, make_engine
from tests.factories import make_analysis

TABLES = {table.name for table in Base.metadata.sorted_tables}


def _visualization(owner_id: int, **overrides: object) -> Visualization:
    fields = {**analysis_fields(make_analysis()), **overrides}
    return Visualization(owner_id=owner_id, title="A title", **fields)


def test_upgrade_from_empty_then_downgrade_to_base(empty_database_url: str) -> None:
    """Migrations build every table from nothing, match the models, and undo cleanly."""
    engine = make_engine(empty_database_url)
    try:
        init_db(engine)
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
            context = MigrationContext.configure(
                connection, opts={"include_object": include_object, "compare_type": True}
            )
            assert compare_metadata(context, Base.metadata) == []
            assert (
                context.get_current_revision()
                == ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
            )
        init_db(engine)  # idempotent at head
        command.downgrade(alembic_config(engine), "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        command.upgrade(alembic_config(engine), "head")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_every_foreign_key_leads_an_index() -> None:
    """Each foreign key column is the first column of an index, unique constraint or primary key."""
    for table in Base.metadata.sorted_tables:
        leading = {index.columns[0].name for index in table.indexes}
        leading |= {c.columns[0].name for c in table.constraints if hasattr(c, "columns") and len(c.columns)}
        for fk in table.foreign_keys:
            assert fk.parent.name in leading, f"{table.name}.{fk.parent.name} has no index"


def test_constraint_names_follow_the_convention() -> None:
    """Named constraints make later migrations (and SQLite batch mode) predictable."""
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            assert constraint.name, f"unnamed constraint on {table.name}"
            assert str(constraint.name).startswith(("pk_", "fk_", "uq_", "ck_")), constraint.name


def test_sqlite_pragmas(sqlite_engine: Engine) -> None:
    """Foreign keys are enforced and WAL is on for the embedded database."""
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_crud_and_reprs(session: Session) -> None:
    """Rows of every table can be written, read back, and describe themselves."""
    alice = User(username="alice", display_name="Alice", role=Role.ANALYST, email="a@example.org")
    bob = User(username="bob", role=Role.VIEWER)
    session.add_all([alice, bob])
    session.flush()
    vis = _visualization(alice.id)
    vis.tags = [VisualizationTag(tag="geo")]
    comparison = Comparison(
        owner_id=alice.id,
        title="A vs B",
        model_a_id="a",
        model_a_revision="1",
        model_b_id="b",
        model_b_revision="2",
        text="hello",
        result=b"\x00\x01",
    )
    session.add_all([vis, comparison])
    session.flush()
    note = Annotation(visualization_id=vis.id, author_id=alice.id, body="Look", layer=1, head=0)
    link = ShareLink(visualization_id=vis.id, token_hash="f" * 64, created_by=alice.id)
    grant = Grant(comparison_id=comparison.id, grantee_id=bob.id, granted_by=alice.id)
    event = AuditEvent(
        actor_id=alice.id, action="analysis.save", target_type="visualization", target_id=vis.id
    )
    job = Job(kind="recompute", params={"visualization_id": vis.id}, owner_id=alice.id)
    session.add_all([note, link, grant, event, job])
    session.flush()
    session.expire_all()

    stored = session.get(Visualization, vis.id)
    assert stored is not None and stored.tag_names == ["geo"] and stored.annotations[0].is_pinned
    assert stored.created_at.tzinfo is UTC
    assert session.get(Job, job.id).status is JobStatus.QUEUED
    assert session.get(User, alice.id).role is Role.ANALYST
    for row in (alice, stored, stored.tags[0], note, comparison, link, grant, event, job):
        assert type(row).__name__ in repr(row)

    job.status, job.progress = JobStatus.COMPLETED, 1.0
    session.flush()
    session.delete(stored)
    session.flush()
    assert session.scalar(select(ShareLink).where(ShareLink.id == link.id)) is None  # cascaded


def test_attention_blob_is_capped(session: Session) -> None:
    """Oversized compact attention is refused with a clear message, and by the database too."""
    with pytest.raises(AttentionTooLargeError, match="at most 8 MiB"):
        _visualization(1, compact_attention=b"x" * (MAX_ATTENTION_BYTES + 1))
    user = User(username="carol", role=Role.ANALYST)
    session.add(user)
    session.flush()
    vis = _visualization(user.id)
    session.add(vis)
    session.flush()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text("UPDATE visualizations SET compact_attention = :blob WHERE id = :id"),
            {"blob": b"x" * (MAX_ATTENTION_BYTES + 1), "id": vis.id},
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"visualization_id": None, "comparison_id": None},
        {"layer": None, "head": 2},
        {"token_start": 5, "token_end": 2},
    ],
)
def test_check_constraints(session: Session, kwargs: dict[str, object]) -> None:
    """Share links need exactly one target; annotation pins must be coherent."""
    user = User(username="dave", role=Role.ANALYST)
    session.add(user)
    session.flush()
    vis = _visualization(user.id)
    session.add(vis)
    session.flush()
    if "visualization_id" in kwargs:
        row: object = ShareLink(token_hash="a" * 64, created_by=user.id, **kwargs)
    else:
        row = Annotation(visualization_id=vis.id, author_id=user.id, body="x", **kwargs)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(row)
        session.flush()


def test_naive_timestamps_are_refused(session: Session) -> None:
    """Only timezone-aware datetimes are stored, so SQLite and Postgres agree."""
    user = User(username="erin", role=Role.ANALYST, locked_until=datetime(2030, 1, 1))
    session.add(user)
    with pytest.raises(Exception, match="timezone-aware"), session.begin_nested():
        session.flush()
    user.locked_until = datetime.now(UTC) + timedelta(hours=1)
    session.flush()


def test_sessionmaker_is_cached_and_migrates_once(tmp_path, monkeypatch) -> None:
    """One factory per URL; the default URL is a SQLite file under the data directory."""
    from core.domain.settings import get_settings

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("HEADLIGHT_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        url = db_session.database_url()
        assert url == f"sqlite:///{tmp_path / 'data' / 'headlight.db'}"
        factory = db_session.get_sessionmaker()
        assert db_session.get_sessionmaker(url) is factory
        with factory.begin() as session:
            assert session.execute(text("SELECT count(*) FROM users")).scalar() == 0
    finally:
        db_session.dispose_all()
        get_settings.cache_clear()
