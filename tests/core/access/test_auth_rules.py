"""Pure sign-in rules: when a login cookie was issued, and which sign-ins a password change ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.access import auth
from db.models import User


def test_cookie_issue_time_comes_from_its_expiry() -> None:
    expires = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    token = {"username": "alice", "exp_date": expires.timestamp()}
    assert auth.cookie_issued_at(token, 30) == expires - timedelta(days=30)
    assert auth.cookie_issued_at({"username": "alice"}, 30) is None
    assert auth.cookie_issued_at(None, 30) is None
    assert auth.cookie_issued_at({"exp_date": "soon"}, 30) is None


def test_only_sign_ins_before_the_last_change_end() -> None:
    changed = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    user = User(username="alice", credentials_changed_at=changed)
    assert auth.signed_in_before_change(user, changed - timedelta(seconds=1))
    assert not auth.signed_in_before_change(user, changed + timedelta(seconds=1))
    assert not auth.signed_in_before_change(user, None)  # unknown: not judged
    assert not auth.signed_in_before_change(User(username="bob"), changed)  # never changed
