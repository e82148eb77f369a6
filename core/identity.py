"""Who is using the app. Until login lands (issue 4) every session is one local analyst."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.permissions import Viewer
from db import queries
from db.models import Role

LOCAL_USERNAME = "local"


def local_viewer(session: Session) -> Viewer:
    """The single local user (role analyst), created on first use."""
    user = queries.get_or_create_user(
        session=session, username=LOCAL_USERNAME, display_name="Local user", role=Role.ANALYST
    )
    return Viewer(user_id=user.id, role=user.role)
