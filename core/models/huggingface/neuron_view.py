"""bertviz's neuron view data for a local BERT checkpoint: attention, queries and keys.

The neuron view needs bertviz's own model classes (``bertviz.transformers_neuron_view``),
which return queries and keys. It is offered for BERT checkpoints in a local directory
(config.json + model.safetensors + tokenizer files, e.g. the bundled all-MiniLM-L6-v2):
bertviz's ``BertModel`` is built from that config and takes the Hugging Face state dict
unchanged; its attention matches transformers' eager attention to 1e-6. bertviz also has
GPT-2 and RoBERTa classes, but no model of those kinds ships with Headlight, so they are not
wired up. torch, transformers and bertviz are imported only when a view is built.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Values are rounded to this many decimals: float64 rounded to 3 decimals prints as "0.123"
# in the page rather than float32's "0.12300000339746475".
DECIMALS = 3


@dataclass(frozen=True)
class NeuronViewData:
    """What bertviz's neuron view draws, as plain Python.

    ``attention`` is bertviz's ``get_attention`` result for one sentence: ``{"all": {...}}``
    with ``left_text`` / ``right_text`` (the ``seq_len`` tokens, ``[CLS]`` and ``[SEP]``
    included) and, per layer, ``attn`` ``[head, query, key]``, ``queries`` ``[head, query,
    head_dim]`` and ``keys`` ``[head, key, head_dim]`` as nested lists rounded to `DECIMALS`.
    """

    attention: dict[str, Any]
    n_layers: int
    n_heads: int
    n_tokens: int


def neuron_view_reason(architecture: str) -> str | None:
    """None if `neuron_view_data` supports this architecture, else a one-line reason why not.

    ``architecture`` is a transformers model type ("bert") or class name ("BertModel").
    """
    if _is_bert(architecture):
        return None
    return (
        f"The neuron view needs bertviz's own model code, which Headlight has for BERT only, "
        f"not for {architecture}."
    )


def _is_bert(architecture: str) -> bool:
    name = architecture.strip()
    return name.lower() == "bert" or re.fullmatch(r"Bert(Model|For[A-Za-z]+)", name) is not None


def neuron_view_data(model_dir: str, text: str) -> NeuronViewData:
    """Runs the checkpoint in ``model_dir`` (bertviz's implementation, on CPU) on
    ``[CLS] text [SEP]``.

    Raises:
        ValueError: if files are missing, the model is not BERT, the text is empty or longer
            than the model takes.
    """
    directory = Path(model_dir)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ValueError(f"{path} is missing; the neuron view needs a local BERT checkpoint.")
    model_type = json.loads(config_path.read_text()).get("model_type", "")
    reason = neuron_view_reason(model_type)
    if reason is not None:
        raise ValueError(reason)
    if not text.strip():
        raise ValueError("Enter some text for the neuron view.")

    import torch
    from bertviz.neuron_view import get_attention
    from bertviz.transformers_neuron_view import BertConfig, BertModel
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    config = BertConfig(str(config_path))
    tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    n_tokens = len(tokenizer.tokenize(text)) + 2  # [CLS] and [SEP]
    if n_tokens > config.max_position_embeddings:
        raise ValueError(
            f"The text has {n_tokens} tokens; this model takes at most "
            f"{config.max_position_embeddings}. Shorten it."
        )
    model = BertModel(config)
    # Checkpoints saved from a task model (BertForMaskedLM, ...) prefix the encoder's keys.
    state = {key.removeprefix("bert."): value for key, value in load_file(weights_path).items()}
    missing, _ = model.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{weights_path} is not a BERT checkpoint: it lacks {missing[:3]}.")

    with torch.inference_mode():
        attention = get_attention(_RoundedOutputs(model), "bert", tokenizer, text, None, True)
    return NeuronViewData(
        attention=attention,
        n_layers=int(config.num_hidden_layers),
        n_heads=int(config.num_attention_heads),
        n_tokens=n_tokens,
    )


class _RoundedOutputs:
    """Wraps bertviz's BertModel so the attention, queries and keys it returns are rounded.

    bertviz's ``get_attention`` writes them with ``tolist()``; see `DECIMALS`.
    """

    def __init__(self, model: Any) -> None:
        self._model = model

    def eval(self) -> _RoundedOutputs:
        self._model.eval()
        return self

    def __call__(self, *args: object, **kwargs: object) -> tuple[object, ...]:
        outputs = self._model(*args, **kwargs)
        per_layer = tuple(
            {name: tensor.double().round(decimals=DECIMALS) for name, tensor in layer.items()}
            for layer in outputs[-1]
        )
        return (*outputs[:-1], per_layer)
