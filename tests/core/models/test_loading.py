"""Loading: device choice, GGUF conversion cache, clear errors for unusable models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.domain.errors import ModelUnavailableError
from core.domain.settings import Settings
from core.models.device import choose_device, choose_dtype
from core.models.huggingface.adapter import EAGER_WITH_CAPTURE, HuggingFaceModel
from core.models.huggingface.loading import load_model, resolve_weights_dir
from core.models.registry import Registry


def test_device_choice_prefers_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda beats mps beats cpu; explicit choices are honoured; half precision on GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert choose_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device().type == "cpu"
    assert choose_device("cpu").type == "cpu"
    assert choose_dtype(torch.device("cpu")) == torch.float32
    assert choose_dtype(torch.device("mps")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert choose_dtype(torch.device("cuda")) == torch.float16


def test_unavailable_hub_model_raises_clear_error(registry: Registry, settings: Settings) -> None:
    """A hub model missing offline raises ModelUnavailableError naming the reason."""
    with pytest.raises(ModelUnavailableError, match=r"not available here.*does not download"):
        load_model(registry.get("gpt2"), cache_dir=settings.model_cache_dir)


@pytest.mark.model
def test_gguf_converted_once_to_safetensors(
    smollm2: HuggingFaceModel, registry: Registry, settings: Settings
) -> None:
    """After the first load SmolLM2 loads from a local safetensors copy, not the GGUF."""
    weights = resolve_weights_dir(registry.get("smollm2-135m-instruct"), settings.model_cache_dir)
    assert weights.parent == settings.model_cache_dir
    assert (weights / "config.json").is_file()
    assert any(Path(weights).glob("*.safetensors"))
    assert smollm2.hf_model.config._attn_implementation == EAGER_WITH_CAPTURE
    assert smollm2.info.device == str(choose_device(settings.device))
