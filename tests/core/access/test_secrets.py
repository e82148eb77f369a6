"""Secrets: the production check refuses missing or development values; development
generates its cookie key once; `.streamlit/secrets.toml` is read below the environment."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core.access import secrets
from core.domain import settings as config
from core.domain.settings import Settings

GOOD_KEY = "k" * 20 + "Qx9-" * 8


@pytest.fixture(autouse=True)
def _no_cookie_key_from_the_test_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py sets a cookie key for the app tests; these tests start without one."""
    monkeypatch.delenv("HEADLIGHT_COOKIE_KEY", raising=False)


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite sets a cookie key for the app tests; these tests choose their own."""
    monkeypatch.delenv("HEADLIGHT_COOKIE_KEY", raising=False)


def production(**values: object) -> Settings:
    return Settings(env="production", **values)


def test_development_never_blocks(tmp_path: Path) -> None:
    """Development starts with nothing configured."""
    assert secrets.production_problems(Settings(env="development", data_dir=tmp_path)) == []


def test_production_needs_a_cookie_key() -> None:
    problems = secrets.production_problems(production())
    assert len(problems) == 1 and "HEADLIGHT_COOKIE_KEY is not set" in problems[0]


@pytest.mark.parametrize("key", ["change-me", "secret", "short-but-random-7f3a"])
def test_production_refuses_development_or_short_keys(key: str) -> None:
    [problem] = secrets.production_problems(production(cookie_key=key))
    assert "development value or shorter than 32" in problem


def test_production_refuses_development_database_passwords() -> None:
    problems = secrets.production_problems(
        production(
            cookie_key=GOOD_KEY,
            database_url="postgresql+psycopg://headlight:headlight@db:5432/headlight",
            redis_url="redis://:password@cache:6379/0",
        )
    )
    assert problems == [
        "DATABASE_URL uses a development password; set a real one.",
        "REDIS_URL uses a development password; set a real one.",
    ]


def test_production_starts_with_real_secrets() -> None:
    settings = production(
        cookie_key=GOOD_KEY, database_url="postgresql+psycopg://headlight:Zq8-long-random@db/headlight"
    )
    assert secrets.production_problems(settings) == []
    assert secrets.cookie_key(settings) == GOOD_KEY


def test_production_never_generates_a_key(tmp_path: Path) -> None:
    with pytest.raises(secrets.MissingSecretError):
        secrets.cookie_key(production(data_dir=tmp_path))
    assert not (tmp_path / secrets.DEV_COOKIE_KEY_FILE).exists()


def test_development_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = Settings(env="development", data_dir=tmp_path / "data")
    first = secrets.cookie_key(settings)
    assert len(first) >= secrets.MIN_COOKIE_KEY_CHARS
    assert secrets.cookie_key(settings) == first
    mode = stat.S_IMODE((tmp_path / "data" / secrets.DEV_COOKIE_KEY_FILE).stat().st_mode)
    assert mode == 0o600


def test_secrets_toml_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "secrets.toml"
    toml.write_text(f'cookie_key = "{GOOD_KEY}"\nDATABASE_URL = "sqlite:///from-toml.db"\n')
    monkeypatch.setattr(config, "SECRETS_FILE", toml)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("HEADLIGHT_COOKIE_KEY", raising=False)
    settings = Settings()
    assert settings.cookie_key is not None and settings.cookie_key.get_secret_value() == GOOD_KEY
    assert settings.database_url == "sqlite:///from-toml.db"
    monkeypatch.setenv("HEADLIGHT_COOKIE_KEY", "from-the-environment")
    assert Settings().cookie_key.get_secret_value() == "from-the-environment"  # type: ignore[union-attr]


def test_switches_default_by_environment() -> None:
    """Registration and guest mode are on in development and off in production unless set."""
    development, prod = Settings(env="development"), production()
    assert development.registration_open and development.guests_allowed
    assert not prod.registration_open and not prod.guests_allowed
    assert production(registration_enabled=True, guest_mode=True).guests_allowed
    assert not Settings(env="development", registration_enabled=False).registration_open
