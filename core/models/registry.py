"""The model registry: which models exist (`models.yaml`) and whether each can load here."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.domain.errors import UnknownModelError

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
# A model id is a family, optionally followed by "@<version>" for another copy or revision
# of that family added later (e.g. "smollm2-135m-instruct@local-copy"). Ids without "@"
# (every id of models.yaml, and so of analyses saved before versions existed) stay valid.
VERSION_SEPARATOR = "@"
_ID_PART = r"[a-z0-9][a-z0-9._-]{0,63}"
MODEL_ID_PATTERN = rf"^{_ID_PART}(@{_ID_PART})?$"
# `registered_models` stores label, revision and licence as String(200): a longer value must be
# refused here with a reason, not by Postgres as a DataError the page reports as an outage.
TEXT_FIELD_MAX = 200


class ModelSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["bundled", "local", "hub"]
    package: str | None = None  # bundled: the distribution carrying the weights
    file: str | None = None  # bundled: a GGUF file or a directory inside the package
    path: str | None = None  # local: a directory with config, tokenizer and weights
    repo: str | None = Field(default=None, pattern=_HUB_ID.pattern)  # hub: an id


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=MODEL_ID_PATTERN)
    label: str = Field(max_length=TEXT_FIELD_MAX)
    kind: Literal["causal", "encoder"]
    source: ModelSource
    revision: str = Field(max_length=TEXT_FIELD_MAX)
    licence: str = Field(max_length=TEXT_FIELD_MAX)
    max_input_tokens: int = Field(ge=8, le=131_072)
    chat_template: bool = False

    @property
    def family(self) -> str:
        """The base model this version belongs to (the id before "@")."""
        return self.id.partition(VERSION_SEPARATOR)[0]

    @property
    def version(self) -> str:
        """The version name after "@"; empty for a family's original entry."""
        return self.id.partition(VERSION_SEPARATOR)[2]


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str  # where the weights are, or why they cannot be used
    location: Path | None = None  # a directory, or a GGUF file
    gguf: bool = False


class Registry:
    """An ordered, read-only set of model specs; unknown ids are refused.

    Disabled models stay known (`get` finds them, so saved analyses of them still open) but
    are left out of `enabled`, which is what the pickers offer. `default_id` is the pickers'
    initial choice: the given default while it is enabled, else the first enabled model.
    """

    def __init__(
        self, specs: list[ModelSpec], *, disabled: Collection[str] = (), default_id: str | None = None
    ) -> None:
        ids = [spec.id for spec in specs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"Duplicate model ids in the registry: {', '.join(duplicates)}")
        self._specs = {spec.id: spec for spec in specs}
        self._disabled = frozenset(disabled) & self._specs.keys()
        self._default_id = default_id

    def enabled(self) -> list[ModelSpec]:
        """The models the pickers offer, the default first."""
        specs = [spec for spec in self._specs.values() if spec.id not in self._disabled]
        default = self.default_id
        return sorted(specs, key=lambda spec: spec.id != default)

    def is_enabled(self, model_id: str) -> bool:
        return model_id in self._specs and model_id not in self._disabled

    @property
    def default_id(self) -> str | None:
        if self._default_id is not None and self.is_enabled(self._default_id):
            return self._default_id
        return next((i for i in self._specs if i not in self._disabled), None)

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def ids(self) -> list[str]:
        return list(self._specs)

    def get(self, model_id: str) -> ModelSpec:
        try:
            return self._specs[model_id]
        except KeyError:
            raise UnknownModelError(
                f"Unknown model '{model_id}'. Choose one of: {', '.join(self._specs)}."
            ) from None


def load_registry(path: Path) -> Registry:
    """Parse `models.yaml`; a malformed file raises ValueError naming the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"Cannot read the model registry {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list):
        raise ValueError(f"The model registry {path} must contain a 'models:' list.")
    try:
        return Registry([ModelSpec.model_validate(entry) for entry in raw["models"]])
    except ValidationError as exc:
        raise ValueError(f"Invalid entry in the model registry {path}: {exc}") from exc


@lru_cache(maxsize=4)
def cached_registry(path: Path) -> Registry:
    return load_registry(path)


def _bundled_location(spec: ModelSpec) -> Availability:
    package, file = spec.source.package, spec.source.file
    try:
        dist = metadata.distribution(package or "")
    except metadata.PackageNotFoundError:
        return Availability(False, f"the package '{package}' is not installed")
    for entry in dist.files or []:
        parts = Path(entry).parts
        if file in parts:
            index = parts.index(file)
            location = Path(dist.locate_file(Path(*parts[: index + 1])))
            return Availability(True, f"bundled in {package}", location, gguf=location.suffix == ".gguf")
    if file and file.endswith(".gguf"):
        # Packages that ship the GGUF in chunks are assembled on first load.
        return Availability(True, f"bundled in {package} (assembled on first load)", None, True)
    return Availability(False, f"'{file}' was not found in the package '{package}'")


def _hub_location(spec: ModelSpec) -> Availability:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(spec.source.repo or "", revision=spec.revision, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        return Availability(
            False,
            f"'{spec.source.repo}' is not in the local Hugging Face cache and this server "
            "does not download models",
        )
    return Availability(True, "in the local Hugging Face cache", Path(path))


def availability(spec: ModelSpec) -> Availability:
    """Where this model's weights are, or a one-line reason why it cannot be loaded here."""
    if spec.source.type == "bundled":
        return _bundled_location(spec)
    if spec.source.type == "hub":
        return _hub_location(spec)
    path = Path(spec.source.path or "")
    if not (path / "config.json").is_file():
        return Availability(False, f"no config.json in the local directory {path}")
    return Availability(True, f"local directory {path}", path)
