"""The login gate: streamlit-authenticator over the users table, run by app.py on every run.

With `st.navigation` a page switch or a refresh is a fresh script run, so the authenticator
is created and consulted on every run (`establish`): its cookie re-authenticates a refreshed
browser, and the credentials it checks are rebuilt from the database each time, so a new
password, role, lock or deactivation applies at once. The signed-in user's `Viewer` and
`Actor` go to session state, where `ui.session` reads them.

What the authenticator changes in its credentials dict is written back: wrong passwords
(failure counts and locks), registrations and password changes (`core.access.auth`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import CredentialsError, LoginError, RegisterError, ResetError

from core.access import auth, secrets
from core.access.auth import LoginPolicy
from core.domain.errors import HeadlightError
from core.domain.identity import ANONYMOUS, Actor, Role, Viewer
from core.domain.settings import Settings
from core.service import accounts
from ui.session import USER_STATE_KEY, VIEWER_STATE_KEY, client_id

log = logging.getLogger(__name__)

GATE_STATE_KEY = "auth.gate"
IDENTITY_STATE_KEY = "auth.identity"
# Keys the authenticator itself keeps in session state.
# When this session signed in (the form) or its login cookie was issued; a password change
# after it ends the session (`auth.signed_in_before_change`).
SIGNED_IN_AT = "auth.signed_in_at"
SIGNED_OUT_NOTICE = "auth.signed_out_notice"
STATUS = "authentication_status"
USERNAME = "username"
WRONG_CREDENTIALS = "Username or password is incorrect."


class PolicyValidator(stauth.Validator):
    """The authenticator's registration and password-change forms use Headlight's policy."""

    def validate_password(self, password: str) -> bool:
        return auth.password_problem(password) is None

    def diagnose_password(self, password: str) -> str:
        return auth.password_problem(password) or ""


@dataclass(frozen=True)
class Identity:
    viewer: Viewer
    actor: Actor
    username: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.viewer.user_id is not None


def lock_message(policy: LoginPolicy) -> str:
    return (
        f"Too many failed sign-ins: this account is locked for {policy.lock_minutes} minutes. "
        "Try again later, or ask an admin to reset the password."
    )


class LoginGate:
    """One run's authenticator, its credentials (from the users table) and their write-back."""

    def __init__(self, settings: Settings) -> None:
        self.policy = LoginPolicy.of(settings)
        self.expiry_days = settings.cookie_expiry_days
        self.database_ok = True
        try:
            self.credentials = accounts.login_credentials(policy=self.policy)
        except HeadlightError:
            self.database_ok = False
            self.credentials = {"usernames": {}}
        self._counts = auth.failure_counts(self.credentials)
        # Cookies come from the request headers (st.context), so the authenticator's default
        # pause to let its cookie component load is not needed.
        self.authenticator = stauth.Authenticate(
            self.credentials,
            settings.cookie_name,
            secrets.cookie_key(settings),
            settings.cookie_expiry_days,
            validator=PolicyValidator(),
            auto_hash=False,
            login_sleep_time=0,
        )

    def restore(self) -> None:
        """Sign a refreshed browser back in from its cookie, noting when the cookie was issued."""
        was_signed_in = bool(st.session_state.get(STATUS))
        # A LoginError here means the cookie names an account that is gone or deactivated.
        with contextlib.suppress(LoginError):
            self.authenticator.login(location="unrendered")
        if not was_signed_in and st.session_state.get(STATUS):
            token = self.authenticator.cookie_controller.get_cookie()
            # A cookie whose issue time cannot be read counts as old as can be.
            issued = auth.cookie_issued_at(token, self.expiry_days)
            st.session_state[SIGNED_IN_AT] = issued or datetime.min.replace(tzinfo=UTC)

    def sync_failures(self) -> tuple[list[str], bool]:
        """Store the wrong passwords the authenticator just counted: who failed, and whether a
        failure locked an account."""
        failed = auth.new_failures(self.credentials, self._counts)
        self._counts = auth.failure_counts(self.credentials)
        locked = bool(failed) and accounts.record_failures(usernames=failed, policy=self.policy)
        return failed, locked

    def _logged_in(self, event: dict[str, Any]) -> None:
        st.session_state[SIGNED_IN_AT] = datetime.now(UTC)
        try:
            accounts.record_login(username=event["username"])
        except HeadlightError:
            log.exception("could not record a login")

    def _logged_out(self, event: dict[str, Any]) -> None:
        viewer = st.session_state.get(VIEWER_STATE_KEY)
        if isinstance(viewer, Viewer) and viewer.user_id is not None:
            try:
                accounts.record_logout(user_id=viewer.user_id)
            except HeadlightError:
                log.exception("could not record a logout")

    def login_form(self) -> None:
        """The sign-in form, with its outcome, in the current container."""
        # The authenticator leaves False after a failure; reset it so False means "failed now".
        if st.session_state.get(STATUS) is False:
            st.session_state[STATUS] = None
        locked = False
        try:
            self.authenticator.login(
                location="main",
                max_login_attempts=self.policy.max_failures,
                key="auth.login",
                fields={"Form name": "Sign in", "Login": "Sign in"},
                callback=self._logged_in,
            )
        except LoginError:
            locked = True  # the only LoginError left here: attempts at the maximum
        try:
            failed, locked_now = self.sync_failures()
            locked |= locked_now
            if st.session_state.get(STATUS) is False and not failed:
                accounts.record_unknown_failure()
        except HeadlightError as exc:
            st.error(str(exc))
        if locked:
            st.session_state[STATUS] = None
            st.error(lock_message(self.policy))
        elif st.session_state.get(STATUS) is False:
            st.error(WRONG_CREDENTIALS)

    def logout_button(self) -> None:
        self.authenticator.logout("Sign out", location="main", key="auth.logout", callback=self._logged_out)

    def resolve(self) -> Identity:
        """Who this session is now; stores the viewer and actor in session state."""
        username = st.session_state.get(USERNAME) if st.session_state.get(STATUS) else None
        identity = self._signed_in(username) if username else None
        if identity is None:
            identity = Identity(viewer=ANONYMOUS, actor=auth.anonymous_actor(client_id()))
        st.session_state[VIEWER_STATE_KEY] = identity.viewer
        st.session_state[USER_STATE_KEY] = identity.actor
        st.session_state[IDENTITY_STATE_KEY] = identity
        return identity

    def _signed_in(self, username: str) -> Identity | None:
        try:
            check = accounts.check_session(username=username, signed_in_at=st.session_state.get(SIGNED_IN_AT))
            if check.user is not None:
                return Identity(check.user.viewer, check.user.actor, check.user.username)
            if check.password_changed:
                st.session_state[SIGNED_OUT_NOTICE] = "Your password was changed. Sign in again."
        except HeadlightError:
            # The database is down: keep who this session was, so work on screen survives.
            previous = st.session_state.get(IDENTITY_STATE_KEY)
            if isinstance(previous, Identity) and previous.username == username:
                return previous
            return None
        self.authenticator.logout(location="unrendered")  # deactivated or deleted meanwhile
        return None

    def register_form(self, role: Role) -> str | None:
        """The registration form; returns the new username once stored."""
        try:
            _, username, name = self.authenticator.register_user(
                location="main",
                captcha=True,
                roles=[role.value],
                password_hint=False,
                key="auth.register",
            )
        except (RegisterError, LoginError) as exc:
            st.error(str(exc))
            return None
        if not username:
            return None
        entry = self.credentials["usernames"][username]
        try:
            accounts.register(
                username=username,
                password_hash=entry["password"],
                display_name=name or username,
                email=entry.get("email"),
                role=role,
            )
        except HeadlightError as exc:
            st.error(str(exc))
            return None
        return username

    def password_form(self, username: str) -> bool:
        """The change-password form for the signed-in user; whether the password changed."""
        changed = False
        try:
            changed = bool(
                self.authenticator.reset_password(
                    username,
                    location="main",
                    key="account.password",
                    fields={"Form name": "Change password", "Reset": "Change password"},
                )
            )
        except CredentialsError:
            st.error("The current password is wrong.")
        except ResetError as exc:
            st.error(str(exc))
        if self.sync_failures()[1]:
            st.error(lock_message(self.policy))
        if changed:
            entry = self.credentials["usernames"][username]
            accounts.store_changed_password(username=username, password_hash=entry["password"])
            # Other sessions and cookies end; this one stays, with a cookie issued from now.
            st.session_state[SIGNED_IN_AT] = datetime.now(UTC)
            self.authenticator.cookie_controller.set_cookie()
        return changed


def establish(settings: Settings) -> Identity:
    """Run the gate for this script run: cookie, sign-in or sign-out, then who this is.

    The sidebar keeps what it drew in a run where someone signs in or out: the
    authenticator's cookie component is drawn there, must reach the browser to set or
    delete the cookie, and makes the browser rerun the script once it has.
    """
    gate = LoginGate(settings)
    st.session_state[GATE_STATE_KEY] = gate
    if not gate.database_ok:
        st.sidebar.warning("Sign-in is unavailable: the database cannot be reached.")
    gate.restore()
    identity = gate.resolve()
    if not identity.signed_in:
        with st.sidebar:
            notice = st.session_state.pop(SIGNED_OUT_NOTICE, None)
            if notice:
                st.warning(notice)
            gate.login_form()
        identity = gate.resolve()
    if identity.signed_in:
        with st.sidebar:
            # A code span shows the name literally (usernames cannot hold backticks).
            st.caption(f"Signed in as `{identity.username}` · {identity.viewer.role.value}")
            gate.logout_button()
            if not st.session_state.get(STATUS):
                gate.login_form()
                identity = gate.resolve()
    return identity


def current_gate() -> LoginGate | None:
    """This run's gate (None when a page runs without app.py, as in some tests)."""
    gate = st.session_state.get(GATE_STATE_KEY)
    return gate if isinstance(gate, LoginGate) else None


def current_identity() -> Identity | None:
    """Who the gate resolved in this session (None before it ran)."""
    identity = st.session_state.get(IDENTITY_STATE_KEY)
    return identity if isinstance(identity, Identity) else None
