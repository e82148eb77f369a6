"""Head similarity: the JSD kernel, matches and flags, self-comparison, storage round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.attention import comparison as compare_module
from core.attention.alignment import text_spans
from core.attention.compact import compact_from_full
from core.attention.comparison import (
    CompareRequest,
    Comparison,
    compare,
    comparison_from_dict,
    comparison_to_dict,
    head_similarity,
)
from core.domain.analysis import Analysis, AnalysisRequest, GenerationParams
from core.domain.errors import HeadlightError
from core.domain.identity import ANONYMOUS_ACTOR
from core.models.huggingface.adapter import HuggingFaceModel
from core.service.analysis_service import AnalysisService
from core.service.compare import run_comparison
from core.service.inference import analyse
from tests.factories import make_analysis
from tests.fixtures.tiny import tiny_model

TEXT = "The quick brown fox jumps over the lazy dog, and the dog sleeps."
PARAGRAPH = (
    "Attention heads decide, for every token, which earlier tokens matter. Some look at the "
    "previous word, some at the first token, and others follow syntax: a verb finds its subject."
)


def _overlap_similarity(p: np.ndarray, q: np.ndarray) -> float:
    """Reference: the Bhattacharyya coefficient of each row pair, averaged over the rows."""
    return float(np.mean([np.sum(np.sqrt(p_row * q_row)) for p_row, q_row in zip(p, q, strict=True)]))


def _random_heads(rng: np.random.Generator, n_heads: int, n_spans: int, causal: bool) -> np.ndarray:
    logits = rng.normal(scale=2.0, size=(n_heads, n_spans, n_spans))
    if causal:
        logits += np.triu(np.full((n_spans, n_spans), -np.inf), 1)
    heads = np.exp(logits)
    heads[rng.random(heads.shape) < 0.2] = 0.0  # some exact zeros
    heads[:, np.arange(n_spans), np.arange(n_spans)] += 0.1  # no empty row
    return (heads / heads.sum(-1, keepdims=True)).astype(np.float32)


def _sharpened(kind: str) -> HuggingFaceModel:
    """A tiny model whose heads are peaked and distinct (random init is almost uniform)."""
    loaded = tiny_model(kind, n_layers=2, n_heads=4)
    with torch.no_grad():
        for module in loaded.hf_model.modules():
            name = type(module).__name__
            if name == "LlamaAttention":
                module.q_proj.weight.mul_(40)
            elif name == "BertSelfAttention":
                module.query.weight.mul_(40)
    return loaded


def _analyse(loaded: HuggingFaceModel, text: str = TEXT) -> Analysis:
    request = AnalysisRequest(model_id=loaded.spec.id, text=text)
    return analyse(loaded, request, full_attention_max_bytes=1 << 40)


def test_known_pair_and_extremes() -> None:
    """Identical rows score 1, disjoint rows 0, and [1, 0] vs [.5, .5] √0.5."""
    one_hot = np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32)
    flipped = one_hot[:, :, ::-1].copy()
    half = np.full((1, 2, 2), 0.5, np.float32)
    heads = np.concatenate([one_hot, flipped, half])
    similarity = head_similarity(heads, heads)
    assert similarity.shape == (3, 3)
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-6)
    assert similarity[0, 1] == pytest.approx(0.0, abs=1e-6)
    assert similarity[0, 2] == pytest.approx(np.sqrt(0.5), abs=1e-6)


@pytest.mark.parametrize(("causal_a", "causal_b"), [(True, True), (True, False), (False, False)])
def test_kernel_matches_reference(causal_a: bool, causal_b: bool) -> None:
    """Every pair agrees with a plain row-by-row overlap, zeros and causal masks included."""
    rng = np.random.default_rng(1)
    heads_a = _random_heads(rng, 5, 7, causal_a)
    heads_b = _random_heads(rng, 3, 7, causal_b)
    similarity = head_similarity(heads_a, heads_b)
    expected = np.array([[_overlap_similarity(p, q) for q in heads_b] for p in heads_a])
    np.testing.assert_allclose(similarity, expected, atol=1e-5)
    assert similarity.dtype == np.float32


def test_comparisons_saved_with_jsd_keep_their_metric() -> None:
    """A version-1 document (always Jensen–Shannon) still loads, labelled as such."""
    comparison = compare(make_analysis(TEXT), make_analysis(TEXT, seed=1))
    document = comparison_to_dict(comparison)
    assert document["version"] == 2 and document["metric"] == "bhattacharyya"
    old = {key: value for key, value in document.items() if key != "metric"} | {"version": 1}
    assert comparison_from_dict(old).metric == "jensen-shannon"
    with pytest.raises(ValueError, match="version 1 to 2"):
        comparison_from_dict(document | {"version": 3})


def test_kernel_refuses_different_spans() -> None:
    """Heads projected onto different span sets cannot be compared."""
    with pytest.raises(ValueError, match="same spans"):
        head_similarity(np.ones((2, 3, 3)) / 3, np.ones((2, 4, 4)) / 4)


def _crafted(similarity: np.ndarray, a_shape: tuple[int, int], b_shape: tuple[int, int]) -> Comparison:
    a = make_analysis(n_layers=a_shape[0], n_heads=a_shape[1])
    b = make_analysis(n_layers=b_shape[0], n_heads=b_shape[1], seed=1)
    base = compare(a, b)
    return Comparison(a=a, b=b, alignment=base.alignment, similarity=similarity, sources=("full", "full"))


def test_best_matches_flags_and_layer_summaries() -> None:
    """Matches, threshold flags and per-layer reductions on a hand-written matrix."""
    # A: 2 layers x 2 heads; B: 1 layer x 3 heads.
    similarity = np.array([[0.9, 0.2, 0.1], [0.3, 0.4, 0.45], [0.1, 0.8, 0.2], [0.2, 0.1, 0.7]], np.float32)
    comparison = _crafted(similarity, (2, 2), (1, 3))
    assert comparison.best_in_b.tolist() == [0, 2, 1, 2]
    assert comparison.best_in_a.tolist() == [0, 2, 3]
    assert comparison.only_in_a.tolist() == [1]  # best 0.45 < 0.5
    assert comparison.only_in_b.tolist() == []
    np.testing.assert_allclose(comparison.layer_matrix("max"), [[0.9], [0.8]])
    np.testing.assert_allclose(comparison.layer_matrix("mean"), [[(0.9 + 0.45) / 2], [(0.8 + 0.7) / 2]])
    summary = comparison.layer_summary("a")
    np.testing.assert_allclose(summary.best_mean, [0.675, 0.75])
    np.testing.assert_allclose(summary.best_min, [0.45, 0.7])
    assert summary.flagged.tolist() == [1, 0]
    np.testing.assert_allclose(summary.match_depth, [0.0, 0.0])  # B has one layer
    # B's heads match A heads 0, 3, 2: A layers 0, 1, 1 of 2, so a mean depth of 2/3.
    np.testing.assert_allclose(comparison.layer_summary("b").match_depth, [2 / 3])


def test_compare_with_itself_finds_every_twin() -> None:
    """Synthetic analyses: each head's best match is itself, with similarity 1."""
    a = make_analysis(PARAGRAPH, n_layers=3, n_heads=4)
    comparison = compare(a, a)
    n = 12
    assert comparison.similarity.shape == (n, n)
    np.testing.assert_allclose(np.diag(comparison.similarity), 1.0, atol=1e-4)
    assert comparison.best_in_b.tolist() == list(range(n))
    assert comparison.only_in_a.size == comparison.only_in_b.size == 0
    assert comparison.timings.total_s > 0


def test_tiny_models_self_twins_and_a_nontrivial_cross_matrix() -> None:
    """Tiny causal vs itself: own twins at 1; tiny causal vs tiny encoder: no perfect twin."""
    causal, encoder = _analyse(_sharpened("causal")), _analyse(_sharpened("encoder"))
    itself = compare(causal, causal)
    np.testing.assert_allclose(np.diag(itself.similarity), 1.0, atol=1e-4)
    assert itself.best_in_b.tolist() == list(range(8))
    cross = compare(causal, encoder)
    assert cross.similarity.shape == (8, 8)
    assert cross.similarity.min() > 0.0 and cross.similarity.max() < 0.95
    assert cross.alignment.labels[:3] == ["The", "quick", "brown"]  # [CLS]/[SEP] dropped


def test_diverging_continuations_are_compared_on_the_prompt() -> None:
    """Two generations from one prompt share only the prompt's words."""
    a = make_analysis(TEXT, generated=" and runs away", n_layers=1, n_heads=2)
    b = make_analysis(TEXT, generated=" but sleeps on", n_layers=2, n_heads=2, seed=2)
    comparison = compare(a, b)
    assert comparison.alignment.labels == [TEXT[s:e] for s, e in text_spans(TEXT)]
    assert comparison.similarity.shape == (2, 4)


def test_compact_top_k_fallback_is_close_to_full() -> None:
    """Without full attention the compact top-k is used; short texts keep every key in it."""
    full = make_analysis("one two three four five six", n_layers=2, n_heads=2)
    assert full.attention is not None
    top_k = Analysis(
        request=full.request,
        model=full.model,
        text=full.text,
        tokens=full.tokens,
        token_ids=full.token_ids,
        offsets=full.offsets,
        prompt_len=full.prompt_len,
        compact=compact_from_full(full.attention),
    )
    exact, approximate = compare(full, full), compare(full, top_k)
    assert approximate.sources == ("full", "top-k")
    np.testing.assert_allclose(approximate.similarity, exact.similarity, atol=0.01)


def test_too_many_spans_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_SPANS the message names the count and the limit."""
    monkeypatch.setattr(compare_module, "MAX_SPANS", 3)
    a = make_analysis()
    with pytest.raises(HeadlightError, match=r"9 shared word spans.*at most 3"):
        compare(a, a)


def test_dict_round_trip_is_json_safe() -> None:
    """to_dict -> JSON -> from_dict gives the same matrix, matches, spans and analyses."""
    a = make_analysis(PARAGRAPH, n_layers=2, n_heads=3)
    b = make_analysis(PARAGRAPH, n_layers=3, n_heads=2, seed=4)
    comparison = compare(a, b)
    restored = comparison_from_dict(json.loads(json.dumps(comparison_to_dict(comparison))))
    np.testing.assert_array_equal(restored.similarity, comparison.similarity)
    assert restored.best_in_b.tolist() == comparison.best_in_b.tolist()
    assert restored.alignment.spans == comparison.alignment.spans
    assert restored.a.tokens == a.tokens and restored.b.offsets == b.offsets
    assert restored.a.attention is None and restored.sources == comparison.sources
    assert restored.timings == comparison.timings
    with pytest.raises(ValueError, match=r"headlight\.comparison"):
        comparison_from_dict({"format": "something else"})
    with pytest.raises(ValueError, match="incomplete"):
        comparison_from_dict({"format": "headlight.comparison", "version": 1, "a": {}})


def test_compare_request_sets_modes_per_model_kind() -> None:
    """Generation applies to causal models with one seed; encoders always encode."""
    params = GenerationParams(max_new_tokens=3, seed=7)
    request = CompareRequest.of(
        model_a=("smollm2-135m-instruct", "causal"),
        model_b=("all-minilm-l6-v2", "encoder"),
        text="Hello there",
        generate=True,
        generation=params,
        top_k_next=4,
    )
    assert request.a.mode.value == "generate" and request.b.mode.value == "encode"
    assert request.a.generation == request.b.generation == params


@pytest.mark.model
def test_failing_side_leaves_the_other_usable(service: AnalysisService) -> None:
    """An unknown model B gives B's message; A still runs (here: nothing to compare)."""
    request = CompareRequest.of(
        model_a=("all-minilm-l6-v2", "encoder"),
        model_b=("no-such-model", "causal"),
        text="Hello there",
        generate=False,
        generation=GenerationParams(),
        top_k_next=3,
    )
    calls: list[tuple[str, float]] = []
    outcome = run_comparison(
        service, request, actor=ANONYMOUS_ACTOR, progress=lambda s, f, _m: calls.append((s, f))
    )
    assert outcome.a is not None and outcome.error_a is None
    assert outcome.b is None and "no-such-model" in (outcome.error_b or "")
    assert outcome.comparison is None
    assert ("a", 1.0) in calls


@pytest.mark.model
def test_smollm2_with_itself_and_with_minilm(service: AnalysisService) -> None:
    """Real models: SmolLM2's 270 heads each find their twin; vs MiniLM a varied matrix.

    Both models stay resident in the pool afterwards (the default budget holds them).
    """
    request = CompareRequest.of(
        model_a=("smollm2-135m-instruct", "causal"),
        model_b=("all-minilm-l6-v2", "encoder"),
        text=PARAGRAPH,
        generate=False,
        generation=GenerationParams(),
        top_k_next=3,
    )
    outcome = run_comparison(service, request, actor=ANONYMOUS_ACTOR)
    assert outcome.comparison is not None, (outcome.error_a, outcome.error_b, outcome.comparison_error)
    cross = outcome.comparison
    assert cross.similarity.shape == (270, 72)
    assert cross.similarity.std() > 0.05 and cross.similarity.max() < 0.99
    assert cross.alignment.n_spans >= 30 and not cross.alignment.dropped
    for model_id in ("smollm2-135m-instruct", "all-minilm-l6-v2"):
        assert service.pool.is_loaded(service.registry.get(model_id))

    itself = compare(cross.a, cross.a)
    np.testing.assert_allclose(np.diag(itself.similarity), 1.0, atol=1e-4)
    assert itself.best_in_b.tolist() == list(range(270))
