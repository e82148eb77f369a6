"""Model registry: parsing, refusal of unknown ids, availability reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain.errors import UnknownModelError
from core.models.registry import ModelSource, ModelSpec, Registry, availability, load_registry


def test_shipped_registry_has_the_required_models(registry: Registry) -> None:
    """models.yaml lists the bundled and hub models the product promises."""
    ids = set(registry.ids())
    assert {"smollm2-135m-instruct", "all-minilm-l6-v2", "gemma-3-270m"} <= ids
    assert {"gpt2", "distilgpt2", "bert-base-uncased"} <= ids
    for spec in registry:
        assert spec.licence and spec.revision and spec.max_input_tokens > 0


def test_unknown_model_is_refused_with_choices(registry: Registry) -> None:
    """An id outside the registry raises a message listing valid ids."""
    with pytest.raises(UnknownModelError, match=r"Unknown model 'evil/model'.*smollm2"):
        registry.get("evil/model")


def test_bundled_models_are_available(registry: Registry) -> None:
    """Bundled packages resolve to files on disk."""
    smol = availability(registry.get("smollm2-135m-instruct"))
    assert smol.available and smol.gguf and smol.location and smol.location.is_file()
    minilm = availability(registry.get("all-minilm-l6-v2"))
    assert minilm.available and not minilm.gguf and (minilm.location / "config.json").is_file()


def test_hub_model_not_cached_is_unavailable_with_reason(registry: Registry) -> None:
    """A hub id missing from the local cache is listed as unavailable, not downloaded."""
    where = availability(registry.get("bert-base-uncased"))
    assert not where.available
    assert "local Hugging Face cache" in where.reason


def test_missing_package_and_local_dir(tmp_path: Path) -> None:
    """Missing packages and directories give a reason instead of an exception."""
    base = {"label": "x", "kind": "causal", "revision": "1", "licence": "x", "max_input_tokens": 64}
    missing = ModelSpec(id="m", source=ModelSource(type="bundled", package="no-such-pkg", file="a"), **base)
    assert "not installed" in availability(missing).reason
    local = ModelSpec(id="l", source=ModelSource(type="local", path=str(tmp_path)), **base)
    assert "no config.json" in availability(local).reason
    (tmp_path / "config.json").write_text("{}")
    assert availability(local).available


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("models: [", "Cannot read"),
        ("just: text", "must contain a 'models:' list"),
        ("models:\n  - id: BAD ID\n", "Invalid entry"),
    ],
)
def test_malformed_registry_files(tmp_path: Path, content: str, message: str) -> None:
    """Malformed registry files raise ValueError naming the problem."""
    path = tmp_path / "models.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_registry(path)


def test_duplicate_ids_refused(registry: Registry) -> None:
    """Two entries with one id are a configuration error."""
    spec = registry.get("gpt2")
    with pytest.raises(ValueError, match="Duplicate"):
        Registry([spec, spec])


def test_hub_ids_are_format_checked() -> None:
    """Hub ids with path tricks are rejected at parse time."""
    with pytest.raises(ValueError):
        ModelSource(type="hub", repo="../../etc/passwd")


def test_version_ids_and_enabled_models() -> None:
    """Ids are a family with an optional "@version"; disabled models stay known but unlisted."""
    base = {"label": "x", "kind": "causal", "revision": "1", "licence": "x", "max_input_tokens": 64}
    source = ModelSource(type="local", path="/m")
    original = ModelSpec(id="smol", source=source, **base)
    copy = ModelSpec(id="smol@local-copy", source=source, **base)
    assert (copy.family, copy.version) == ("smol", "local-copy")
    assert (original.family, original.version) == ("smol", "")
    for bad in ("smol@", "@v1", "smol@v1@v2", "Smol@v1", "smol@v 1"):
        with pytest.raises(ValueError):
            ModelSpec(id=bad, source=source, **base)
    other = ModelSpec(id="other", source=source, **base)
    registry = Registry([original, copy, other], disabled={"smol"}, default_id="other")
    assert [spec.id for spec in registry.enabled()] == ["other", "smol@local-copy"]
    assert registry.get("smol") is original and not registry.is_enabled("smol")
    assert Registry([original, other], disabled={"other"}, default_id="other").default_id == "smol"
