"""Synthetic analyses for storage and page tests: no model, milliseconds to build."""

from __future__ import annotations

import re

import numpy as np

from core.attention.compact import compact_from_full
from core.domain.analysis import (
    Analysis,
    AnalysisMode,
    AnalysisRequest,
    GenerationParams,
    ModelInfo,
    NextTokenStep,
    Timings,
)

_WORD = re.compile(r"\S+")


def make_analysis(
    text: str = "The quick brown fox jumps over the lazy dog",
    *,
    generated: str = "",
    model_id: str = "tiny-causal",
    n_layers: int = 2,
    n_heads: int = 3,
    seed: int = 0,
) -> Analysis:
    """An `Analysis` of ``text`` (+ ``generated``) with causal random attention.

    Tokens are whitespace-separated words; attention is ``[n_layers, n_heads, N, N]``
    float16 with rows summing to 1, so the compact form is derived from it on demand.
    """
    full = text + generated
    offsets = [(m.start(), m.end()) for m in _WORD.finditer(full)]
    tokens = [full[s:e] for s, e in offsets]
    prompt_len = sum(1 for s, _ in offsets if s < len(text))
    n = len(tokens)
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_layers, n_heads, n, n)).astype(np.float32)
    logits[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = -np.inf
    attention = np.exp(logits - logits.max(axis=-1, keepdims=True))
    attention /= attention.sum(axis=-1, keepdims=True)
    mode = AnalysisMode.GENERATE if generated else AnalysisMode.ENCODE
    steps = [
        NextTokenStep(
            position=i, token=tokens[i], probability=0.5, candidates=((tokens[i], 0.5), ("x", 0.25))
        )
        for i in range(prompt_len, n)
    ] or [NextTokenStep(position=n, token=None, probability=None, candidates=(("next", 0.9),))]
    return Analysis(
        request=AnalysisRequest(
            model_id=model_id,
            text=text,
            mode=mode,
            generation=GenerationParams(max_new_tokens=max(1, n - prompt_len), seed=seed),
        ),
        model=ModelInfo(
            model_id, "test-rev", "causal", "LlamaForCausalLM", n_layers, n_heads, "cpu", "float32"
        ),
        text=full,
        tokens=tokens,
        token_ids=list(range(100, 100 + n)),
        offsets=offsets,
        prompt_len=prompt_len,
        attention=attention.astype(np.float16),
        compact=compact_from_full(attention.astype(np.float16)),
        next_tokens=steps,
        timings=Timings(load_s=0.1, forward_s=0.2, postprocess_s=0.03),
    )
