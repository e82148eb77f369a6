"""Presets: saved settings of the Generate and Compare screens, one function per user action.

A preset holds the model(s), generation parameters and view options of one screen (never
the text). It is private to its owner until made public, then every signed-in user reads it
(`core.access.permissions`). Users star presets (favourites come first in pickers), duplicate any
preset they can read into one of their own, and move presets between installations as
JSON (`export_preset` / `import_preset`, validated with pydantic; the importer owns the
copy and it starts private). Every change is an audit event.

Functions take keyword-only ``session`` and ``viewer`` and never commit (`core.service.presets`
runs each in one transaction). Opening, publishing and deleting follow the one lifecycle of
`core.store.owned`. The widget mapping (`widget_state`, `settings_from_state`) is pure and
driven by the one key schema of `core.domain.presets`, so the pages stay thin and tests need
no Streamlit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.orm import Session

from core.access import permissions
from core.attention.alignment import Granularity
from core.domain.analysis import MAX_TOP_K_NEXT, AnalysisMode, GenerationParams
from core.domain.errors import HeadlightError, PermissionDeniedError, validation_message
from core.domain.identity import Viewer
from core.domain.owned import RecordKind
from core.domain.presets import MODEL_SETTINGS, WIDGET_KEYS, PresetScreen, widget_settings
from core.store import owned
from db import presets as presets_db
from db.models import Preset, utcnow

FORMAT = "headlight.preset"
VERSION = 1
MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 500
MAX_IMPORT_BYTES = 64 * 1024
# Model ids in a preset: letters, digits and ``_ . - / : @`` only. An imported file is
# untrusted, and its model id is shown back in notices; no Markdown or HTML gets through.
MODEL_ID_PATTERN = r"^[\w.\-/:@]+$"
# The smallest values the Generate and Compare number inputs accept. Streamlit silently
# resets a session-state value outside a widget's range, so a preset must stay inside it.
MIN_TEMPERATURE = 0.05
MIN_TOP_P = 0.01
_TOO_DEEP = "The file nests too deeply to be a preset; choose a preset exported from Headlight."

PRESET_KIND = RecordKind.PRESET
PRESET_CREATE = "preset.create"
PRESET_UPDATE = "preset.update"
PRESET_DUPLICATE = "preset.duplicate"
PRESET_IMPORT = "preset.import"
PRESET_EXPORT = "preset.export"


class PresetError(HeadlightError):
    """A preset could not be saved or imported; the message says why."""


def _within_widgets(generation: GenerationParams) -> GenerationParams:
    if generation.temperature < MIN_TEMPERATURE:
        raise ValueError(f"temperature must be at least {MIN_TEMPERATURE}")
    if generation.top_p < MIN_TOP_P:
        raise ValueError(f"top_p must be at least {MIN_TOP_P}")
    return generation


class GenerateView(BaseModel):
    """View options of the Generate screen's result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bertviz_view: Literal["head", "model", "neuron"] = "head"
    layer: int = Field(default=0, ge=0, le=1024)
    head: int = Field(default=0, ge=0, le=1024)


class GenerateSettings(BaseModel):
    """Everything on the Generate screen except the text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1, max_length=200, pattern=MODEL_ID_PATTERN)
    mode: AnalysisMode = AnalysisMode.GENERATE
    generation: GenerationParams = GenerationParams()
    top_k_next: int = Field(default=5, ge=1, le=MAX_TOP_K_NEXT)
    redact: bool = False
    view: GenerateView = GenerateView()

    _generation = field_validator("generation")(_within_widgets)


class CompareSettings(BaseModel):
    """Everything on the Compare screen except the text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_a: str = Field(min_length=1, max_length=200, pattern=MODEL_ID_PATTERN)
    model_b: str = Field(min_length=1, max_length=200, pattern=MODEL_ID_PATTERN)
    generate: bool = False
    generation: GenerationParams = GenerationParams()
    granularity: Granularity = Granularity.WORD
    top_k_next: int = Field(default=5, ge=1, le=MAX_TOP_K_NEXT)

    _generation = field_validator("generation")(_within_widgets)


Settings = GenerateSettings | CompareSettings
_SETTINGS: dict[PresetScreen, type[GenerateSettings] | type[CompareSettings]] = {
    PresetScreen.GENERATE: GenerateSettings,
    PresetScreen.COMPARE: CompareSettings,
}


class PresetDocument(BaseModel):
    """The export format: ``{"format": "headlight.preset", "version": 1, ...}``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["headlight.preset"]
    version: Literal[1]
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    screen: PresetScreen
    settings: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        name = " ".join(name.split())
        if not name:
            raise ValueError("The preset needs a name.")
        return name


def parse_settings(screen: PresetScreen, settings: Mapping[str, Any]) -> Settings:
    """Validated settings for ``screen``; raises `PresetError` with one sentence per problem."""
    try:
        return _SETTINGS[screen].model_validate(dict(settings))
    except ValidationError as exc:
        raise PresetError(f"The {screen.value} settings are not valid: {validation_message(exc)}") from exc


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise PresetError("Give the preset a name.")
    if len(name) > MAX_NAME_CHARS:
        raise PresetError(f"The name has {len(name)} characters; the limit is {MAX_NAME_CHARS}.")
    return name


def _clean_description(description: str) -> str:
    description = description.strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise PresetError(f"The description is over {MAX_DESCRIPTION_CHARS} characters; shorten it.")
    return description


@dataclass(frozen=True)
class PresetItem:
    """A preset as a picker shows it."""

    id: int
    name: str
    description: str
    screen: PresetScreen
    owner: str
    is_public: bool
    is_favourite: bool
    can_edit: bool
    settings: dict[str, Any]

    @property
    def label(self) -> str:
        star = "★ " if self.is_favourite else ""
        shared = " · public" if self.is_public else ""
        return f"{star}{self.name} ({self.owner}{shared})"


def _audit(session: Session, viewer: Viewer, action: str, preset: Preset) -> None:
    owned.audit(session=session, viewer=viewer, kind=PRESET_KIND, action=action, record=preset)


def _readable(session: Session, viewer: Viewer, preset_id: int) -> Preset:
    return owned.open_readable(session=session, viewer=viewer, kind=PRESET_KIND, record_id=preset_id)


def list_presets(*, session: Session, viewer: Viewer, screen: PresetScreen | None = None) -> list[PresetItem]:
    """The viewer's readable presets, favourites first, then own, then newest."""
    if viewer.user_id is None:
        return []
    rows = presets_db.list_presets(session=session, readable=permissions.preset_filter(viewer), screen=screen)
    starred = presets_db.favourite_ids(session=session, user_id=viewer.user_id)
    items = [
        PresetItem(
            id=preset.id,
            name=preset.name,
            description=preset.description,
            screen=preset.screen,
            owner=owner,
            is_public=preset.is_public,
            is_favourite=preset.id in starred,
            can_edit=permissions.can_write_preset(viewer, preset),
            settings=dict(preset.settings),
        )
        for preset, owner in rows
    ]
    # A stable sort keeps newest-first within each group.
    return sorted(items, key=lambda item: (not item.is_favourite, not item.can_edit))


def create_preset(
    *,
    session: Session,
    viewer: Viewer,
    name: str,
    screen: PresetScreen,
    settings: Settings | Mapping[str, Any],
    description: str = "",
    is_public: bool = False,
    action: str = PRESET_CREATE,
) -> int:
    """Save settings as a new preset of the viewer's; returns its id."""
    if not permissions.can_create(viewer) or viewer.user_id is None:
        raise PermissionDeniedError("Sign in as an analyst to save presets.")
    parsed = settings if isinstance(settings, BaseModel) else parse_settings(screen, settings)
    if not isinstance(parsed, _SETTINGS[screen]):
        raise PresetError(f"These settings are not {screen.value} settings.")
    now = utcnow()
    preset = Preset(
        owner_id=viewer.user_id,
        name=_clean_name(name),
        description=_clean_description(description),
        screen=screen,
        settings=parsed.model_dump(mode="json"),
        is_public=is_public,
        created_at=now,
        updated_at=now,
    )
    session.add(preset)
    session.flush()
    _audit(session, viewer, action, preset)
    return preset.id


def update_preset(
    *,
    session: Session,
    viewer: Viewer,
    preset_id: int,
    name: str | None = None,
    description: str | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
) -> None:
    """Rename, re-describe or overwrite the settings of one of the viewer's presets."""
    preset = owned.open_writable(session=session, viewer=viewer, kind=PRESET_KIND, record_id=preset_id)
    if name is not None:
        preset.name = _clean_name(name)
    if description is not None:
        preset.description = _clean_description(description)
    if settings is not None:
        parsed = settings if isinstance(settings, BaseModel) else parse_settings(preset.screen, settings)
        if not isinstance(parsed, _SETTINGS[preset.screen]):
            raise PresetError(f"These settings are not {preset.screen.value} settings.")
        preset.settings = parsed.model_dump(mode="json")
    preset.updated_at = utcnow()
    _audit(session, viewer, PRESET_UPDATE, preset)


def duplicate_preset(*, session: Session, viewer: Viewer, preset_id: int) -> int:
    """A private copy, owned by the viewer, of any preset they can read."""
    source = _readable(session, viewer, preset_id)
    name = source.name if len(source.name) + 7 > MAX_NAME_CHARS else f"{source.name} (copy)"
    return create_preset(
        session=session,
        viewer=viewer,
        name=name,
        screen=source.screen,
        settings=source.settings,
        description=source.description,
        action=PRESET_DUPLICATE,
    )


def set_favourite(*, session: Session, viewer: Viewer, preset_id: int, favourite: bool) -> None:
    """Star or unstar a preset the viewer can read (a personal bookmark, not audited)."""
    preset = _readable(session, viewer, preset_id)
    if not permissions.can_favourite_preset(viewer, preset) or viewer.user_id is None:
        raise PermissionDeniedError("Sign in to keep favourite presets.")
    presets_db.set_favourite(
        session=session, user_id=viewer.user_id, preset_id=preset.id, favourite=favourite
    )


def load_settings(*, session: Session, viewer: Viewer, preset_id: int) -> Settings:
    """The validated settings of a readable preset."""
    preset = _readable(session, viewer, preset_id)
    return parse_settings(preset.screen, preset.settings)


def export_preset(*, session: Session, viewer: Viewer, preset_id: int) -> bytes:
    """The preset as a `PresetDocument` JSON file (no owner, no ids)."""
    preset = _readable(session, viewer, preset_id)
    document = PresetDocument(
        format=FORMAT,
        version=VERSION,
        name=preset.name,
        description=preset.description,
        screen=preset.screen,
        settings=preset.settings,
    )
    _audit(session, viewer, PRESET_EXPORT, preset)
    return json.dumps(document.model_dump(mode="json"), indent=2, ensure_ascii=False).encode("utf-8")


def parse_document(data: bytes) -> PresetDocument:
    """Validate an exported preset file; raises `PresetError` saying what is wrong."""
    if len(data) > MAX_IMPORT_BYTES:
        raise PresetError(f"The file is {len(data):,} bytes; a preset file is at most {MAX_IMPORT_BYTES:,}.")
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PresetError("The file is not UTF-8 text; choose a preset exported from Headlight.") from exc
    except json.JSONDecodeError as exc:
        raise PresetError(f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}).") from exc
    except RecursionError as exc:
        # 64 KiB of "[" nests deeper than the parser's recursion limit; no preset nests so.
        raise PresetError(_TOO_DEEP) from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise PresetError('This is not a Headlight preset (its "format" is not "headlight.preset").')
    try:
        document = PresetDocument.model_validate(raw)
        parse_settings(document.screen, document.settings)
    except ValidationError as exc:
        raise PresetError(f"The preset file is not valid: {validation_message(exc)}") from exc
    except RecursionError as exc:
        raise PresetError(_TOO_DEEP) from exc
    return document


def import_preset(*, session: Session, viewer: Viewer, data: bytes) -> int:
    """Create a private preset of the viewer's from an exported file; returns its id."""
    document = parse_document(data)
    return create_preset(
        session=session,
        viewer=viewer,
        name=document.name,
        screen=document.screen,
        settings=document.settings,
        description=document.description,
        action=PRESET_IMPORT,
    )


# --- Widget state (the keys are `core.domain.presets.WIDGET_KEYS`, the pages' own) ---------


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, name = path.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[name] = value
    return nested


def widget_state(settings: Settings, *, available_models: set[str]) -> tuple[dict[str, Any], list[str]]:
    """Session-state values that put a screen's widgets on ``settings``, leaving out models
    this server does not offer.

    Returns the values and one notice per model left out (the screen keeps its choice).
    """
    screen = PresetScreen.GENERATE if isinstance(settings, GenerateSettings) else PresetScreen.COMPARE
    values = _flatten(settings.model_dump())
    state, notices = {}, []
    for setting, key in widget_settings(WIDGET_KEYS[screen]).items():
        if setting in MODEL_SETTINGS and values[setting] not in available_models:
            notices.append(
                f"The preset's model {values[setting]} is not offered here; the current model is kept."
            )
        else:
            state[key] = values[setting]
    return state, notices


def settings_from_state(screen: PresetScreen, state: Mapping[str, Any]) -> Settings:
    """A screen's current settings, read from its widgets' session state (defaults for the
    widgets not drawn yet); raises pydantic's `ValidationError` for values out of range."""
    values = {
        setting: state[key] for setting, key in widget_settings(WIDGET_KEYS[screen]).items() if key in state
    }
    for setting in MODEL_SETTINGS:
        if setting in widget_settings(WIDGET_KEYS[screen]):
            values[setting] = str(values.get(setting) or "model")
    return _SETTINGS[screen].model_validate(_nest(values))
