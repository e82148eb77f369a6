"""Admin actions on SQLite and Postgres: only admins, audited, and never without an admin."""

from __future__ import annotations

import bcrypt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import accounts, auth
from core.access.auth import AccountError
from core.domain.errors import NotFoundError, PermissionDeniedError
from core.domain.identity import Role
from db import users as users_db
from db.models import AuditEvent, User, utcnow
from tests.fixtures.databases import UserFactory


def test_only_admins_manage_users(session: Session, make_user: UserFactory) -> None:
    analyst = make_user("ann")
    for action in (
        lambda: accounts.list_users(session=session, viewer=analyst, now=utcnow()),
        lambda: accounts.change_role(
            session=session, viewer=analyst, user_id=analyst.user_id or 0, role=Role.ADMIN
        ),
        lambda: accounts.set_active(
            session=session, viewer=analyst, user_id=analyst.user_id or 0, active=False
        ),
        lambda: accounts.reset_password(session=session, viewer=analyst, user_id=analyst.user_id or 0),
    ):
        with pytest.raises(PermissionDeniedError):
            action()


def test_role_change_and_deactivation_are_audited(session: Session, make_user: UserFactory) -> None:
    admin, ann = make_user("root", Role.ADMIN), make_user("ann")
    assert ann.user_id is not None
    accounts.change_role(session=session, viewer=admin, user_id=ann.user_id, role=Role.VIEWER)
    accounts.change_role(session=session, viewer=admin, user_id=ann.user_id, role=Role.VIEWER)  # no-op
    accounts.set_active(session=session, viewer=admin, user_id=ann.user_id, active=False)
    accounts.set_active(session=session, viewer=admin, user_id=ann.user_id, active=True)
    rows = {row.username: row for row in accounts.list_users(session=session, viewer=admin, now=utcnow())}
    assert (rows["ann"].role, rows["ann"].is_active) == (Role.VIEWER, True)
    events = session.scalars(select(AuditEvent).where(AuditEvent.target_id == ann.user_id)).all()
    assert [e.action for e in events] == ["user.role_change", "user.deactivate", "user.activate"]
    assert events[0].detail == {"username": "ann", "from": "analyst", "to": "viewer"}
    assert events[0].actor_id == admin.user_id
    with pytest.raises(AccountError, match="Choose one of"):
        accounts.change_role(session=session, viewer=admin, user_id=ann.user_id, role=Role.GUEST)
    with pytest.raises(NotFoundError):
        accounts.set_active(session=session, viewer=admin, user_id=99_999, active=False)


def test_the_app_never_loses_its_last_admin(session: Session, make_user: UserFactory) -> None:
    root = make_user("root", Role.ADMIN)
    assert root.user_id is not None
    with pytest.raises(AccountError, match="yourself"):
        accounts.change_role(session=session, viewer=root, user_id=root.user_id, role=Role.ANALYST)
    with pytest.raises(AccountError, match="yourself"):
        accounts.set_active(session=session, viewer=root, user_id=root.user_id, active=False)
    second = make_user("second", Role.ADMIN)
    assert second.user_id is not None
    accounts.change_role(session=session, viewer=root, user_id=second.user_id, role=Role.ANALYST)
    accounts.change_role(session=session, viewer=root, user_id=second.user_id, role=Role.ADMIN)
    session.get_one(User, root.user_id).is_active = False  # e.g. deactivated from the console
    session.flush()
    with pytest.raises(AccountError, match="last active admin"):
        accounts.set_active(session=session, viewer=root, user_id=second.user_id, active=False)


def test_reset_password_gives_a_working_temporary_password(session: Session, make_user: UserFactory) -> None:
    admin, ann = make_user("root", Role.ADMIN), make_user("ann")
    assert ann.user_id is not None
    user = session.get_one(User, ann.user_id)
    user.failed_logins, user.locked_until = 5, utcnow()
    password = accounts.reset_password(session=session, viewer=admin, user_id=ann.user_id)
    assert auth.password_problem(password) is None
    assert bcrypt.checkpw(password.encode(), (user.password_hash or "").encode())
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_console_sets_a_password(session: Session) -> None:
    users_db.create_user(session=session, username="local", password_hash="x", role=Role.ANALYST)
    user = accounts.set_password_from_console(session=session, username="LOCAL", password="Fresh-password-1")
    assert bcrypt.checkpw(b"Fresh-password-1", (user.password_hash or "").encode())
    with pytest.raises(NotFoundError):
        accounts.set_password_from_console(session=session, username="ghost", password="Fresh-password-1")
