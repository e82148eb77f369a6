"""Admin: list users, change roles, deactivate, reset passwords. Admins only."""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from core.access import permissions
from core.access.accounts import ASSIGNABLE_ROLES, UserRow
from core.domain.errors import HeadlightError
from core.domain.identity import Role, Viewer
from core.service import accounts
from ui.actions import Flash
from ui.session import current_viewer

FLASH = Flash("admin.flash")
SHOWN_ONCE = "admin.shown_once"


def _act(action: str, user_id: int, role: Role | None = None) -> None:
    """One button's action (one service call); its outcome is shown on the next run."""
    FLASH.act(lambda viewer: _do(viewer, action, user_id, role))


def _do(viewer: Viewer, action: str, user_id: int, role: Role | None) -> str:
    if action == "role" and role is not None:
        accounts.change_role(viewer=viewer, user_id=user_id, role=role)
        return f"User #{user_id} is now {role.value}."
    if action in ("deactivate", "activate"):
        accounts.set_active(viewer=viewer, user_id=user_id, active=action == "activate")
        return f"User #{user_id} {action}d."
    password = accounts.reset_password(viewer=viewer, user_id=user_id)
    st.session_state[SHOWN_ONCE] = (user_id, password)
    return f"User #{user_id} has a new password (shown once below); any lock is lifted."


def _user_actions(user: UserRow) -> None:
    left, middle, right = st.columns(3, vertical_alignment="bottom")
    role = left.selectbox(
        "Role",
        ASSIGNABLE_ROLES,
        index=ASSIGNABLE_ROLES.index(user.role) if user.role in ASSIGNABLE_ROLES else 0,
        format_func=lambda r: r.value,
        key=f"admin.role.{user.id}",
    )
    left.button("Change role", key="admin.role.apply", on_click=_act, args=("role", user.id, role))
    toggle = "activate" if not user.is_active else "deactivate"
    middle.button(toggle.capitalize(), key="admin.active", on_click=_act, args=(toggle, user.id))
    right.button("Reset password", key="admin.reset", on_click=_act, args=("reset", user.id))


def main() -> None:
    st.title("Admin")
    viewer = current_viewer()
    if not permissions.can_manage_users(viewer):
        st.error("Only admins can open the Admin screen.")
        return
    FLASH.show()
    try:
        users = accounts.list_users(viewer=viewer)
    except HeadlightError as exc:
        st.error(str(exc))
        return
    table = [{**asdict(user), "role": user.role.value} for user in users]
    st.dataframe(table, hide_index=True, key="admin.users")
    by_id = {user.id: user for user in users}
    chosen = st.selectbox(
        "User", list(by_id), format_func=lambda i: f"#{i} {by_id[i].username}", key="admin.user"
    )
    _user_actions(by_id[chosen])
    shown = st.session_state.pop(SHOWN_ONCE, None)
    if shown:
        st.warning(f"New password for user #{shown[0]} — pass it on securely; it is not shown again:")
        st.code(shown[1], language=None)


main()
