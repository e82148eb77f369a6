"""Saved comparisons on the History screen and behind share links, under AppTest: listed,
searched, reopened without running a model, exported, shared by link, trashed."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.attention.comparison import compare
from core.domain.identity import Role
from core.store import comparisons as compare_store
from core.store import transaction
from tests.core.store.test_batch import _atlas, _upload
from tests.core.store.test_comparisons import TEXT, _request
from tests.factories import make_analysis
from tests.pages.accounts import add_account
from tests.pages.test_history_page import captions, markdown, open_history
from tests.pages.test_sharing_pages import open_shared


def seed_comparison(title: str, owner: str = "alice") -> int:
    viewer = add_account(owner)
    a = make_analysis(TEXT, model_id="tiny-a", n_layers=2, n_heads=2)
    b = make_analysis(TEXT, model_id="tiny-b", n_layers=1, n_heads=3, seed=1)
    with transaction.unit_of_work() as session:
        return compare_store.save_comparison(
            session=session, viewer=viewer, comparison=compare(a, b), request=_request(), title=title
        )


def comparisons_tab(at: AppTest) -> AppTest:
    at.button_group(key="history.kind").set_value("comparisons").run()
    assert not at.exception
    return at


def test_saved_comparison_is_listed_reopened_and_exported(database: str) -> None:
    record_id = seed_comparison("Fox <b>heads</b>")
    at = comparisons_tab(open_history())
    assert "Fox <b>heads</b>" in markdown(at).replace("&lt;", "<").replace("&gt;", ">")
    assert "<b>heads</b>" not in markdown(at)  # the title is escaped, not rendered
    at.text_input(key="history.comparisons.text").set_value("no such words").run()
    assert "No saved comparisons match" in at.info[0].value
    at.text_input(key="history.comparisons.text").set_value("heads").run()
    at.button(key=f"history.comparisons.open.{record_id}").click().run()
    assert not at.exception
    assert "Re-rendered from stored data; neither model ran." in captions(at)
    assert at.get("plotly_chart"), "the matched-head heatmap is drawn"
    at.button(key="history.comparisons.export.csv").click().run()
    [download] = [d for d in at.get("download_button") if d.key == "history.comparisons.download"]
    assert not at.exception and download is not None


def test_comparison_share_link_opens_for_a_visitor_until_deleted(database: str) -> None:
    record_id = seed_comparison("Shared pair")
    owner = comparisons_tab(open_history())
    owner.button(key=f"history.comparisons.open.{record_id}").click().run()
    owner.button(key=f"share.comparison.{record_id}.create").click().run()
    url = owner.code[0].value
    assert f"/shared?kind=comparison&id={record_id}&token=" in url
    token = url.split("token=", 1)[1]

    visitor = open_shared(record_id, token, kind="comparison")
    assert not visitor.error and "read-only" in visitor.caption[0].value
    assert visitor.get("plotly_chart")
    assert open_shared(record_id, token).error  # the same id as an analysis opens nothing

    owner.button(key="history.comparisons.delete").click().run()
    assert "Trash" in owner.success[0].value
    gone = open_shared(record_id, token, kind="comparison")
    assert gone.error[0].value == f"Comparison #{record_id} was not found. It may have been deleted."
    owner.toggle(key="history.comparisons.trash").set_value(True).run()
    owner.button(key=f"history.comparisons.restore.{record_id}").click().run()
    assert "Restored comparison" in owner.success[0].value


def test_other_users_and_viewers_see_only_what_they_may(database: str) -> None:
    record_id = seed_comparison("Private pair")
    add_account("vera", Role.VIEWER)
    bob = comparisons_tab(open_history("vera"))
    assert "No saved comparisons match" in bob.info[0].value
    assert not [t for t in bob.toggle if t.key == "history.comparisons.trash"]
    assert not [b for b in bob.button if b.key == f"history.comparisons.open.{record_id}"]


def test_atlas_is_listed_on_history_and_opens_read_only_by_link(database: str) -> None:
    viewer = add_account("alice")
    with transaction.unit_of_work() as session:
        atlas_id = _atlas(session, viewer, _upload(session, viewer))
    owner = open_history()
    owner.button_group(key="history.kind").set_value("atlases").run()
    owner.button(key=f"history.atlas.{atlas_id}").click().run()
    assert not owner.exception
    owner.button(key=f"share.atlas.{atlas_id}.create").click().run()
    url = owner.code[0].value
    assert f"/shared?kind=atlas&id={atlas_id}&token=" in url

    visitor = open_shared(atlas_id, url.split("token=", 1)[1], kind="atlas")
    assert not visitor.exception and not visitor.error
    assert visitor.get("plotly_chart") and any(
        d.label == "Download CSV" for d in visitor.get("download_button")
    )
    # Read-only: no delete, no sharing, no model runs from the rows.
    keys = {b.key for b in visitor.button}
    assert "batch.atlas.delete" not in keys and not any(str(k).startswith("batch.atlas.run.") for k in keys)
    assert open_shared(atlas_id, "forged-token", kind="atlas").error
