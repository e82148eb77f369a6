"""The save panel on the Generate screen: save with title and tags, save every run, and a
database that is down (the analysis stays on screen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.domain.identity import Actor, Role, Viewer
from core.domain.settings import get_settings
from core.store import analyses as library
from core.store import transaction
from tests.factories import make_analysis
from tests.pages.accounts import add_account, signed_in
from ui.auth import IDENTITY_STATE_KEY, Identity

APP = Path(__file__).resolve().parents[2] / "app.py"


def generate_with(text: str, username: str | None = "alice") -> AppTest:
    """The Generate screen showing a ready analysis of ``text`` (no model run), signed in
    as ``username`` (None: a guest)."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    if username:
        signed_in(at, username)
    at.session_state["generate.analysis"] = make_analysis(text)
    at.run()
    assert not at.exception
    return at


def saved_titles(viewer: Viewer) -> list[tuple[str, tuple[str, ...]]]:
    with transaction.unit_of_work() as session:
        page = library.search_history(session=session, viewer=viewer, query=library.HistoryQuery())
    return [(row.title, row.tags) for row in page.rows]


def test_save_with_title_and_tags(database: str) -> None:
    """Save stores the analysis once; the button is then disabled for it."""
    alice = add_account("alice")
    at = generate_with("The capital of France is")
    at.text_input(key="generate.save.title").set_value("Capitals")
    at.text_input(key="generate.save.tags").set_value("geo, Demo")
    at.button(key="generate.save.button").click().run()
    assert "Saved as #1" in at.success[0].value
    assert at.button(key="generate.save.button").disabled
    at.run()
    assert saved_titles(alice) == [("Capitals", ("demo", "geo"))]


def test_save_every_run_saves_each_new_analysis_once(database: str) -> None:
    alice = add_account("alice")
    at = generate_with("first text")
    at.toggle(key="generate.save.auto").set_value(True).run()
    at.run()
    at.session_state["generate.analysis"] = make_analysis("second text")
    at.run()
    at.run()
    assert sorted(title for title, _ in saved_titles(alice)) == ["first text", "second text"]


def test_guests_and_viewers_are_not_offered_save(database: str) -> None:
    """The panel says why instead of showing a Save button that would be refused."""
    at = generate_with("a guest's text", username=None)
    assert not at.exception and not [b for b in at.button if b.key == "generate.save.button"]
    assert any("Sign in (sidebar) to save" in c.value for c in at.caption)
    add_account("val", Role.VIEWER)
    at = generate_with("a viewer's text", username="val")
    assert any("can read and run, not save" in c.value for c in at.caption)


def test_database_down_keeps_the_analysis_on_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/down?connect_timeout=2")
    get_settings.cache_clear()
    try:
        # Signed in before the database went down: the gate keeps who this session was.
        at = AppTest.from_file(str(APP), default_timeout=120)
        signed_in(at, "alice")
        at.session_state[IDENTITY_STATE_KEY] = Identity(
            Viewer(user_id=1, role=Role.ANALYST), Actor(key="user:1", role="analyst"), "alice"
        )
        at.session_state["generate.analysis"] = make_analysis("keep me on screen")
        at.run()
        assert any("Sign-in is unavailable" in w.value for w in at.sidebar.warning)
        at.button(key="generate.save.button").click().run()
        # The presets panel reports the outage too; the save's own message must be there.
        assert any("Not saved: The database is unavailable" in e.value for e in at.error)
        assert any("keep me on screen" in m.value for m in at.markdown)
        assert not at.button(key="generate.save.button").disabled
    finally:
        get_settings.cache_clear()
