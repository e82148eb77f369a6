"""The "Presets" expander of Generate and Compare: start from a preset, save the current
settings, and manage presets (edit, duplicate, favourite, share, export, import, delete).

It must run before the screen's widgets: applying a preset writes their session-state keys
in a button callback, which Streamlit runs before the script, so the widgets come up with
the preset's values.
"""

from __future__ import annotations

import json

import streamlit as st

from core.access import permissions
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError
from core.domain.identity import Viewer
from core.domain.owned import RecordKind
from core.domain.presets import GENERATE, PresetScreen
from core.service import presets as preset_service
from core.service import records
from core.store import presets
from core.store.presets import PresetItem
from ui.actions import Flash, Work
from ui.session import current_viewer
from ui.text import markdown_text

# The edit form's widgets are keyed by preset id: a keyed widget keeps its value across
# reruns, so with one key for every preset, picking B after A would show (and save) A's text.
_EDIT_NAME = "{key}.presets.edit_name.{id}"
_EDIT_DESCRIPTION = "{key}.presets.edit_description.{id}"
_EDIT_SETTINGS = "{key}.presets.edit_settings.{id}"


def _flash(screen: PresetScreen) -> Flash:
    """Where the panel of one screen keeps its notice (it quotes preset names and model ids)."""
    return Flash(f"{screen.value}.presets.notice", escape=markdown_text)


def _apply(screen: PresetScreen, preset_id: int, available: set[str]) -> None:
    def apply(viewer: Viewer) -> tuple[str, str]:
        state, notices = preset_service.apply_preset(
            viewer=viewer, preset_id=preset_id, available_models=available
        )
        st.session_state.update(state)
        message = "Preset applied." + ("".join(f" {n}" for n in notices))
        return ("warning" if notices else "success", message)

    _flash(screen).act(apply)


def _act(screen: PresetScreen, work: Work, message: str) -> None:
    _flash(screen).act(work, success=message)


def _save_current(screen: PresetScreen) -> None:
    key = screen.value
    name = st.session_state.get(f"{key}.presets.new_name", "")
    public = bool(st.session_state.get(f"{key}.presets.new_public", False))
    if _flash(screen).act(
        lambda viewer: preset_service.save_preset(
            viewer=viewer, name=name, screen=screen, state=st.session_state, is_public=public
        ),
        success="Saved the current settings as a preset.",
        failure="Not saved: ",
    ):
        st.session_state[f"{key}.presets.new_name"] = ""


def _overwrite(screen: PresetScreen, preset_id: int) -> None:
    key = screen.value
    replace = bool(st.session_state.get(_EDIT_SETTINGS.format(key=key, id=preset_id)))

    def update(viewer: Viewer) -> None:
        settings = presets.settings_from_state(screen, st.session_state) if replace else None
        preset_service.update_preset(
            viewer=viewer,
            preset_id=preset_id,
            name=st.session_state.get(_EDIT_NAME.format(key=key, id=preset_id)),
            description=st.session_state.get(_EDIT_DESCRIPTION.format(key=key, id=preset_id)),
            settings=settings,
        )

    if _flash(screen).act(update, success="Preset updated.", failure="Not saved: "):
        # Replacing the settings is a one-off: the box must not stay ticked for the next save.
        st.session_state[_EDIT_SETTINGS.format(key=key, id=preset_id)] = False


def _export(preset_id: int) -> bytes:
    """The preset's JSON, exported (and audited) when the download button is clicked."""
    try:
        return preset_service.export_preset(viewer=current_viewer(), preset_id=preset_id)
    except HeadlightError as exc:
        # The preset went (deleted or made private) since the screen was drawn.
        return json.dumps({"error": str(exc)}).encode("utf-8")


def _manage(screen: PresetScreen, item: PresetItem) -> None:
    key = screen.value
    viewer = current_viewer()
    st.caption(markdown_text(item.description) if item.description else "No description.")
    columns = st.columns(4)
    columns[0].button(
        "Unstar" if item.is_favourite else "★ Favourite",
        key=f"{key}.presets.favourite",
        on_click=_act,
        args=(
            screen,
            lambda viewer: preset_service.set_favourite(
                viewer=viewer, preset_id=item.id, favourite=not item.is_favourite
            ),
            "Favourites updated.",
        ),
    )
    columns[1].button(
        "Duplicate",
        key=f"{key}.presets.duplicate",
        disabled=not permissions.can_create(viewer),
        on_click=_act,
        args=(
            screen,
            lambda viewer: preset_service.duplicate_preset(viewer=viewer, preset_id=item.id),
            "Duplicated: the copy is yours and private.",
        ),
    )
    # A callable is run only when the button is clicked, so the export (and its audit event)
    # happens on click, not on every rerun of the screen.
    columns[2].download_button(
        "Export JSON",
        data=lambda: _export(item.id),
        file_name=f"headlight-preset-{item.id}.json",
        mime="application/json",
        key=f"{key}.presets.export",
        on_click="ignore",
    )
    if not item.can_edit:
        columns[3].caption(f"Shared by {markdown_text(item.owner)}.")
        return
    columns[3].button(
        "Make private" if item.is_public else "Share with everyone",
        key=f"{key}.presets.share",
        on_click=_act,
        args=(
            screen,
            lambda viewer: records.set_public(
                viewer=viewer, kind=RecordKind.PRESET, record_id=item.id, public=not item.is_public
            ),
            "Sharing updated.",
        ),
    )
    with st.form(f"{key}.presets.edit.{item.id}"):
        st.text_input(
            "Name",
            item.name,
            max_chars=presets.MAX_NAME_CHARS,
            key=_EDIT_NAME.format(key=key, id=item.id),
        )
        st.text_area(
            "Description",
            item.description,
            max_chars=presets.MAX_DESCRIPTION_CHARS,
            key=_EDIT_DESCRIPTION.format(key=key, id=item.id),
        )
        st.checkbox(
            "Replace its settings with the screen's current ones",
            key=_EDIT_SETTINGS.format(key=key, id=item.id),
        )
        st.form_submit_button("Save changes", on_click=_overwrite, args=(screen, item.id))
    st.button(
        "Delete preset",
        key=f"{key}.presets.delete",
        on_click=_act,
        args=(
            screen,
            lambda viewer: records.delete(viewer=viewer, kind=RecordKind.PRESET, record_id=item.id),
            "Preset deleted.",
        ),
    )


def _import(screen: PresetScreen) -> None:
    key = screen.value
    upload = st.file_uploader(
        "Import a preset (JSON)", type=["json"], key=f"{key}.presets.import_file", max_upload_size=1
    )
    if upload is not None and st.button("Import", key=f"{key}.presets.import"):
        try:
            preset_service.import_preset(viewer=current_viewer(), data=upload.getvalue())
        except HeadlightError as exc:
            st.error(markdown_text(f"Not imported: {exc}"))
        else:
            st.success("Imported as a private preset of yours.")


def render_preset_panel(screen: PresetScreen, *, available_models: set[str]) -> None:
    """The expander: "Save current" reads the screen's widgets through `core.domain.presets`."""
    key = screen.value
    viewer = current_viewer()
    with st.expander("Presets: start from saved settings", expanded=False):
        _flash(screen).show()
        if viewer.user_id is None:
            st.caption("Sign in to use and save presets.")
            return
        try:
            items = preset_service.list_presets(viewer=viewer, screen=screen)
        except HeadlightError as exc:
            st.error(markdown_text(str(exc)))
            return
        if items:
            by_id = {item.id: item for item in items}
            chosen = st.selectbox(
                "Start from a preset",
                list(by_id),
                format_func=lambda i: by_id[i].label,
                key=f"{key}.presets.choice",
            )
            st.button(
                "Apply preset",
                type="primary",
                key=f"{key}.presets.apply",
                on_click=_apply,
                args=(screen, chosen, available_models),
            )
            _manage(screen, by_id[chosen])
        else:
            st.caption("No presets yet: save the current settings below, or import one.")
        if permissions.can_create(viewer):
            st.divider()
            left, right = st.columns([3, 1], vertical_alignment="bottom")
            left.text_input(
                "New preset name", max_chars=presets.MAX_NAME_CHARS, key=f"{key}.presets.new_name"
            )
            right.checkbox("Share with everyone", key=f"{key}.presets.new_public")
            st.button(
                "Save current settings as preset",
                key=f"{key}.presets.save",
                on_click=_save_current,
                args=(screen,),
            )
            _import(screen)


def clamp_view_state(analysis: Analysis) -> None:
    """Keep preset-set head-picker values of Generate inside this analysis's layers and heads."""
    limits = {GENERATE.layer: analysis.model.n_layers - 1, GENERATE.head: analysis.model.n_heads - 1}
    for name, highest in limits.items():
        value = st.session_state.get(name)
        if isinstance(value, int) and value > highest:
            st.session_state[name] = highest
