"""Inference core: shapes, normalisation, causality, reproducibility, offsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.domain.analysis import AnalysisMode, AnalysisRequest, GenerationParams
from core.domain.errors import HeadlightError, InputTooLongError
from core.models.huggingface.adapter import HuggingFaceModel, attention_modules
from core.service.inference import analyse
from tests.fixtures.tiny import tiny_model

BIG = 1 << 40  # keep full attention whatever the length


def _request(
    model: HuggingFaceModel, text: str, mode: AnalysisMode = AnalysisMode.ENCODE, **gen
) -> AnalysisRequest:
    return AnalysisRequest(
        model_id=model.spec.id, text=text, mode=mode, generation=GenerationParams(**gen), top_k_next=3
    )


def _forward_attention(model: HuggingFaceModel, ids: list[int]) -> np.ndarray:
    """Reference: transformers' own `output_attentions=True` over the whole sequence."""
    with torch.inference_mode():
        out = model.hf_model(input_ids=torch.tensor([ids]), output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).float().numpy()


@pytest.fixture(scope="module")
def tiny_causal() -> HuggingFaceModel:
    return tiny_model("causal", n_layers=3, n_heads=4)


@pytest.fixture(scope="module")
def tiny_encoder() -> HuggingFaceModel:
    return tiny_model("encoder", n_layers=2, n_heads=4)


def test_attention_modules_one_per_layer(
    tiny_causal: HuggingFaceModel, tiny_encoder: HuggingFaceModel
) -> None:
    """Hooks attach to exactly one attention module per layer."""
    assert len(attention_modules(tiny_causal.hf_model)) == 3
    assert len(attention_modules(tiny_encoder.hf_model)) == 2


def test_encode_shapes_rows_and_causality(tiny_causal: HuggingFaceModel) -> None:
    """Encode gives [layer, head, q, k] rows summing to 1 with nothing above the diagonal."""
    analysis = analyse(tiny_causal, _request(tiny_causal, "hello world, again"), full_attention_max_bytes=BIG)
    attention = analysis.attention.astype(np.float32)
    n = analysis.seq_len
    assert attention.shape == (3, 4, n, n)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=2e-3)
    assert np.all(np.triu(attention, k=1) == 0)
    assert analysis.head_stats.entropy.shape == (3, 4)
    assert len(analysis.next_tokens) == 1 and analysis.next_tokens[0].token is None


def test_hook_extraction_matches_output_attentions(tiny_causal: HuggingFaceModel) -> None:
    """Layer-by-layer hooks capture exactly what output_attentions=True returns."""
    analysis = analyse(tiny_causal, _request(tiny_causal, "a b c d e f g"), full_attention_max_bytes=BIG)
    reference = _forward_attention(tiny_causal, analysis.token_ids)
    np.testing.assert_allclose(analysis.attention.astype(np.float32), reference, atol=1e-3)


def test_long_inputs_keep_compact_only(tiny_causal: HuggingFaceModel) -> None:
    """Above the byte budget the full map is dropped and the compact form remains."""
    analysis = analyse(tiny_causal, _request(tiny_causal, "one two three four"), full_attention_max_bytes=1)
    assert analysis.attention is None
    assert analysis.compact.seq_len == analysis.seq_len


def test_encoder_is_bidirectional_and_cannot_generate(tiny_encoder: HuggingFaceModel) -> None:
    """Encoders attend both ways and refuse generation with a message saying what to do."""
    analysis = analyse(tiny_encoder, _request(tiny_encoder, "the cat sat"), full_attention_max_bytes=BIG)
    assert np.triu(analysis.attention.astype(np.float32), k=1).sum() > 0
    assert analysis.next_tokens == []
    with pytest.raises(HeadlightError, match="encoder"):
        analyse(
            tiny_encoder,
            _request(tiny_encoder, "the cat", AnalysisMode.GENERATE),
            full_attention_max_bytes=BIG,
        )


def test_token_limit_reports_count_and_limit(tiny_causal: HuggingFaceModel) -> None:
    """Text over the model's limit is refused with the count and the limit."""
    with pytest.raises(InputTooLongError, match="at most 64") as info:
        analyse(tiny_causal, _request(tiny_causal, "word " * 100), full_attention_max_bytes=BIG)
    assert info.value.n_tokens > 64


def test_generation_assembled_attention_matches_forward(tiny_causal: HuggingFaceModel) -> None:
    """Rows assembled from generation steps equal one forward pass over the final sequence."""
    request = _request(tiny_causal, "once upon a time", AnalysisMode.GENERATE, max_new_tokens=6)
    analysis = analyse(tiny_causal, request, full_attention_max_bytes=BIG)
    assert analysis.seq_len == analysis.prompt_len + 6
    reference = _forward_attention(tiny_causal, analysis.token_ids)
    np.testing.assert_allclose(analysis.attention.astype(np.float32), reference, atol=1e-3)
    assert [s.position for s in analysis.next_tokens] == list(range(analysis.prompt_len, analysis.seq_len))


def test_sampling_is_reproducible_with_seed(tiny_causal: HuggingFaceModel) -> None:
    """Same seed, same continuation; a different seed may differ."""
    params = {"max_new_tokens": 8, "do_sample": True, "temperature": 1.5, "seed": 7}
    first = analyse(
        tiny_causal,
        _request(tiny_causal, "seed test", AnalysisMode.GENERATE, **params),
        full_attention_max_bytes=BIG,
    )
    second = analyse(
        tiny_causal,
        _request(tiny_causal, "seed test", AnalysisMode.GENERATE, **params),
        full_attention_max_bytes=BIG,
    )
    assert first.token_ids == second.token_ids
    others = {
        tuple(
            analyse(
                tiny_causal,
                _request(tiny_causal, "seed test", AnalysisMode.GENERATE, **{**params, "seed": s}),
                full_attention_max_bytes=BIG,
            ).token_ids
        )
        for s in range(3)
    }
    assert len(others) > 1


def test_progress_is_reported(tiny_causal: HuggingFaceModel) -> None:
    """The progress callback reaches 1.0."""
    seen: list[float] = []
    analyse(
        tiny_causal,
        _request(tiny_causal, "progress"),
        full_attention_max_bytes=BIG,
        progress=lambda f, _m: seen.append(f),
    )
    assert seen and seen[-1] == pytest.approx(1.0)


def test_request_for_another_model_is_a_bug(tiny_causal: HuggingFaceModel) -> None:
    """A request must be run on the model it names."""
    request = AnalysisRequest(model_id="other", text="x")
    with pytest.raises(ValueError, match="request is for other"):
        analyse(tiny_causal, request, full_attention_max_bytes=BIG)


# Real bundled models (loaded once per session).


@pytest.mark.model
def test_smollm2_generate_real(smollm2: HuggingFaceModel) -> None:
    """SmolLM2 greedy generation: reproducible, assembled attention equals a forward pass."""
    request = _request(smollm2, "The capital of France is", AnalysisMode.GENERATE, max_new_tokens=5)
    first = analyse(smollm2, request, full_attention_max_bytes=BIG)
    second = analyse(smollm2, request, full_attention_max_bytes=BIG)
    assert first.token_ids == second.token_ids
    assert first.model.n_layers == 30 and first.model.n_heads == 9
    attention = first.attention.astype(np.float32)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=5e-3)
    assert np.all(np.triu(attention, k=1) == 0)
    reference = _forward_attention(smollm2, first.token_ids)
    np.testing.assert_allclose(attention, reference, atol=2e-3)
    for step in first.next_tokens:
        probabilities = [p for _, p in step.candidates]
        assert probabilities == sorted(probabilities, reverse=True) and probabilities[0] <= 1.0
        assert step.probability == pytest.approx(probabilities[0], abs=1e-5)  # greedy picks the top
    assert first.generated_text and first.text == first.prompt_text + first.generated_text


@pytest.mark.model
def test_smollm2_offsets_are_exact(smollm2: HuggingFaceModel) -> None:
    """Each token's span is exactly the text it decodes to, emoji and accents included."""
    text = "Naïve café owners sell crème brûlée 🍮 at 3.50€ each."
    analysis = analyse(smollm2, _request(smollm2, text), full_attention_max_bytes=BIG)
    spans = [analysis.text[s:e] for s, e in analysis.offsets]
    covered = set().union(*(range(s, e) for s, e in analysis.offsets))
    assert covered == set(range(len(text)))
    pairs = zip(analysis.offsets, analysis.offsets[1:], strict=False)
    assert all(a[1] <= b[1] and a[0] <= b[0] for a, b in pairs)
    for token_id, span in zip(analysis.token_ids, spans, strict=True):
        decoded = smollm2.decode([token_id])
        assert decoded == span or "\ufffd" in decoded  # byte pieces of one emoji share its span


@pytest.mark.model
def test_smollm2_chat_template(smollm2: HuggingFaceModel) -> None:
    """With the chat template the prompt carries the template's role markers."""
    request = _request(smollm2, "Say hi", AnalysisMode.GENERATE, max_new_tokens=3, use_chat_template=True)
    analysis = analyse(smollm2, request, full_attention_max_bytes=BIG)
    assert "<|im_start|>user" in analysis.prompt_text and "Say hi" in analysis.prompt_text


@pytest.mark.model
def test_minilm_encode_real(minilm: HuggingFaceModel) -> None:
    """MiniLM: 6 x 12 heads, [CLS]/[SEP] kept, offsets point at the original characters."""
    text = "Attention is all you need."
    analysis = analyse(minilm, _request(minilm, text), full_attention_max_bytes=BIG)
    assert analysis.attention.shape[:2] == (6, 12)
    assert analysis.tokens[0] == "[CLS]" and analysis.tokens[-1] == "[SEP]"
    words = [analysis.text[s:e] for s, e in analysis.offsets if e > s]
    assert words[0] == "Attention" and "need" in words
    np.testing.assert_allclose(analysis.attention.astype(np.float32).sum(-1), 1.0, atol=5e-3)


def test_lazy_compact_matches_streaming_compact(tiny_causal: HuggingFaceModel) -> None:
    """Short inputs derive the compact form from the kept map; it matches the streamed one."""
    request = _request(tiny_causal, "the lazy and the streamed forms agree")
    short = analyse(tiny_causal, request, full_attention_max_bytes=BIG)
    long = analyse(tiny_causal, request, full_attention_max_bytes=1)
    assert short.attention is not None and long.attention is None
    lazy, streamed = short.compact, long.compact
    assert lazy.overview.shape == streamed.overview.shape
    np.testing.assert_allclose(lazy.overview.astype(int), streamed.overview.astype(int), atol=2)
    for name, values in long.stats.items():
        np.testing.assert_allclose(short.stats[name], values, atol=2e-3)
