"""Shared fixtures: settings, registry, a tiny random model, and the real bundled models.

Real models are loaded once per test session through one `AnalysisService`.
"""

from __future__ import annotations

import os
import secrets

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Page tests share one service per process: generous limits keep them independent (limits
# themselves are tested in tests/core/service/test_cache_and_limits.py); no /metrics port in tests.
os.environ.setdefault(
    "HEADLIGHT_RATE_LIMITS",
    '{"admin": "1000/minute", "analyst": "1000/minute", "viewer": "1000/minute", '
    '"guest": "1000/minute", "anonymous": "1000/minute"}',
)
os.environ.setdefault("HEADLIGHT_METRICS_PORT", "0")
os.environ.setdefault("HEADLIGHT_SHARE_LINK_LIMIT", "1000/minute")
# A fresh random cookie key per test run: nothing secret is committed, and the app tests
# never write a development key into the project's data directory.
os.environ.setdefault("HEADLIGHT_COOKIE_KEY", secrets.token_urlsafe(48))

from collections.abc import Iterator

import pytest

from core.domain.settings import Settings, get_settings
from core.models.registry import Registry, load_registry
from core.service.analysis_service import AnalysisService
from db.session import dispose_all

# Database fixtures (SQLite and Postgres) for every test folder that needs them.
pytest_plugins = ["tests.fixtures.databases"]


@pytest.fixture(autouse=True)
def _no_process_state_from_other_tests() -> Iterator[None]:
    """Whatever order tests run in, each starts with settings read from the real
    environment and no database engine cached by `db.session.get_sessionmaker`.

    Runs outside every other fixture: by the time it tears down, monkeypatched variables
    (``DATABASE_URL``, ...) are restored, so the settings cache is cleared after the fact,
    and engines a test cached for its own databases are closed and forgotten.
    """
    get_settings.cache_clear()
    yield
    dispose_all()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def registry(settings: Settings) -> Registry:
    return load_registry(settings.registry_path)


@pytest.fixture(scope="session")
def service(settings: Settings, registry: Registry) -> AnalysisService:
    return AnalysisService(settings, registry)


@pytest.fixture(scope="session")
def smollm2(service: AnalysisService):
    return service.load("smollm2-135m-instruct")[0]


@pytest.fixture(scope="session")
def minilm(service: AnalysisService):
    return service.load("all-minilm-l6-v2")[0]
