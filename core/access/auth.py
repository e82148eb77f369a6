"""Accounts as the login gate needs them, without Streamlit.

streamlit-authenticator checks passwords against a credentials dict; Headlight builds that
dict from the users table on every run (`credentials`), so the database stays the only
store, and writes back what the authenticator changed in it: failed attempts
(`new_failures` -> `record_failure`), registrations and password changes.

Lockout: ``login_max_failures`` failures in a row lock an account for
``login_lock_minutes``. A locked account enters the dict with its attempt counter at the
maximum, so the authenticator refuses it before it even checks the password (a locked
account does not reveal whether a guess was right).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
from sqlalchemy.orm import Session

from core.access import audit
from core.domain.errors import HeadlightError
from core.domain.identity import Actor, Role, Viewer
from core.domain.settings import Settings
from db import users as users_db
from db.models import User

MIN_PASSWORD_CHARS = 10
# bcrypt ignores everything past 72 bytes; longer passwords would give a false sense of strength.
MAX_PASSWORD_BYTES = 72
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@+-]{1,63}$")
BCRYPT_ROUNDS = 12
PASSWORD_RULES = (
    f"At least {MIN_PASSWORD_CHARS} characters (at most {MAX_PASSWORD_BYTES} bytes), with at least two "
    "of: lower-case letters, upper-case letters, digits, other characters; no spaces at either end."
)


class AccountError(HeadlightError):
    """An account action that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int
    lock_minutes: int

    @classmethod
    def of(cls, settings: Settings) -> LoginPolicy:
        return cls(settings.login_max_failures, settings.login_lock_minutes)


def password_problem(password: str) -> str | None:
    """Why ``password`` is refused, or None when it is acceptable."""
    if password != password.strip():
        return "A password cannot begin or end with a space."
    if len(password) < MIN_PASSWORD_CHARS:
        return f"A password needs at least {MIN_PASSWORD_CHARS} characters."
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return f"A password can be at most {MAX_PASSWORD_BYTES} bytes long."
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(classes) < 2:
        return "Mix at least two of: lower-case letters, upper-case letters, digits, other characters."
    return None


def hash_password(password: str) -> str:
    """The bcrypt hash of an acceptable password; raises `AccountError` otherwise."""
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")


def clean_username(username: str) -> str:
    """Lower-case ``username``; raises `AccountError` when it cannot be one."""
    name = username.strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            "A username is 2 to 64 characters (letters, digits and . _ @ + -), "
            "starting with a letter or digit."
        )
    return name


def viewer_for(user: User) -> Viewer:
    return Viewer(user_id=user.id, role=user.role)


def actor_for(user: User) -> Actor:
    """Rate limits and logs key signed-in users by id, so a rename keeps their quota."""
    return Actor(key=f"user:{user.id}", role=user.role.value)


def anonymous_actor(client: str) -> Actor:
    """Visitors who are not signed in share the stricter ``anonymous`` limit, per client."""
    return Actor(key=f"anonymous:{client}", role="anonymous")


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def credentials(users: list[User], *, now: datetime, policy: LoginPolicy) -> dict[str, Any]:
    """The authenticator's credentials dict for active users with a password.

    A locked user's attempt counter is at the maximum (refused before the password is
    checked); after a lock has run out the counter starts again from zero.
    """
    entries: dict[str, dict[str, Any]] = {}
    for user in users:
        if is_locked(user, now):
            attempts = policy.max_failures
        elif user.locked_until is not None:
            attempts = 0
        else:
            attempts = user.failed_logins
        entries[user.username.lower()] = {
            "email": user.email,
            "name": user.display_name or user.username,
            "password": user.password_hash,
            "roles": [user.role.value],
            "failed_login_attempts": attempts,
            "logged_in": False,
        }
    return {"usernames": entries}


def login_credentials(*, session: Session, now: datetime, policy: LoginPolicy) -> dict[str, Any]:
    """`credentials` of every user who may sign in, read from the users table now."""
    return credentials(users_db.login_candidates(session=session), now=now, policy=policy)


def failure_counts(creds: dict[str, Any]) -> dict[str, int]:
    return {name: int(entry.get("failed_login_attempts", 0)) for name, entry in creds["usernames"].items()}


def new_failures(creds: dict[str, Any], before: dict[str, int]) -> list[str]:
    """Usernames whose attempt counter the authenticator raised since ``before`` (wrong passwords)."""
    after = failure_counts(creds)
    return [name for name, count in after.items() if count > before.get(name, 0)]


def record_failure(*, session: Session, username: str, policy: LoginPolicy, now: datetime) -> bool:
    """Count a wrong password for ``username``; returns whether the account is now locked."""
    user = users_db.get_by_username(session=session, username=username)
    if user is None:
        return False
    if user.locked_until is not None and not is_locked(user, now):
        users_db.clear_failures(session=session, user=user)
    failures = users_db.add_failure(session=session, user=user)
    lock = failures >= policy.max_failures
    if lock:
        users_db.lock(session=session, user=user, until=now + timedelta(minutes=policy.lock_minutes))
    detail = {"username": user.username, "failures": failures}
    audit.record(
        session=session,
        actor_id=None,
        action=audit.LOGIN_FAILURE,
        target_type=audit.USER,
        target_id=user.id,
        detail=detail,
    )
    if lock:
        audit.record(
            session=session,
            actor_id=None,
            action=audit.LOGIN_LOCKED,
            target_type=audit.USER,
            target_id=user.id,
            detail={**detail, "minutes": policy.lock_minutes},
        )
    return lock


def record_unknown_failure(*, session: Session) -> None:
    """A failed login for a name that is not an active account (the name is not kept)."""
    audit.record(
        session=session,
        actor_id=None,
        action=audit.LOGIN_FAILURE,
        detail={"reason": "unknown or inactive user"},
    )


def record_login(*, session: Session, username: str) -> User | None:
    """A successful password login: clear the failure count and audit it."""
    user = users_db.get_by_username(session=session, username=username)
    if user is None:
        return None
    users_db.clear_failures(session=session, user=user)
    audit.record(
        session=session,
        actor_id=user.id,
        action=audit.LOGIN_SUCCESS,
        target_type=audit.USER,
        target_id=user.id,
    )
    return user


def record_logout(*, session: Session, user_id: int) -> None:
    audit.record(
        session=session, actor_id=user_id, action=audit.LOGOUT, target_type=audit.USER, target_id=user_id
    )


def signed_in_before_change(user: User, signed_in_at: datetime | None) -> bool:
    """Whether a sign-in made at ``signed_in_at`` predates the account's last password change
    (and so must end). An unknown sign-in time is not judged."""
    changed = user.credentials_changed_at
    return changed is not None and signed_in_at is not None and signed_in_at < changed


def cookie_issued_at(token: object, expiry_days: float) -> datetime | None:
    """When the authenticator issued a login cookie, from its decoded token's expiry."""
    if not isinstance(token, dict) or not isinstance(token.get("exp_date"), int | float):
        return None
    return datetime.fromtimestamp(token["exp_date"], UTC) - timedelta(days=expiry_days)


def signed_in_user(*, session: Session, username: str) -> User | None:
    """The active account behind a signed-in session, or None when it is gone or deactivated."""
    user = users_db.get_by_username(session=session, username=username)
    return user if user is not None and user.is_active else None


def register(
    *,
    session: Session,
    username: str,
    password_hash: str,
    display_name: str,
    email: str | None,
    role: Role,
) -> User:
    """Store an account the registration form created (its password already hashed)."""
    if role is Role.ADMIN:
        raise AccountError(
            "Registration cannot create admins; use `python -m core.service.admin_cli create-admin`."
        )
    name = clean_username(username)
    if users_db.taken(session=session, username=name, email=email):
        raise AccountError("That username or email is already taken.")
    user = users_db.create_user(
        session=session,
        username=name,
        password_hash=password_hash,
        role=role,
        display_name=display_name,
        email=email,
    )
    audit.record(
        session=session,
        actor_id=user.id,
        action=audit.USER_REGISTER,
        target_type=audit.USER,
        target_id=user.id,
        detail={"role": role.value},
    )
    return user


def store_changed_password(*, session: Session, username: str, password_hash: str) -> None:
    """Keep the hash of a password the user changed themselves."""
    user = users_db.get_by_username(session=session, username=username)
    if user is None:
        raise AccountError("This account no longer exists.")
    users_db.set_password_hash(session=session, user=user, password_hash=password_hash)
    audit.record(
        session=session,
        actor_id=user.id,
        action=audit.USER_CHANGE,
        target_type=audit.USER,
        target_id=user.id,
    )


def create_admin(*, session: Session, username: str, password: str) -> User:
    """The first (or another) admin, made from the command line; audited as such."""
    name = clean_username(username)
    password_hash = hash_password(password)
    if users_db.taken(session=session, username=name, email=None):
        raise AccountError(f"A user named {name!r} already exists; use `set-password` or the Admin screen.")
    user = users_db.create_user(
        session=session, username=name, password_hash=password_hash, role=Role.ADMIN, display_name=name
    )
    audit.record(
        session=session,
        actor_id=None,
        action=audit.USER_CREATE,
        target_type=audit.USER,
        target_id=user.id,
        detail={"role": Role.ADMIN.value, "via": "command line"},
    )
    return user
