"""Accounts behind the login gate, on SQLite and Postgres: the credentials dict, wrong
passwords and lockout, registration, password changes, and the first admin."""

from __future__ import annotations

from datetime import timedelta

import bcrypt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import audit, auth
from core.access.auth import AccountError, LoginPolicy
from core.domain.identity import Role
from db import users as users_db
from db.models import AuditEvent, User, utcnow

POLICY = LoginPolicy(max_failures=3, lock_minutes=10)
PASSWORD = "Correct-horse-42"


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def add_user(session: Session, username: str = "alice", role: Role = Role.ANALYST) -> User:
    return users_db.create_user(
        session=session, username=username, password_hash=auth.hash_password(PASSWORD), role=role
    )


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short-1", "at least 10"),
        ("alllowercaseletters", "Mix at least two"),
        (" Leading-space-1", "begin or end with a space"),
        ("Aa1-" * 19, "at most 72 bytes"),
    ],
)
def test_password_policy_refuses(password: str, problem: str) -> None:
    assert problem in (auth.password_problem(password) or "")
    with pytest.raises(AccountError, match=problem):
        auth.hash_password(password)


def test_hash_is_bcrypt_and_verifies() -> None:
    hashed = auth.hash_password(PASSWORD)
    assert hashed.startswith("$2b$12$")
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())


def test_usernames_are_lower_case_and_checked() -> None:
    assert auth.clean_username("  Alice.B ") == "alice.b"
    with pytest.raises(AccountError):
        auth.clean_username("no spaces")


def test_credentials_hold_active_users_with_passwords(session: Session) -> None:
    """Deactivated users and users without a password are absent; roles ride along."""
    add_user(session, "alice")
    add_user(session, "root", Role.ADMIN)
    add_user(session, "gone").is_active = False
    session.add(User(username="nopassword", role=Role.ANALYST))
    session.flush()
    creds = auth.credentials(users_db.login_candidates(session=session), now=utcnow(), policy=POLICY)
    assert set(creds["usernames"]) == {"alice", "root"}
    assert creds["usernames"]["root"]["roles"] == ["admin"]
    assert creds["usernames"]["alice"]["password"].startswith("$2b$")


def test_failures_lock_the_account_and_are_audited(session: Session) -> None:
    user = add_user(session)
    now = utcnow()
    assert not auth.record_failure(session=session, username="alice", policy=POLICY, now=now)
    assert not auth.record_failure(session=session, username="alice", policy=POLICY, now=now)
    assert auth.record_failure(session=session, username="alice", policy=POLICY, now=now)
    assert user.failed_logins == 3 and auth.is_locked(user, now + timedelta(minutes=9))
    assert actions(session) == ["login.failure"] * 3 + ["login.locked"]
    creds = auth.credentials([user], now=now, policy=POLICY)
    assert creds["usernames"]["alice"]["failed_login_attempts"] == POLICY.max_failures


def test_an_expired_lock_starts_counting_again(session: Session) -> None:
    user = add_user(session)
    now = utcnow()
    for _ in range(3):
        auth.record_failure(session=session, username="alice", policy=POLICY, now=now)
    later = now + timedelta(minutes=11)
    assert not auth.is_locked(user, later)
    assert (
        auth.credentials([user], now=later, policy=POLICY)["usernames"]["alice"]["failed_login_attempts"] == 0
    )
    assert not auth.record_failure(session=session, username="alice", policy=POLICY, now=later)
    assert user.failed_logins == 1 and user.locked_until is None


def test_new_failures_reads_the_authenticators_counters() -> None:
    creds = {"usernames": {"alice": {"failed_login_attempts": 1}, "bob": {"failed_login_attempts": 0}}}
    before = auth.failure_counts(creds)
    creds["usernames"]["bob"]["failed_login_attempts"] = 1
    assert auth.new_failures(creds, before) == ["bob"]


def test_login_clears_failures_and_is_audited(session: Session) -> None:
    user = add_user(session)
    auth.record_failure(session=session, username="alice", policy=POLICY, now=utcnow())
    assert auth.record_login(session=session, username="alice") is user
    assert user.failed_logins == 0
    auth.record_logout(session=session, user_id=user.id)
    auth.record_unknown_failure(session=session)
    assert actions(session)[-3:] == ["login.success", "logout", "login.failure"]
    assert auth.record_login(session=session, username="nobody") is None
    assert not auth.record_failure(session=session, username="nobody", policy=POLICY, now=utcnow())


def test_signed_in_user_is_none_once_deactivated(session: Session) -> None:
    user = add_user(session)
    assert auth.signed_in_user(session=session, username="alice") is user
    user.is_active = False
    assert auth.signed_in_user(session=session, username="alice") is None


def test_register_stores_the_account_and_refuses_duplicates(session: Session) -> None:
    hashed = auth.hash_password(PASSWORD)
    user = auth.register(
        session=session,
        username="Carol",
        password_hash=hashed,
        display_name="Carol C",
        email="carol@example.org",
        role=Role.ANALYST,
    )
    assert (user.username, user.role, user.password_hash) == ("carol", Role.ANALYST, hashed)
    assert actions(session) == [audit.USER_REGISTER]
    with pytest.raises(AccountError, match="already taken"):
        auth.register(
            session=session,
            username="other",
            password_hash=hashed,
            display_name="O",
            email="CAROL@example.org",
            role=Role.ANALYST,
        )
    with pytest.raises(AccountError, match="cannot create admins"):
        auth.register(
            session=session,
            username="boss",
            password_hash=hashed,
            display_name="B",
            email=None,
            role=Role.ADMIN,
        )


def test_changed_password_is_stored_and_audited(session: Session) -> None:
    user = add_user(session)
    new_hash = auth.hash_password("Another-pass-77")
    auth.store_changed_password(session=session, username="alice", password_hash=new_hash)
    assert user.password_hash == new_hash and actions(session) == [audit.USER_CHANGE]
    with pytest.raises(AccountError):
        auth.store_changed_password(session=session, username="ghost", password_hash=new_hash)


def test_create_admin(session: Session) -> None:
    user = auth.create_admin(session=session, username="Root", password=PASSWORD)
    assert (user.username, user.role) == ("root", Role.ADMIN)
    assert bcrypt.checkpw(PASSWORD.encode(), (user.password_hash or "").encode())
    with pytest.raises(AccountError, match="already exists"):
        auth.create_admin(session=session, username="root", password=PASSWORD)
    with pytest.raises(AccountError, match="at least 10"):
        auth.create_admin(session=session, username="weak", password="short")


def test_viewer_and_actor_follow_the_user(session: Session) -> None:
    user = add_user(session, "val", Role.VIEWER)
    assert auth.viewer_for(user).role is Role.VIEWER and auth.viewer_for(user).user_id == user.id
    assert auth.actor_for(user).key == f"user:{user.id}" and auth.actor_for(user).role == "viewer"
    assert auth.anonymous_actor("10.0.0.1").role == "anonymous"
