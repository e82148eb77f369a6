"""The save panel on the Generate screen: save with title and tags, save every run, and a
database that is down (the analysis stays on screen)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import library
from core.config import get_settings
from core.identity import local_viewer
from db.session import dispose_all
from tests.factories import make_analysis

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'save.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    dispose_all()
    get_settings.cache_clear()


def generate_with(text: str) -> AppTest:
    """The Generate screen showing a ready analysis of ``text`` (no model run)."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["generate.analysis"] = make_analysis(text)
    at.run()
    assert not at.exception
    return at


def saved_titles() -> list[tuple[str, tuple[str, ...]]]:
    with library.unit_of_work() as session:
        page = library.search_history(
            session=session, viewer=local_viewer(session), query=library.HistoryQuery()
        )
    return [(row.title, row.tags) for row in page.rows]


def test_save_with_title_and_tags(database: str) -> None:
    """Save stores the analysis once; the button is then disabled for it."""
    at = generate_with("The capital of France is")
    at.text_input(key="generate.save.title").set_value("Capitals")
    at.text_input(key="generate.save.tags").set_value("geo, Demo")
    at.button(key="generate.save.button").click().run()
    assert "Saved as #1" in at.success[0].value
    assert at.button(key="generate.save.button").disabled
    at.run()
    assert saved_titles() == [("Capitals", ("demo", "geo"))]


def test_save_every_run_saves_each_new_analysis_once(database: str) -> None:
    at = generate_with("first text")
    at.toggle(key="generate.save.auto").set_value(True).run()
    at.run()
    at.session_state["generate.analysis"] = make_analysis("second text")
    at.run()
    at.run()
    assert sorted(title for title, _ in saved_titles()) == ["first text", "second text"]


def test_database_down_keeps_the_analysis_on_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/down?connect_timeout=2")
    get_settings.cache_clear()
    try:
        at = generate_with("keep me on screen")
        at.button(key="generate.save.button").click().run()
        assert "Not saved: The database is unavailable" in at.error[0].value
        assert any("keep me on screen" in m.value for m in at.markdown)
        assert not at.button(key="generate.save.button").disabled
    finally:
        get_settings.cache_clear()
