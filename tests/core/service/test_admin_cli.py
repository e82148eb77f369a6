"""`python -m core.service.admin_cli`: the first admin and password resets, no password in argv."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from core.domain.identity import Role
from core.domain.settings import get_settings
from core.service import admin_cli as admin
from core.store import transaction
from db import users as users_db
from db.session import dispose_all

PASSWORD = "Admin-pass-2026"


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv(admin.FROM_ENVIRONMENT, raising=False)
    get_settings.cache_clear()
    yield
    dispose_all()
    get_settings.cache_clear()


def stored_hash(username: str) -> tuple[Role, str]:
    with transaction.unit_of_work() as session:
        user = users_db.get_by_username(session=session, username=username)
        assert user is not None and user.password_hash is not None
        return user.role, user.password_hash


def test_create_admin_from_piped_input(database: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["create-admin", "--username", "Root"], stdin=_Pipe(PASSWORD + "\n")) == 0
    assert "Created admin 'root'" in capsys.readouterr().out
    role, hashed = stored_hash("root")
    assert role is Role.ADMIN and bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert admin.main(["create-admin", "--username", "root"], stdin=_Pipe(PASSWORD)) == 1
    assert "already exists" in capsys.readouterr().err


def test_password_from_the_environment_and_set_password(
    database: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(admin.FROM_ENVIRONMENT, PASSWORD)
    assert admin.main(["create-admin", "--username", "boss"], stdin=_Pipe("")) == 0
    monkeypatch.delenv(admin.FROM_ENVIRONMENT)
    assert admin.main(["set-password", "--username", "boss"], stdin=_Pipe("Changed-pass-1\n")) == 0
    assert bcrypt.checkpw(b"Changed-pass-1", stored_hash("boss")[1].encode())
    assert admin.main(["set-password", "--username", "ghost"], stdin=_Pipe("Changed-pass-1\n")) == 1
    assert "No user is named" in capsys.readouterr().err


def test_weak_password_is_refused(database: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["create-admin", "--username", "root"], stdin=_Pipe("password\n")) == 1
    assert "at least 10 characters" in capsys.readouterr().err


def test_prompt_asks_twice(database: None, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([PASSWORD, "Something-else-1"])
    monkeypatch.setattr(admin.getpass, "getpass", lambda _prompt: next(answers))
    assert admin.main(["create-admin", "--username", "root"], stdin=_Terminal()) == 1
    answers = iter([PASSWORD, PASSWORD])
    assert admin.main(["create-admin", "--username", "root"], stdin=_Terminal()) == 0
