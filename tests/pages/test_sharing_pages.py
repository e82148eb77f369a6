"""Sharing, the shared page, guests, the audit log and the admin screen under AppTest."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
from streamlit.testing.v1 import AppTest

from core.domain.identity import Role
from core.domain.settings import get_settings
from core.store import transaction
from db import users as users_db
from tests.pages.accounts import add_account, signed_in
from tests.pages.test_history_page import captions, open_history, seed

APP = Path(__file__).resolve().parents[2] / "app.py"


def open_shared(record_id: int, token: str, *, kind: str | None = None) -> AppTest:
    """A visitor who is not signed in follows a share link."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/shared.py")
    at.query_params.update({"id": str(record_id), "token": token, **({"kind": kind} if kind else {})})
    at.run()
    assert not at.exception
    return at


def share_link(at: AppTest, visualization_id: int) -> str:
    at.button(key=f"history.list.open.{visualization_id}").click().run()
    at.button(key=f"share.analysis.{visualization_id}.create").click().run()
    assert "Share link #" in at.success[0].value
    return at.code[0].value


def test_link_opens_the_shared_page_until_revoked(database: str) -> None:
    """Created from History, the link shows the analysis to a guest; revoked, it is 'not found'."""
    [record_id] = seed("The capital of France is Paris")
    owner = open_history()
    url = share_link(owner, record_id)
    assert f"/shared?id={record_id}&token=" in url
    token = url.split("token=", 1)[1]
    visitor = open_shared(record_id, token)
    assert not visitor.error and "read-only" in visitor.caption[0].value
    assert any("capital of France" in m.value for m in visitor.markdown)
    [link_caption] = [c for c in captions(owner) if c.startswith("Link #")]
    assert "active" in link_caption and "expires never" in link_caption
    link_id = int(link_caption.split("#", 1)[1].split(" ", 1)[0])
    owner.button(key=f"share.analysis.{record_id}.revoke.{link_id}").click().run()
    assert "revoked" in owner.success[0].value
    gone = open_shared(record_id, token)
    assert gone.error[0].value == f"Analysis #{record_id} was not found. It may have been deleted."
    missing = open_shared(record_id + 100, token)
    assert missing.error[0].value == f"Analysis #{record_id + 100} was not found. It may have been deleted."


def test_public_switch_shows_the_analysis_to_guests(database: str) -> None:
    [record_id] = seed("public words")
    owner = open_history()
    owner.button(key=f"history.list.open.{record_id}").click().run()
    owner.toggle(key=f"share.analysis.{record_id}.public").set_value(True).run()
    assert "Anyone can now read this analysis." in owner.success[0].value
    guest = open_history(username=None)
    assert "Showing 1–1 of 1" in captions(guest)
    assert guest.radio(key="history.filter.scope").options == ["Everything I can see", "Public"]
    assert not [t for t in guest.toggle if t.key == "history.filter.trash"]
    guest.button(key=f"history.list.open.{record_id}").click().run()
    assert not guest.exception
    assert not [
        b for b in guest.button if b.key in ("history.open.delete", f"share.analysis.{record_id}.create")
    ]


def test_audit_log_for_owners_and_admins(database: str) -> None:
    [record_id] = seed("audited text")
    add_account("root", Role.ADMIN)
    add_account("other")
    seed_other = open_history("other")
    assert "Showing 0 of 0" in captions(seed_other)  # alice's analysis stays private
    owner = open_history()
    share_link(owner, record_id)
    owner.switch_page("pages/audit.py").run()
    assert not owner.exception
    table = owner.dataframe[0].value
    assert {"analysis.save", "analysis.view", "share.create"} <= set(table["action"])
    other = signed_in(AppTest.from_file(str(APP), default_timeout=120), "other")
    other.run()
    other.switch_page("pages/audit.py").run()
    assert "No events match." in other.info[0].value
    admin = signed_in(AppTest.from_file(str(APP), default_timeout=120), "root")
    admin.run()
    admin.switch_page("pages/audit.py").run()
    admin.text_input(key="audit.filter.actor").set_value("alice").run()
    assert set(admin.dataframe[0].value["who"]) == {"alice"}
    assert admin.get("download_button")


def test_admin_screen_manages_users_and_is_admins_only(database: str) -> None:
    add_account("root", Role.ADMIN)
    ann = add_account("ann")
    admin = signed_in(AppTest.from_file(str(APP), default_timeout=120), "root")
    admin.run()
    admin.switch_page("pages/admin.py").run()
    assert not admin.exception and set(admin.dataframe[0].value["username"]) == {"root", "ann"}
    admin.selectbox(key="admin.user").set_value(ann.user_id).run()
    admin.selectbox(key=f"admin.role.{ann.user_id}").set_value(Role.VIEWER).run()
    admin.button(key="admin.role.apply").click().run()
    assert "is now viewer" in admin.success[0].value
    admin.button(key="admin.reset").click().run()
    password = admin.code[0].value
    admin.button(key="admin.active").click().run()
    assert "deactivated" in admin.success[0].value
    with transaction.unit_of_work() as session:
        user = users_db.get_by_username(session=session, username="ann")
        assert user is not None and (user.role, user.is_active) == (Role.VIEWER, False)
        assert bcrypt.checkpw(password.encode(), (user.password_hash or "").encode())
    add_account("bob")
    analyst = signed_in(AppTest.from_file(str(APP), default_timeout=120), "bob")
    analyst.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        analyst.switch_page("pages/admin.py")
    page = AppTest.from_file(str(APP.parent / "pages" / "admin.py"), default_timeout=60)
    page.run()
    assert "Only admins" in page.error[0].value


def test_shared_page_limits_guessing(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Too many wrong tokens from one client and the page asks it to wait."""
    monkeypatch.setenv("HEADLIGHT_SHARE_LINK_LIMIT", "3/minute")
    get_settings.cache_clear()
    [record_id] = seed("guarded")
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/shared.py")
    for attempt in range(3):
        at.query_params.update({"id": str(record_id), "token": f"guess-{attempt}"})
        at.run()
        assert "was not found" in at.error[0].value
    at.run()
    assert "Too many share links that did not work" in at.error[0].value
