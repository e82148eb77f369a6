"""One dataset row through a model for the head atlas: its token ids, then its head scores.

The model runs through the boundary (`core.models.boundary.LanguageModel`); each layer's
attention is reduced to scores (`core.attention.atlas.layer_scores`) as the layer runs, so a
row never holds more than one layer's attention.
"""

from __future__ import annotations

import numpy as np
import torch

from core.attention.atlas import ATLAS_STATS, layer_scores
from core.models.boundary import Capture, LanguageModel


def row_token_ids(model: LanguageModel, text: str, max_tokens: int) -> tuple[list[int], bool]:
    """A row's token ids as the model sees them (special tokens added), cut at ``max_tokens``.

    Returns ``(ids, truncated)``.
    """
    ids = model.tokenize(text, add_special_tokens=True).ids
    return ids[:max_tokens], len(ids) > max_tokens


def row_head_scores(model: LanguageModel, token_ids: list[int]) -> np.ndarray:
    """One row through the model: ``[n_stats, n_layers, n_heads]`` float32.

    Holds the model's lock for this row only, so interactive requests wait at most one row.
    """
    if not token_ids:
        raise ValueError("The row has no tokens.")
    info = model.info
    scores = np.empty((len(ATLAS_STATS), info.n_layers, info.n_heads), np.float32)
    special = model.special_ids

    def on_layer(layer: int, weights: torch.Tensor) -> None:
        scores[:, layer] = layer_scores(weights.detach().float().cpu().numpy(), token_ids, special)

    # The atlas needs no logits.
    model.forward(token_ids, capture=Capture(attention=on_layer), logits="none")
    return scores
