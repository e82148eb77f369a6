"""Presets as the Generate and Compare screens use them: one function per user action, each in
its own transaction. Sharing and deleting a preset are the generic `core.service.records`
actions (`RecordKind.PRESET`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.domain.identity import Viewer
from core.domain.presets import PresetScreen
from core.store import presets
from core.store.presets import PresetItem, Settings
from core.store.transaction import unit_of_work


def list_presets(*, viewer: Viewer, screen: PresetScreen) -> list[PresetItem]:
    """The viewer's presets of one screen, favourites first, then own, then newest."""
    with unit_of_work() as session:
        return presets.list_presets(session=session, viewer=viewer, screen=screen)


def apply_preset(
    *, viewer: Viewer, preset_id: int, available_models: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """The widget values that put the screen on a readable preset, and one notice per model of
    the preset this server does not offer (`core.store.presets.widget_state`)."""
    with unit_of_work() as session:
        settings = presets.load_settings(session=session, viewer=viewer, preset_id=preset_id)
    return presets.widget_state(settings, available_models=available_models)


def save_preset(
    *, viewer: Viewer, name: str, screen: PresetScreen, state: Mapping[str, Any], is_public: bool = False
) -> int:
    """Save the screen's current settings (read from its widgets' ``state``) as a new preset."""
    settings = presets.settings_from_state(screen, state)
    with unit_of_work() as session:
        return presets.create_preset(
            session=session, viewer=viewer, name=name, screen=screen, settings=settings, is_public=is_public
        )


def update_preset(
    *,
    viewer: Viewer,
    preset_id: int,
    name: str | None = None,
    description: str | None = None,
    settings: Settings | None = None,
) -> None:
    """Rename, re-describe or overwrite the settings of one of the viewer's presets."""
    with unit_of_work() as session:
        presets.update_preset(
            session=session,
            viewer=viewer,
            preset_id=preset_id,
            name=name,
            description=description,
            settings=settings,
        )


def duplicate_preset(*, viewer: Viewer, preset_id: int) -> int:
    """A private copy, owned by the viewer, of any preset they can read."""
    with unit_of_work() as session:
        return presets.duplicate_preset(session=session, viewer=viewer, preset_id=preset_id)


def set_favourite(*, viewer: Viewer, preset_id: int, favourite: bool) -> None:
    with unit_of_work() as session:
        presets.set_favourite(session=session, viewer=viewer, preset_id=preset_id, favourite=favourite)


def export_preset(*, viewer: Viewer, preset_id: int) -> bytes:
    """The preset as a JSON file (audited)."""
    with unit_of_work() as session:
        return presets.export_preset(session=session, viewer=viewer, preset_id=preset_id)


def import_preset(*, viewer: Viewer, data: bytes) -> int:
    """A private preset of the viewer's, from an exported file."""
    with unit_of_work() as session:
        return presets.import_preset(session=session, viewer=viewer, data=data)
