"""Accounts as the login gate and the Admin screen use them: one function per action, each in
its own transaction (`core.access.auth` and `core.access.accounts` hold the rules).

What the gate gets back is plain: the credentials dict the authenticator checks, and a
`SignedInUser` (viewer, actor, username) rather than a user row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.access import accounts, auth
from core.access.accounts import UserRow
from core.access.auth import LoginPolicy
from core.domain.identity import Actor, Role, Viewer
from core.store.transaction import unit_of_work


@dataclass(frozen=True)
class SignedInUser:
    """Who a signed-in browser session is."""

    viewer: Viewer
    actor: Actor
    username: str


@dataclass(frozen=True)
class SessionCheck:
    """The account behind a signed-in session now: ``user`` None when it is gone, deactivated
    or its password changed after the session began (then ``password_changed``)."""

    user: SignedInUser | None
    password_changed: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


# -- the login gate --------------------------------------------------------------------------


def login_credentials(*, policy: LoginPolicy) -> dict[str, Any]:
    """The authenticator's credentials, built from the users table now."""
    with unit_of_work() as session:
        return auth.login_credentials(session=session, now=_now(), policy=policy)


def record_failures(*, usernames: Iterable[str], policy: LoginPolicy) -> bool:
    """Count wrong passwords; returns whether one of them locked its account."""
    locked = False
    with unit_of_work() as session:
        for username in usernames:
            locked |= auth.record_failure(session=session, username=username, policy=policy, now=_now())
    return locked


def record_unknown_failure() -> None:
    """A sign-in with a name no account has (audited without a target)."""
    with unit_of_work() as session:
        auth.record_unknown_failure(session=session)


def record_login(*, username: str) -> None:
    with unit_of_work() as session:
        auth.record_login(session=session, username=username)


def record_logout(*, user_id: int) -> None:
    with unit_of_work() as session:
        auth.record_logout(session=session, user_id=user_id)


def check_session(*, username: str, signed_in_at: datetime | None) -> SessionCheck:
    """Whether a session signed in as ``username`` (at ``signed_in_at``) still stands."""
    with unit_of_work() as session:
        user = auth.signed_in_user(session=session, username=username)
        if user is None:
            return SessionCheck(None)
        if auth.signed_in_before_change(user, signed_in_at):
            return SessionCheck(None, password_changed=True)
        return SessionCheck(SignedInUser(auth.viewer_for(user), auth.actor_for(user), user.username))


def register(*, username: str, password_hash: str, display_name: str, email: str | None, role: Role) -> None:
    """Store an account the registration form created (its password already hashed)."""
    with unit_of_work() as session:
        auth.register(
            session=session,
            username=username,
            password_hash=password_hash,
            display_name=display_name,
            email=email,
            role=role,
        )


def store_changed_password(*, username: str, password_hash: str) -> None:
    with unit_of_work() as session:
        auth.store_changed_password(session=session, username=username, password_hash=password_hash)


# -- the Admin screen ------------------------------------------------------------------------


def list_users(*, viewer: Viewer) -> list[UserRow]:
    with unit_of_work() as session:
        return accounts.list_users(session=session, viewer=viewer, now=_now())


def change_role(*, viewer: Viewer, user_id: int, role: Role) -> None:
    with unit_of_work() as session:
        accounts.change_role(session=session, viewer=viewer, user_id=user_id, role=role)


def set_active(*, viewer: Viewer, user_id: int, active: bool) -> None:
    with unit_of_work() as session:
        accounts.set_active(session=session, viewer=viewer, user_id=user_id, active=active)


def reset_password(*, viewer: Viewer, user_id: int) -> str:
    """A new temporary password for the user (shown once); any lock is lifted."""
    with unit_of_work() as session:
        return accounts.reset_password(session=session, viewer=viewer, user_id=user_id)
