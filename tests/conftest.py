"""Shared fixtures: settings, registry, a tiny random model, and the real bundled models.

Real models are loaded once per test session through one `AnalysisService`.
"""

from __future__ import annotations

import os
import secrets

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Page tests share one service per process: generous limits keep them independent (limits
# themselves are tested in tests/core/test_service_plumbing.py); no /metrics port in tests.
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

import pytest

from core.domain.settings import Settings, get_settings
from core.models.registry import Registry, load_registry
from core.service.analysis_service import AnalysisService


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
