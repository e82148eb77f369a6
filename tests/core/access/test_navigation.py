"""The navigation offers each visitor exactly the screens their role may use."""

from __future__ import annotations

import pytest

from core.access import navigation
from core.domain.identity import ANONYMOUS, Role, Viewer

ALWAYS_HIDDEN = "Shared analysis"


def titles(viewer: Viewer, *, guests: bool = True, registration: bool = True) -> list[str]:
    screens = navigation.screens_for(viewer, guests_allowed=guests, registration_open=registration)
    assert [s.title for s in screens if s.hidden] == [ALWAYS_HIDDEN]
    return [s.title for s in screens if not s.hidden]


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        (
            Viewer(1, Role.ADMIN),
            ["Generate", "Compare", "History", "Batch", "Metrics", "Account", "Audit log", "Admin", "Models"],
        ),
        (
            Viewer(2, Role.ANALYST),
            ["Generate", "Compare", "History", "Batch", "Metrics", "Account", "Audit log"],
        ),
        (
            Viewer(3, Role.VIEWER),
            ["Generate", "Compare", "History", "Batch", "Metrics", "Account", "Audit log"],
        ),
    ],
)
def test_signed_in_roles(viewer: Viewer, expected: list[str]) -> None:
    assert titles(viewer) == expected
    assert titles(viewer, guests=False, registration=False) == expected


def test_guest_mode_and_registration_switches() -> None:
    """Guests run and read public analyses; without guest mode only sign-in (and register) remain."""
    assert titles(ANONYMOUS) == ["Generate", "Compare", "History", "Register"]
    assert titles(ANONYMOUS, registration=False) == ["Generate", "Compare", "History"]
    assert titles(ANONYMOUS, guests=False) == ["Sign in", "Register"]
    assert titles(ANONYMOUS, guests=False, registration=False) == ["Sign in"]


def test_shared_page_has_its_own_address() -> None:
    """Share links point at /shared, which works for visitors in every configuration."""
    assert navigation.SHARED.url_path == "shared" and navigation.SHARED.path == "pages/shared.py"
