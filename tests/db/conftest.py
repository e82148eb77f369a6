"""Database fixtures: every test runs on SQLite and on Postgres, inside a rolled-back transaction.

Postgres comes from ``HEADLIGHT_TEST_POSTGRES_URL`` (default: the local server as user
postgres); the suite creates its own uniquely named database there, migrates it, and drops
it at the end. Without a reachable server the Postgres half is skipped, unless
``HEADLIGHT_REQUIRE_POSTGRES`` is set (CI), where it fails instead (`tests.services`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.domain.identity import Role, Viewer
from db.models import User
from db.session import init_db, make_engine
from tests.services import unavailable

POSTGRES_URL = os.environ.get(
    "HEADLIGHT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgres"]


class PostgresServer:
    """Creates and drops uniquely named databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(
            self.url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )

    def create(self) -> str:
        name = f"headlight_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(POSTGRES_URL)
    try:
        with server.admin.connect():
            pass
    except OperationalError as exc:
        unavailable(
            "postgres",
            f"Postgres is unreachable at {server.url.render_as_string()}: {str(exc).splitlines()[0]}",
        )
    yield server
    server.admin.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'headlight.db'}")
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_engine(postgres_server: PostgresServer) -> Iterator[Engine]:
    url = postgres_server.create()
    engine = make_engine(url)
    try:
        init_db(engine)
        yield engine
    finally:
        engine.dispose()
        postgres_server.drop(url)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work, commits included, is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new, unmigrated database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create()
    try:
        yield url
    finally:
        server.drop(url)


UserFactory = Callable[..., Viewer]


@pytest.fixture
def make_user(session: Session) -> UserFactory:
    """``make_user("alice", Role.ANALYST)`` adds a user and returns their `Viewer`."""

    def make(username: str, role: Role = Role.ANALYST) -> Viewer:
        user = User(username=username, display_name=username.title(), role=role)
        session.add(user)
        session.flush()
        return Viewer(user_id=user.id, role=role)

    return make
