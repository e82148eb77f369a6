"""History screen under AppTest, on a temporary SQLite database: search, open without the
model, notes, Trash, paging, exports, and a database that is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import auth
from core.domain.settings import get_settings
from core.store import analyses as library
from core.store import transaction
from db import users as users_db
from tests.factories import make_analysis
from tests.pages.accounts import add_account, signed_in

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 120
ADD_NOTE = "FormSubmitter:history.note.add-Add note"


def seed(*texts: str, tags: str = "") -> list[int]:
    """Save analyses of ``texts`` as alice (created on first use)."""
    with transaction.unit_of_work() as session:
        user = users_db.get_by_username(session=session, username="alice")
    viewer = auth.viewer_for(user) if user is not None else add_account("alice")
    with transaction.unit_of_work() as session:
        return [
            library.save_analysis(
                session=session, viewer=viewer, analysis=make_analysis(text), title="", tags=tags
            )
            for text in texts
        ]


def open_history(username: str | None = "alice") -> AppTest:
    """The History screen, signed in as ``username`` (None: a guest)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if username:
        signed_in(at, username)
    at.run()
    at.switch_page("pages/history.py")
    at.run()
    assert not at.exception
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_empty_history_says_how_to_start(database: str) -> None:
    """With nothing saved the list explains where analyses come from."""
    add_account("alice")
    at = open_history()
    assert "No saved analyses match" in at.info[0].value
    assert "Showing 0 of 0" in captions(at)


def test_search_then_open_renders_without_the_model(database: str) -> None:
    """A word of the text finds the analysis; opening it re-renders the stored view."""
    france, _ = seed("The capital of France is Paris", "Zebras <b>run</b> fast")
    at = open_history()
    assert "Showing 1–2 of 2" in captions(at)
    assert "Zebras &lt;b&gt;run&lt;/b&gt; fast" in markdown(at)  # user text is escaped
    at.text_input(key="history.filter.text").set_value("france").run()
    assert "Showing 1–1 of 1" in captions(at)
    at.button(key=f"history.list.open.{france}").click().run()
    assert not at.exception and not at.error
    assert "Re-rendered from stored data; the model did not run." in captions(at)
    assert any("hl-continuation" in m.value or "capital of France" in m.value for m in at.markdown)
    assert {"Tokens", "Load", "Forward", "Render"} <= {m.label for m in at.metric}
    at.button(key="history.open.close").click().run()
    assert "Re-rendered from stored data; the model did not run." not in captions(at)


def test_notes_add_pin_edit_delete(database: str) -> None:
    """A pinned note shows its head and tokens next to the view; it can be edited and deleted."""
    [record_id] = seed("one two three four five")
    at = open_history()
    at.button(key=f"history.list.open.{record_id}").click().run()
    at.text_area(key="history.note.add.body").set_value("Head 1.0 <i>copies</i>")
    at.number_input(key="history.note.add.layer").set_value(1)
    at.number_input(key="history.note.add.head").set_value(0)
    at.number_input(key="history.note.add.token_start").set_value(1)
    at.number_input(key="history.note.add.token_end").set_value(2)
    at.button(key=ADD_NOTE).click().run()
    assert [s.value for s in at.success] == ["Note added."]
    page = markdown(at)
    assert "L1 · H0 · tokens 1–2 “two three”" in page and "Head 1.0 &lt;i&gt;copies&lt;/i&gt;" in page
    assert '<mark title="token 1: Head 1.0 &lt;i&gt;copies&lt;/i&gt;">two</mark>' in page
    note_id = int(next(b.key for b in at.button if b.key.startswith("history.note.show.")).rsplit(".", 1)[1])
    at.button(key=f"history.note.show.{note_id}").click().run()
    assert any("layer 1, head 0" in info.value for info in at.info)
    assert at.session_state["history.hm.layer"] == 1
    at.text_area(key=f"history.note.edit.{note_id}.body").set_value("Renamed note")
    at.button(key=f"FormSubmitter:history.note.edit.{note_id}-Save note").click().run()
    assert "Note saved." in [s.value for s in at.success] and "Renamed note" in markdown(at)
    at.button(key=f"history.note.delete.{note_id}").click().run()
    assert "Note deleted." in [s.value for s in at.success] and "Renamed note" not in markdown(at)


def test_bad_note_shows_the_reason(database: str) -> None:
    [record_id] = seed("one two")
    at = open_history()
    at.button(key=f"history.list.open.{record_id}").click().run()
    at.number_input(key="history.note.add.layer").set_value(0)
    at.button(key=ADD_NOTE).click().run()
    assert "at least 1 character" in at.error[0].value


def test_delete_trash_restore(database: str) -> None:
    """Delete moves to the Trash; Restore brings it back."""
    [record_id] = seed("soon deleted")
    at = open_history()
    at.button(key=f"history.list.open.{record_id}").click().run()
    at.button(key="history.open.delete").click().run()
    assert f"Moved analysis #{record_id} to the Trash." in at.success[0].value
    assert "Showing 0 of 0" in captions(at)
    at.toggle(key="history.filter.trash").set_value(True).run()
    assert any("deleted for good after 30 days" in c for c in captions(at))
    at.button(key=f"history.list.restore.{record_id}").click().run()
    assert f"Restored analysis #{record_id}." in at.success[0].value
    at.toggle(key="history.filter.trash").set_value(False).run()
    assert "Showing 1–1 of 1" in captions(at)


def test_pages_next_and_previous(database: str) -> None:
    """Twenty per page, with a total; Next and Previous move between pages."""
    seed(*[f"analysis number {i}" for i in range(23)], tags="bulk")
    at = open_history()
    assert "Showing 1–20 of 23" in captions(at)
    at.button(key="history.list.next").click().run()
    assert "Showing 21–23 of 23" in captions(at) and at.button(key="history.list.next").disabled
    at.button(key="history.list.previous").click().run()
    assert "Showing 1–20 of 23" in captions(at)
    at.multiselect(key="history.filter.tags").set_value(["bulk"]).run()
    at.selectbox(key="history.filter.sort").set_value("oldest").run()
    assert "Showing 1–20 of 23" in captions(at)
    assert "analysis number 0" in markdown(at).split("analysis number 1")[0]


@pytest.mark.parametrize("kind", ["json", "zip", "csv"])
def test_exports_offer_a_download(database: str, kind: str) -> None:
    [record_id] = seed("export me")
    at = open_history()
    at.button(key=f"history.list.open.{record_id}").click().run()
    at.button(key=f"history.open.export.{kind}").click().run()
    assert not at.exception and not at.error
    prepared = at.session_state["history.export"]
    assert prepared[0] == record_id and prepared[1].endswith(kind) and len(prepared[2]) > 100


def test_recompute_reports_an_unknown_model(database: str) -> None:
    """Recompute needs the model in the registry; otherwise the page says so."""
    [record_id] = seed("made with a test model")
    at = open_history()
    at.button(key=f"history.list.open.{record_id}").click().run()
    at.button(key="history.open.recompute").click().run()
    assert not at.exception
    assert "tiny-causal" in at.error[0].value


def test_database_down_shows_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/down?connect_timeout=2")
    get_settings.cache_clear()
    try:
        at = open_history(username=None)
        assert "database is unavailable" in at.error[0].value
    finally:
        get_settings.cache_clear()
