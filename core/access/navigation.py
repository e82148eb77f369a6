"""Which screens a visitor gets: the navigation follows `core.access.permissions`, so nobody is
offered a screen whose actions they may not take. Pages still check for themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.access import permissions
from core.domain.identity import Viewer


@dataclass(frozen=True)
class Screen:
    """One page of the app (`st.Page` arguments)."""

    path: str
    title: str
    icon: str
    url_path: str | None = None
    hidden: bool = False


GENERATE = Screen("pages/generate.py", "Generate", ":material/auto_awesome:")
COMPARE = Screen("pages/compare.py", "Compare", ":material/compare_arrows:")
HISTORY = Screen("pages/history.py", "History", ":material/history:")
BATCH = Screen("pages/batch.py", "Batch", ":material/dataset:")
METRICS = Screen("pages/metrics.py", "Metrics", ":material/monitoring:")
AUDIT = Screen("pages/audit.py", "Audit log", ":material/policy:")
ACCOUNT = Screen("pages/account.py", "Account", ":material/person:")
ADMIN = Screen("pages/admin.py", "Admin", ":material/admin_panel_settings:")
MODELS = Screen("pages/models.py", "Models", ":material/memory:")
WELCOME = Screen("pages/welcome.py", "Sign in", ":material/login:")
REGISTER = Screen("pages/register.py", "Register", ":material/person_add:")
# Reached only through a share link (/shared?id=…&token=…), so not listed.
SHARED = Screen("pages/shared.py", "Shared analysis", ":material/link:", url_path="shared", hidden=True)


def screens_for(viewer: Viewer, *, guests_allowed: bool, registration_open: bool) -> list[Screen]:
    """The screens in navigation order; the first one is the default."""
    signed_in = viewer.user_id is not None
    screens: list[Screen] = []
    if permissions.can_run(viewer, guests_allowed=guests_allowed):
        screens += [GENERATE, COMPARE]
    if signed_in or guests_allowed:
        screens.append(HISTORY)
    if signed_in:
        screens += [BATCH, METRICS, ACCOUNT]
    if permissions.can_view_audit(viewer):
        screens.append(AUDIT)
    if permissions.can_manage_users(viewer):
        screens.append(ADMIN)
    if permissions.can_manage_models(viewer):
        screens.append(MODELS)
    if not signed_in:
        if not guests_allowed:
            screens.insert(0, WELCOME)
        if registration_open:
            screens.append(REGISTER)
    screens.append(SHARED)
    return screens
