"""Reads and writes of user accounts, in the manner of `db.queries`: keyword-only ``session``,
never a commit. Usernames are stored lower-case (the login form lower-cases what is typed).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from core.domain.identity import Role
from db.models import User, utcnow


def get_user(*, session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_by_username(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.lower()))


def login_candidates(*, session: Session) -> list[User]:
    """Active users with a password: the only ones the login form knows."""
    return list(
        session.scalars(
            select(User).where(User.is_active.is_(True), User.password_hash.is_not(None)).order_by(User.id)
        )
    )


def list_users(*, session: Session) -> list[User]:
    """Every account, oldest first (the admin screen)."""
    return list(session.scalars(select(User).order_by(User.id)))


def taken(*, session: Session, username: str, email: str | None) -> bool:
    """Whether the username or the email already belongs to an account (active or not)."""
    clauses = [User.username == username.lower()]
    if email:
        clauses.append(func.lower(User.email) == email.lower())
    return session.scalar(select(func.count()).select_from(User).where(or_(*clauses))) != 0


def create_user(
    *,
    session: Session,
    username: str,
    password_hash: str,
    role: Role,
    display_name: str = "",
    email: str | None = None,
) -> User:
    user = User(
        username=username.lower(),
        password_hash=password_hash,
        role=role,
        display_name=display_name,
        email=email or None,
    )
    session.add(user)
    session.flush()
    return user


def count_active_admins(*, session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
        or 0
    )


def set_password_hash(*, session: Session, user: User, password_hash: str) -> None:
    """A new password; also clears failed logins and any lock, and ends older sign-ins."""
    user.password_hash = password_hash
    user.failed_logins = 0
    user.locked_until = None
    user.credentials_changed_at = utcnow()
    session.flush()


def add_failure(*, session: Session, user: User) -> int:
    """One more failed login, counted in SQL so concurrent failures all count; the new count."""
    session.execute(
        update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1),
        execution_options={"synchronize_session": False},
    )
    session.refresh(user, ["failed_logins"])
    return user.failed_logins


def lock(*, session: Session, user: User, until: datetime) -> None:
    user.locked_until = until
    session.flush()


def clear_failures(*, session: Session, user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
