"""Streaming extraction (hooks, layer by layer) against all at once, and one layer recomputed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.attention.compact import compact_from_full
from core.domain.analysis import AnalysisMode, AnalysisRequest, GenerationParams
from core.domain.errors import HeadlightError
from core.models.huggingface.adapter import HuggingFaceModel, attention_modules
from core.service.analysis_service import AnalysisService
from core.service.inference import analyse
from tests.fixtures.tiny import tiny_model

TEXT = "the cat sat on the mat and then the cat sat down again on the mat"


@pytest.fixture(scope="module")
def tiny_causal() -> HuggingFaceModel:
    return tiny_model("causal", n_layers=3, n_heads=4)


@pytest.fixture(scope="module")
def tiny_encoder() -> HuggingFaceModel:
    return tiny_model("encoder", n_layers=2, n_heads=4)


def _request(model: HuggingFaceModel, mode: AnalysisMode = AnalysisMode.ENCODE) -> AnalysisRequest:
    return AnalysisRequest(
        model_id=model.spec.id, text=TEXT, mode=mode, generation=GenerationParams(max_new_tokens=5)
    )


def _all_at_once(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
    """transformers' own ``output_attentions=True``: every layer ``[layer, head, q, k]`` at once."""
    with torch.inference_mode():
        out = model.hf_model(input_ids=torch.tensor([ids]), output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).float().numpy()


@pytest.mark.parametrize("kind", ["causal", "encoder"])
def test_streaming_compact_equals_all_at_once(kind: str, tiny_causal, tiny_encoder) -> None:
    """Hooks feeding the builder layer by layer give exactly the compact form of output_attentions."""
    model = tiny_causal if kind == "causal" else tiny_encoder
    streamed = analyse(model, _request(model), full_attention_max_bytes=1)  # too small: stream
    assert streamed.attention is None
    reference = compact_from_full(_all_at_once(model, streamed.token_ids))
    compact = streamed.compact
    for name in ("overview", "overview_scale", "topk_index", "topk_value"):
        np.testing.assert_array_equal(getattr(compact, name), getattr(reference, name), err_msg=name)
    for name, values in reference.stats.items():
        np.testing.assert_array_equal(compact.stats[name], values, err_msg=name)
        np.testing.assert_array_equal(streamed.stats[name], values, err_msg=name)


def test_layer_attention_equals_the_full_forward(tiny_causal: HuggingFaceModel) -> None:
    """Each layer recomputed alone is exactly that layer of output_attentions=True."""
    ids = analyse(tiny_causal, _request(tiny_causal), full_attention_max_bytes=1).token_ids
    reference = _all_at_once(tiny_causal, ids)
    for layer in range(3):
        np.testing.assert_array_equal(tiny_causal.layer_attention(ids, layer), reference[layer])


def test_layer_attention_reproduces_a_generated_analysis(tiny_causal: HuggingFaceModel) -> None:
    """For generated text, one pass over the final ids matches the attention assembled during generation."""
    analysis = analyse(
        tiny_causal, _request(tiny_causal, AnalysisMode.GENERATE), full_attention_max_bytes=1 << 30
    )
    assert analysis.seq_len > analysis.prompt_len
    for layer in range(3):
        recomputed = tiny_causal.layer_attention(analysis.token_ids, layer)
        np.testing.assert_allclose(recomputed, analysis.attention[layer].astype(np.float32), atol=1e-3)


def test_layer_attention_stops_after_its_layer(tiny_causal: HuggingFaceModel) -> None:
    """Layers after the one asked for never run, and no hook is left behind."""
    modules = attention_modules(tiny_causal.hf_model)
    hooks_before = [len(module._forward_hooks) for module in modules]
    ran: list[int] = []
    handles = [
        module.register_forward_hook(lambda *_args, index=i: ran.append(index))
        for i, module in enumerate(modules)
    ]
    try:
        tiny_causal.layer_attention([101, 2000, 2001, 102], 1)
    finally:
        for handle in handles:
            handle.remove()
    assert ran == [0, 1]
    assert [len(module._forward_hooks) for module in modules] == hooks_before


def test_layer_attention_rejects_bad_arguments(tiny_causal: HuggingFaceModel) -> None:
    """A layer outside the model or no tokens at all is a ValueError."""
    with pytest.raises(ValueError, match=r"0 \.\. 2"):
        tiny_causal.layer_attention([101, 102], 3)
    with pytest.raises(ValueError, match="empty"):
        tiny_causal.layer_attention([], 0)


def test_service_refuses_another_revision_or_an_unknown_model(service: AnalysisService) -> None:
    """Recomputing with a different revision or an unknown model is a HeadlightError, before any load."""
    with pytest.raises(HeadlightError, match="revision"):
        service.layer_attention("smollm2-135m-instruct", "some-older-revision", [1, 2, 3], 0)
    with pytest.raises(HeadlightError, match="Unknown model"):
        service.layer_attention("no-such-model", "1", [1, 2, 3], 0)


@pytest.mark.model
def test_smollm2_layer_recompute_matches_its_analysis(service: AnalysisService) -> None:
    """Through the service, a SmolLM2 layer recomputed equals what the analysis kept (float16)."""
    request = AnalysisRequest(model_id="smollm2-135m-instruct", text="Attention is all you need, they said.")
    analysis = service.run(request)
    assert analysis.attention is not None
    info = analysis.model
    weights = service.layer_attention(info.model_id, info.revision, analysis.token_ids, 17)
    np.testing.assert_allclose(weights, analysis.attention[17].astype(np.float32), atol=1e-3)


def test_causal_layers_compact_like_brute_force() -> None:
    """Causal attention (zeros past each query: keys the builder skips) keeps exact top-k and overview."""
    rng = np.random.default_rng(3)
    seq_len, k = 700, 8
    logits = rng.standard_normal((2, seq_len, seq_len)).astype(np.float32) * 3
    logits[:, np.triu(np.ones((seq_len, seq_len), bool), 1)] = -np.inf
    attention = np.exp(logits - logits.max(axis=-1, keepdims=True))
    attention /= attention.sum(axis=-1, keepdims=True)
    attention[1, :, 350:] = 0.0  # one head's later keys are unused too
    attention[1] /= np.maximum(attention[1].sum(axis=-1, keepdims=True), 1e-9)
    compact = compact_from_full(attention[None], k=k, overview_size=64)
    picked = np.take_along_axis(attention, compact.topk_index[0].astype(np.intp), axis=-1)
    np.testing.assert_array_equal(picked, -np.sort(-attention, axis=-1)[..., :k])
    edges = np.arange(65) * seq_len // 64
    key_sums = np.add.reduceat(attention, edges[:-1], axis=-1)
    overview = np.add.reduceat(key_sums, edges[:-1], axis=1) / np.diff(edges)[:, None]
    decoded = compact.overview[0].astype(np.float32) / 255 * compact.overview_scale[0][:, None, None]
    assert np.max(np.abs(decoded - overview)) <= compact.overview_scale[0].max() / 510 + 1e-6
