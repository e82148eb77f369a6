"""Managing accounts: what the Admin screen and the admin command line do.

Every screen action asks `core.access.permissions.can_manage_users` first. Two guards keep the
app manageable: admins cannot demote or deactivate themselves, and the last active admin
cannot be demoted or deactivated by anyone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.access import audit, auth, permissions
from core.access.auth import AccountError
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import Role, Viewer
from db import users as users_db
from db.models import User

ASSIGNABLE_ROLES = (Role.ADMIN, Role.ANALYST, Role.VIEWER)
TEMPORARY_PASSWORD_BYTES = 12


@dataclass(frozen=True)
class UserRow:
    """One account as the Admin screen lists it (no password hash)."""

    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    is_active: bool
    failed_logins: int
    locked: bool
    created_at: datetime


def _require_admin(viewer: Viewer) -> None:
    if not permissions.can_manage_users(viewer):
        raise PermissionDeniedError("Only admins can manage users.")


def _target(session: Session, user_id: int) -> User:
    user = users_db.get_user(session=session, user_id=user_id)
    if user is None:
        raise NotFoundError(f"User #{user_id} was not found.")
    return user


def _keep_an_admin(session: Session, viewer: Viewer, user: User) -> None:
    """Refuse a change that would leave the app without an active admin, or lock out the asker."""
    if user.id == viewer.user_id:
        raise AccountError("You cannot demote or deactivate yourself; ask another admin.")
    if user.role is Role.ADMIN and user.is_active and users_db.count_active_admins(session=session) <= 1:
        raise AccountError("This is the last active admin; make someone else admin first.")


def list_users(*, session: Session, viewer: Viewer, now: datetime) -> list[UserRow]:
    _require_admin(viewer)
    return [
        UserRow(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            role=user.role,
            is_active=user.is_active,
            failed_logins=user.failed_logins,
            locked=auth.is_locked(user, now),
            created_at=user.created_at,
        )
        for user in users_db.list_users(session=session)
    ]


def change_role(*, session: Session, viewer: Viewer, user_id: int, role: Role) -> None:
    _require_admin(viewer)
    if role not in ASSIGNABLE_ROLES:
        raise AccountError(f"Choose one of: {', '.join(r.value for r in ASSIGNABLE_ROLES)}.")
    user = _target(session, user_id)
    if user.role is role:
        return
    if user.role is Role.ADMIN:
        _keep_an_admin(session, viewer, user)
    old = user.role
    user.role = role
    session.flush()
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action=audit.USER_ROLE,
        target_type=audit.USER,
        target_id=user.id,
        detail={"username": user.username, "from": old.value, "to": role.value},
    )


def set_active(*, session: Session, viewer: Viewer, user_id: int, active: bool) -> None:
    """Deactivate (the account can no longer sign in; its work stays) or reactivate a user."""
    _require_admin(viewer)
    user = _target(session, user_id)
    if user.is_active == active:
        return
    if not active:
        _keep_an_admin(session, viewer, user)
    user.is_active = active
    session.flush()
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action=audit.USER_ACTIVATE if active else audit.USER_DEACTIVATE,
        target_type=audit.USER,
        target_id=user.id,
        detail={"username": user.username},
    )


def temporary_password() -> str:
    """A random password that meets the policy, to hand to a user once."""
    while True:
        candidate = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
        if auth.password_problem(candidate) is None:
            return candidate


def reset_password(*, session: Session, viewer: Viewer, user_id: int) -> str:
    """Give a user a new random password (also lifting any lock); returns it to show once."""
    _require_admin(viewer)
    user = _target(session, user_id)
    password = temporary_password()
    users_db.set_password_hash(session=session, user=user, password_hash=auth.hash_password(password))
    audit.record(
        session=session,
        actor_id=viewer.user_id,
        action=audit.USER_RESET,
        target_type=audit.USER,
        target_id=user.id,
        detail={"username": user.username},
    )
    return password


def set_password_from_console(*, session: Session, username: str, password: str) -> User:
    """`python -m core.service.admin_cli set-password`: whoever runs it already controls the server."""
    user = users_db.get_by_username(session=session, username=auth.clean_username(username))
    if user is None:
        raise NotFoundError(f"No user is named {username!r}.")
    users_db.set_password_hash(session=session, user=user, password_hash=auth.hash_password(password))
    audit.record(
        session=session,
        actor_id=None,
        action=audit.USER_RESET,
        target_type=audit.USER,
        target_id=user.id,
        detail={"username": user.username, "via": "command line"},
    )
    return user
