"""Page tests run app.py on every AppTest run, as the server does.

The server decides once per process whether the app uses Streamlit's old ``pages/``
directory mode, and app.py's `st.navigation` turns it off for good. AppTest decides again
before every run, finds ``pages/`` and would run the page alone, skipping app.py's login
gate; this fixture keeps the decision the server makes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import app_test

from core.domain.settings import get_settings
from db.session import dispose_all


class _NavigationPagesManager(PagesManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _run_app_py_every_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
    yield
    PagesManager.uses_pages_directory = None


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite database for the app under test; every page test gets one, so none
    writes to the project's own ``data/headlight.db`` or reads what an earlier run left there."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    dispose_all()
    get_settings.cache_clear()
