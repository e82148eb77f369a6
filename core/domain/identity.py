"""Who is asking: roles, the viewer of records, and the actor of a request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The rate-limit and log key of a request nobody signed in for.
ANONYMOUS_KEY = "anonymous"


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"
    GUEST = "guest"


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a user id (None when anonymous) and a role."""

    user_id: int | None
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN and self.user_id is not None


ANONYMOUS = Viewer(user_id=None, role=Role.GUEST)


@dataclass(frozen=True)
class Actor:
    """Who asks: `key` identifies them for rate limits and logs, `role` picks the limit."""

    key: str
    role: str = ANONYMOUS_KEY


ANONYMOUS_ACTOR = Actor(key=ANONYMOUS_KEY)
