"""Secrets: where the cookie key comes from, and whether production may start.

Secrets come from the environment or `.streamlit/secrets.toml` (see `core.domain.settings`). In
development a missing cookie key is generated once and kept under ``data_dir`` so logins
survive restarts without anyone typing a key; production never generates one and refuses
to start (`production_problems`) while a secret is missing or left at a development value.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.domain.settings import Settings

# A JWT signing key shorter than this (characters) is too easy to guess.
MIN_COOKIE_KEY_CHARS = 32
DEV_COOKIE_KEY_FILE = ".cookie_key"
# Values that appear in examples, compose files and tutorials; never fit for production.
DEVELOPMENT_VALUES = frozenset(
    {
        "",
        "change-me",
        "changeme",
        "dev",
        "development",
        "example",
        "headlight",
        "password",
        "postgres",
        "secret",
        "some_key",
        "test",
    }
)


class MissingSecretError(RuntimeError):
    """A secret production needs was not configured."""


def _development_key(data_dir: Path) -> str:
    """The generated development cookie key, created on first use (owner-readable only)."""
    path = data_dir / DEV_COOKIE_KEY_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: when two processes race, one writes and both read the same key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def cookie_key(settings: Settings) -> str:
    """The key that signs login cookies."""
    if settings.cookie_key is not None and settings.cookie_key.get_secret_value():
        return settings.cookie_key.get_secret_value()
    if settings.is_production:
        raise MissingSecretError("HEADLIGHT_COOKIE_KEY is not set.")
    return _development_key(settings.data_dir)


def _is_development_value(value: str) -> bool:
    return value.strip().lower() in DEVELOPMENT_VALUES


def _url_password_problem(name: str, url: str | None) -> str | None:
    if not url:
        return None
    try:
        password = make_url(url).password
    except ArgumentError:
        return f"{name} is not a valid URL."
    if password is not None and _is_development_value(str(password)):
        return f"{name} uses a development password; set a real one."
    return None


def production_problems(settings: Settings) -> list[str]:
    """Why production must not start with these settings; empty when it may (or in development)."""
    if not settings.is_production:
        return []
    problems = []
    key = settings.cookie_key.get_secret_value() if settings.cookie_key is not None else ""
    if not key:
        problems.append("HEADLIGHT_COOKIE_KEY is not set (environment or .streamlit/secrets.toml).")
    elif _is_development_value(key) or len(key) < MIN_COOKIE_KEY_CHARS:
        problems.append(
            f"HEADLIGHT_COOKIE_KEY is a development value or shorter than {MIN_COOKIE_KEY_CHARS} "
            'characters; generate one with `python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
        )
    for name, url in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url)):
        problem = _url_password_problem(name, url)
        if problem:
            problems.append(problem)
    return problems
