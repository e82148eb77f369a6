"""Accounts for page tests: a user with a known password in the test database, and a
session that is already signed in (as a refreshed browser with a login cookie would be)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.access import auth
from core.domain.identity import Role, Viewer
from core.store import transaction
from db import users as users_db

# Only ever stored (hashed) in a test's temporary database.
PASSWORD = "Test-pass-123"
LOGIN_BUTTON = "FormSubmitter:auth.login-Sign in"


def add_account(username: str = "alice", role: Role = Role.ANALYST) -> Viewer:
    with transaction.unit_of_work() as session:
        user = users_db.create_user(
            session=session, username=username, password_hash=auth.hash_password(PASSWORD), role=role
        )
        return auth.viewer_for(user)


def signed_in(at: AppTest, username: str = "alice") -> AppTest:
    """Mark the session signed in the way the authenticator does after a login."""
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    return at


def sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    """Fill the sidebar form and submit it."""
    fields = {field.label: field for field in at.sidebar.text_input}
    fields["Username"].set_value(username)
    fields["Password"].set_value(password)
    return at.button(key=LOGIN_BUTTON).click().run()
