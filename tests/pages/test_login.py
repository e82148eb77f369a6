"""Login flows under AppTest, through app.py's gate: sign in, wrong password, lockout,
sign out, staying signed in across pages, registration on and off, guest mode off, and
production refusing development secrets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from streamlit_authenticator.utilities import Encryptor

from core.access import accounts
from core.domain.identity import Actor, Role
from core.domain.settings import get_settings
from core.store import transaction
from db import users as users_db
from db.models import AuditEvent, User, utcnow
from tests.pages.accounts import PASSWORD, add_account, sign_in

APP = Path(__file__).resolve().parents[2] / "app.py"
REGISTER = "FormSubmitter:auth.register-Register"


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception
    return at


def sidebar_errors(at: AppTest) -> list[str]:
    return [e.value for e in at.sidebar.error]


def audit_actions() -> list[str]:
    """The audit log's actions in order, without the registry's seeding at first start."""
    with transaction.unit_of_work() as session:
        query = select(AuditEvent.action).where(AuditEvent.target_type.is_distinct_from("model"))
        return list(session.scalars(query.order_by(AuditEvent.id)))


def account(username: str) -> User:
    with transaction.unit_of_work() as session:
        user = users_db.get_by_username(session=session, username=username)
        assert user is not None
        return user


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch):
    """Set HEADLIGHT_* variables for one test; settings are re-read."""

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"HEADLIGHT_{name.upper()}", value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


def test_sign_in_stores_viewer_and_actor_and_survives_page_switches(database: str) -> None:
    """The gate puts the user's Viewer and Actor in session state; other pages keep them."""
    viewer = add_account("alice")
    at = sign_in(start(), "Alice")  # the form lower-cases names
    assert not at.exception and not sidebar_errors(at)
    assert at.session_state["auth.viewer"] == viewer
    assert at.session_state["auth.actor"] == Actor(key=f"user:{viewer.user_id}", role="analyst")
    assert [c.value for c in at.sidebar.caption] == ["Signed in as `alice` · analyst"]
    at.switch_page("pages/history.py").run()
    assert at.title[0].value == "History" and at.session_state["auth.viewer"] == viewer
    at.switch_page("pages/account.py").run()
    assert not at.exception and any("Signed in as `alice`" in c.value for c in at.caption)
    assert audit_actions() == ["login.success"]


def test_wrong_password_is_refused_and_audited(database: str) -> None:
    add_account("alice")
    at = sign_in(start(), "alice", "Not-the-password-1")
    assert sidebar_errors(at) == ["Username or password is incorrect."]
    assert at.session_state["auth.viewer"].user_id is None
    sign_in(at, "nobody", "Whatever-pass-1")
    assert sidebar_errors(at) == ["Username or password is incorrect."]
    assert audit_actions() == ["login.failure", "login.failure"]
    assert account("alice").failed_logins == 1


def test_repeated_failures_lock_the_account(database: str, settings_env) -> None:
    """After N failures even the right password is refused until the lock runs out."""
    settings_env(login_max_failures="2", login_lock_minutes="5")
    add_account("alice")
    at = sign_in(start(), "alice", "Wrong-pass-111")
    assert sidebar_errors(at) == ["Username or password is incorrect."]
    sign_in(at, "alice", "Wrong-pass-222")
    assert "locked for 5 minutes" in sidebar_errors(at)[0]
    sign_in(at, "alice")
    assert "locked for 5 minutes" in sidebar_errors(at)[0]
    assert at.session_state["auth.viewer"].user_id is None
    assert audit_actions() == ["login.failure", "login.failure", "login.locked"]
    with transaction.unit_of_work() as session:
        user = users_db.get_by_username(session=session, username="alice")
        assert user is not None and user.locked_until is not None
        user.locked_until = utcnow() - timedelta(seconds=1)  # the lock has run out
    sign_in(at, "alice")
    assert not sidebar_errors(at) and at.session_state["auth.viewer"].user_id is not None


def test_sign_out_returns_to_guest_mode(database: str) -> None:
    add_account("alice")
    at = sign_in(start(), "alice")
    at.button(key="auth.logout").click().run()
    assert not at.exception
    assert at.session_state["auth.viewer"].user_id is None
    assert at.session_state["auth.actor"].role == "anonymous"
    assert {t.label for t in at.sidebar.text_input} == {"Username", "Password"}
    assert audit_actions() == ["login.success", "logout"]


def test_deactivated_user_is_signed_out_on_the_next_run(database: str) -> None:
    add_account("alice")
    at = sign_in(start(), "alice")
    with transaction.unit_of_work() as session:
        user = users_db.get_by_username(session=session, username="alice")
        assert user is not None
        user.is_active = False
    at.run()
    assert at.session_state["auth.viewer"].user_id is None
    assert sign_in(at, "alice") and sidebar_errors(at) == ["Username or password is incorrect."]


def test_registration_creates_an_analyst_who_can_sign_in(database: str) -> None:
    """With registration on (development default) a visitor registers, then signs in."""
    at = start()
    at.switch_page("pages/register.py").run()
    assert not at.exception
    fields = {field.label: field for field in at.main.text_input}
    values = {
        "First name": "Carol",
        "Last name": "Jones",
        "Email": "carol@example.org",
        "Username": "carol",
        "Password": PASSWORD,
        "Repeat password": PASSWORD,
    }
    for label, value in values.items():
        fields[label].set_value(value)
    key = get_settings().cookie_key
    assert key is not None
    captcha = Encryptor(key.get_secret_value()).decrypt(at.session_state["register_user_captcha"])
    fields["Captcha"].set_value(captcha)
    at.button(key=REGISTER).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Account `carol` created" in at.success[0].value
    user = account("carol")
    assert (user.role, user.display_name, user.email) == (Role.ANALYST, "Carol Jones", "carol@example.org")
    sign_in(at, "carol")
    assert at.session_state["auth.viewer"].user_id == user.id
    assert audit_actions() == ["user.register", "login.success"]


def test_weak_registration_password_is_refused(database: str) -> None:
    at = start()
    at.switch_page("pages/register.py").run()
    fields = {field.label: field for field in at.main.text_input}
    for label, value in {
        "First name": "Dan",
        "Last name": "Lee",
        "Email": "d@example.org",
        "Username": "dan",
        "Password": "short",
        "Repeat password": "short",
    }.items():
        fields[label].set_value(value)
    at.button(key=REGISTER).click().run()
    assert "at least 10 characters" in at.error[0].value


def test_registration_switched_off(database: str, settings_env) -> None:
    """The Register page is not offered, and run on its own it refuses."""
    settings_env(registration_enabled="false")
    at = start()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/register.py")
    page = AppTest.from_file(str(APP.parent / "pages" / "register.py"), default_timeout=60)
    page.run()
    assert "Registration is switched off" in page.error[0].value


def test_without_guest_mode_visitors_only_get_sign_in(database: str, settings_env) -> None:
    settings_env(guest_mode="false")
    at = start()
    assert at.title[0].value == "Headlight"
    assert "Sign in with the form in the sidebar." in at.info[0].value
    add_account("alice")
    sign_in(at, "alice")
    assert at.session_state["auth.viewer"].user_id is not None


def test_production_refuses_development_secrets(
    database: str, settings_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADLIGHT_COOKIE_KEY")
    settings_env(env="production")
    at = start()
    assert "will not start in production" in at.error[0].value
    assert "HEADLIGHT_COOKIE_KEY is not set" in at.error[0].value
    assert not at.sidebar.text_input and not at.title


def test_password_change_on_the_account_page(database: str) -> None:
    """A wrong current password is refused (and counted); the right one changes the hash."""
    add_account("alice")
    at = sign_in(start(), "alice")
    at.switch_page("pages/account.py").run()
    form = "FormSubmitter:account.password-Change password"

    def change(current: str, new: str) -> None:
        fields = {field.label: field for field in at.main.text_input}
        fields["Current password"].set_value(current)
        fields["New password"].set_value(new)
        fields["Repeat password"].set_value(new)
        at.button(key=form).click().run()

    change("Wrong-current-1", "Brand-new-pass-1")
    assert at.error[0].value == "The current password is wrong."
    assert account("alice").failed_logins == 1
    change(PASSWORD, "Brand-new-pass-1")
    assert not at.exception and "Password changed" in at.success[0].value
    user = account("alice")
    assert user.failed_logins == 0
    assert bcrypt.checkpw(b"Brand-new-pass-1", (user.password_hash or "").encode())
    assert audit_actions()[-1] == "user.password_change"
    at.run()  # the session that changed the password stays signed in
    assert at.session_state["auth.viewer"].user_id == user.id


def test_a_password_reset_ends_sessions_signed_in_before_it(database: str) -> None:
    """Whoever held the old password is signed out on their next run, with a notice."""
    add_account("alice")
    admin = add_account("root", Role.ADMIN)
    stale = sign_in(start(), "alice")
    assert stale.session_state["auth.viewer"].user_id is not None
    with transaction.unit_of_work() as session:
        temporary = accounts.reset_password(session=session, viewer=admin, user_id=account("alice").id)
    stale.run()
    assert stale.session_state["auth.viewer"].user_id is None
    assert "Your password was changed. Sign in again." in [w.value for w in stale.sidebar.warning]
    fresh = sign_in(start(), "alice", temporary)  # the new password works
    assert fresh.session_state["auth.viewer"].user_id == account("alice").id
