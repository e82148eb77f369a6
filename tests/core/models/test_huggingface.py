"""The Hugging Face adapter behind the model boundary: each capture against what it promises.

Known answers on tiny config-built models (Llama with grouped-query attention, Gemma 3 with
q/k norms and sliding windows, BERT): queries and keys reproduce the captured attention,
per-head outputs rebuild the attention block's output, the last residual through the final
norm and the unembedding gives the logits. Then tokens, logits, generation and hygiene.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from core.models.boundary import Capture, LanguageModel, Sampling
from core.models.huggingface.adapter import HuggingFaceModel, attention_modules
from tests.fixtures.tiny import tiny_model

TEXT = "the cat sat on the mat and the dog sat on the log"


@pytest.fixture(scope="module")
def llama() -> HuggingFaceModel:
    return tiny_model("causal", n_layers=3, n_heads=4)


@pytest.fixture(scope="module")
def gemma() -> HuggingFaceModel:
    return tiny_model("causal", n_layers=2, n_heads=4, family="gemma3")


@pytest.fixture(scope="module")
def bert() -> HuggingFaceModel:
    return tiny_model("encoder", n_layers=2, n_heads=4)


def _capture_all(model: LanguageModel, ids: list[int], **wanted: bool) -> dict[str, dict[int, tuple]]:
    """Every capture asked for, copied to float32 CPU tensors: ``{name: {layer: tensors}}``."""
    seen: dict[str, dict[int, tuple]] = defaultdict(dict)

    def keep(name: str):
        def callback(layer: int, *tensors: torch.Tensor) -> None:
            seen[name][layer] = tuple(t.detach().float().cpu().clone() for t in tensors)

        return callback

    model.forward(ids, capture=Capture(**{name: keep(name) for name, on in wanted.items() if on}))
    return seen


def _scores_to_weights(
    queries: torch.Tensor, keys: torch.Tensor, scale: float, window: int | None
) -> torch.Tensor:
    """softmax(q k^T * scale + causal (windowed) mask), key head ``h // group`` per query head."""
    n_heads, seq_len, _ = queries.shape
    group = n_heads // keys.shape[0]
    scores = queries @ keys.repeat_interleave(group, dim=0).transpose(1, 2) * scale
    q = torch.arange(seq_len)[:, None]
    k = torch.arange(seq_len)[None, :]
    allowed = k <= q
    if window is not None:
        allowed &= q - k < window
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)


def test_queries_and_keys_reproduce_attention_with_grouped_heads(llama: HuggingFaceModel) -> None:
    """Llama, 4 query heads on 2 key/value heads: q and k after the rotary embedding give the
    captured weights exactly (``softmax(q k^T / sqrt(d) + causal mask)``)."""
    ids = llama.tokenize(TEXT).ids
    seen = _capture_all(llama, ids, attention=True, queries_keys=True)
    assert sorted(seen["queries_keys"]) == [0, 1, 2]
    for layer in range(3):
        queries, keys = seen["queries_keys"][layer]
        (weights,) = seen["attention"][layer]
        assert queries.shape == (4, len(ids), 8) and keys.shape == (2, len(ids), 8)
        expected = _scores_to_weights(queries, keys, llama.attention_scale, window=None)
        torch.testing.assert_close(weights, expected, atol=1e-6, rtol=1e-5)
    assert llama.attention_scale == pytest.approx(8**-0.5)


def test_queries_and_keys_after_gemma_norms_and_windows(gemma: HuggingFaceModel) -> None:
    """Gemma 3: queries and keys come after the q/k norms; the scale is query_pre_attn_scalar's
    (16, not the head dim 8); sliding layers see 4 keys back, full layers every earlier key."""
    ids = gemma.tokenize(TEXT).ids
    assert len(ids) > 8  # long enough for the window to matter
    seen = _capture_all(gemma, ids, attention=True, queries_keys=True)
    assert gemma.attention_scale == pytest.approx(16**-0.5)
    for layer, window in ((0, 4), (1, None)):
        queries, keys = seen["queries_keys"][layer]
        (weights,) = seen["attention"][layer]
        assert queries.shape == (4, len(ids), 8) and keys.shape == (1, len(ids), 8)
        expected = _scores_to_weights(queries, keys, gemma.attention_scale, window=window)
        torch.testing.assert_close(weights, expected, atol=1e-6, rtol=1e-5)
    assert torch.all(seen["attention"][0][0][:, -1, : len(ids) - 4] == 0)  # outside the window
    assert torch.all(seen["attention"][1][0][:, -1, :] > 0)


@pytest.mark.parametrize("name", ["llama", "gemma", "bert"])
def test_head_outputs_through_the_projection_sum_to_the_block_output(name: str, request) -> None:
    """Each head's slice of the output projection applied to its own outputs, summed over the
    heads (plus the bias), is the projection's output; and head h's outputs are its attention
    weights applied to the values of its key/value head."""
    model: HuggingFaceModel = request.getfixturevalue(name)
    hf = model.hf_model
    ids = model.tokenize(TEXT).ids
    attention = attention_modules(hf)
    if name == "bert":
        projections = [layer.attention.output.dense for layer in hf.encoder.layer]
        values = [module.value for module in attention]
    else:
        projections = [module.o_proj for module in attention]
        values = [module.v_proj for module in attention]
    mixed: dict[int, torch.Tensor] = {}
    value_states: dict[int, torch.Tensor] = {}
    handles = [
        projection.register_forward_hook(
            lambda _m, _a, out, layer=layer: mixed.__setitem__(layer, out[0].detach().clone())
        )
        for layer, projection in enumerate(projections)
    ] + [
        value.register_forward_hook(
            lambda _m, _a, out, layer=layer: value_states.__setitem__(layer, out[0].detach().clone())
        )
        for layer, value in enumerate(values)
    ]
    try:
        seen = _capture_all(model, ids, attention=True, head_outputs=True)
    finally:
        for handle in handles:
            handle.remove()
    n_heads = model.info.n_heads
    for layer, projection in enumerate(projections):
        (outputs,) = seen["head_outputs"][layer]
        weight = projection.weight.detach()
        head_dim = outputs.shape[-1]
        assert outputs.shape == (n_heads, len(ids), head_dim)
        parts = torch.stack(
            [outputs[h] @ weight[:, h * head_dim : (h + 1) * head_dim].T for h in range(n_heads)]
        )
        bias = projection.bias.detach() if projection.bias is not None else 0.0
        torch.testing.assert_close(parts.sum(0) + bias, mixed[layer], atol=1e-5, rtol=1e-4)
        # z_h = A_h @ V_{h // group}
        (weights,) = seen["attention"][layer]
        heads_v = value_states[layer].view(len(ids), -1, head_dim).transpose(0, 1)
        heads_v = heads_v.repeat_interleave(n_heads // heads_v.shape[0], dim=0)
        torch.testing.assert_close(outputs, weights @ heads_v, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_last_residual_through_norm_and_unembedding_is_the_logits(name: str, request) -> None:
    """The residual after the last layer, through the final norm and lm_head, equals the logits
    the model returns (the logit lens at the last layer); earlier layers are the hidden states
    transformers reports."""
    model: HuggingFaceModel = request.getfixturevalue(name)
    hf = model.hf_model
    ids = model.tokenize(TEXT).ids
    seen = _capture_all(model, ids, residual=True)
    n_layers = model.info.n_layers
    assert sorted(seen["residual"]) == list(range(n_layers))
    (last,) = seen["residual"][n_layers - 1]
    assert last.shape == (len(ids), hf.config.hidden_size)
    logits = model.forward(ids, logits="all").logits
    with torch.inference_mode():
        lens = hf.lm_head(hf.model.norm(last)).numpy()
        hidden = hf(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    np.testing.assert_allclose(lens, logits, atol=1e-4, rtol=1e-4)
    for layer in range(n_layers - 1):  # transformers' last entry is after the final norm
        torch.testing.assert_close(seen["residual"][layer][0], hidden[layer + 1][0])


def test_bert_residual_is_each_layer_output(bert: HuggingFaceModel) -> None:
    """An encoder's residual stream after layer l is its hidden state l + 1."""
    ids = bert.tokenize(TEXT).ids
    seen = _capture_all(bert, ids, residual=True)
    with torch.inference_mode():
        hidden = bert.hf_model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    for layer in range(2):
        torch.testing.assert_close(seen["residual"][layer][0], hidden[layer + 1][0])


def test_capture_only_the_layers_asked_for(llama: HuggingFaceModel) -> None:
    """``layers`` limits every kind of capture to those layers."""
    calls: list[tuple[str, int]] = []
    capture = Capture(
        attention=lambda layer, _w: calls.append(("attention", layer)),
        queries_keys=lambda layer, _q, _k: calls.append(("queries_keys", layer)),
        head_outputs=lambda layer, _z: calls.append(("head_outputs", layer)),
        residual=lambda layer, _r: calls.append(("residual", layer)),
        layers={1},
    )
    llama.forward([101, 2000, 2001, 102], capture=capture, logits="none")
    assert sorted(calls) == [("attention", 1), ("head_outputs", 1), ("queries_keys", 1), ("residual", 1)]


def test_hooks_and_the_query_sink_are_gone_after_a_forward_even_a_failed_one(llama: HuggingFaceModel) -> None:
    """A callback that raises leaves no hook behind; the next forward captures nothing stale."""
    hf = llama.hf_model
    before = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in hf.modules())

    def boom(_layer: int, *_tensors: torch.Tensor) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        llama.forward([101, 2000, 102], capture=Capture(queries_keys=boom, residual=boom, head_outputs=boom))
    after = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in hf.modules())
    assert after == before
    assert llama.forward([101, 2000, 102]).logits is not None  # no stale sink raises now


def test_forward_logits_last_all_or_none(llama: HuggingFaceModel, bert: HuggingFaceModel) -> None:
    """``[1, vocab]`` for the last position, ``[seq_len, vocab]`` for all, float32 numpy; encoders
    have none."""
    ids = llama.tokenize(TEXT).ids
    vocab = llama.hf_model.config.vocab_size
    last = llama.forward(ids).logits
    every = llama.forward(ids, logits="all").logits
    assert last.shape == (1, vocab) and every.shape == (len(ids), vocab)
    assert last.dtype == np.float32
    np.testing.assert_allclose(last[0], every[-1], atol=1e-5)
    assert llama.forward(ids, logits="none").logits is None
    assert bert.forward(bert.tokenize(TEXT).ids).logits is None
    with pytest.raises(ValueError, match="empty"):
        llama.forward([])


def test_tokenize_offsets_pieces_and_special_ids(bert: HuggingFaceModel) -> None:
    """Offsets point into the text, special tokens cover nothing, pieces are the tokenizer's."""
    text = "Hello, wonderful world"
    tokens = bert.tokenize(text)
    assert len(tokens) == len(tokens.offsets) == len(tokens.pieces)
    assert tokens.pieces[0] == "[CLS]" and tokens.pieces[-1] == "[SEP]"
    assert tokens.offsets[0] == (0, 0) and tokens.offsets[-1] == (0, 0)
    assert [text[s:e] for s, e in tokens.offsets[1:3]] == ["Hello", ","]
    assert {tokens.ids[0], tokens.ids[-1]} <= bert.special_ids
    assert bert.unk_id is not None and bert.unk_id in bert.special_ids
    assert bert.tokenize(text, add_special_tokens=False).ids == tokens.ids[1:-1]
    assert bert.token_ids([text, "x"]) == [tokens.ids, bert.tokenize("x").ids]
    assert bert.token_strings(tokens.ids) == tokens.pieces
    assert bert.decode(tokens.ids[1:-1]) == "hello, wonderful world"
    assert not bert.has_chat_template
    with pytest.raises(ValueError, match="no chat template"):
        bert.render_chat([{"role": "user", "content": "hi"}])


def test_generation_steps_rows_and_logits(llama: HuggingFaceModel) -> None:
    """Greedy generation: one attention row per generated token, logits whose argmax is the
    token chosen, a token callback per step, and rows that assemble into one forward pass."""
    prompt = llama.tokenize("once upon a time").ids
    counted: list[int] = []
    generation = llama.generate(prompt, max_new_tokens=5, on_token=counted.append)
    n_prompt, seq_len = len(prompt), generation.seq_len
    assert generation.ids[:n_prompt] == prompt and generation.prompt_len == n_prompt
    assert seq_len == n_prompt + 5 and counted == [1, 2, 3, 4, 5]
    assert len(generation.attention) == 6
    assert generation.attention[0][2].shape == (4, n_prompt, n_prompt)
    assert [step[0].shape for step in generation.attention[1:]] == [(4, n_prompt + s) for s in range(1, 6)]
    assert generation.logits.shape == (5, llama.hf_model.config.vocab_size)
    assert list(generation.logits.argmax(-1)) == generation.ids[n_prompt:]
    seen = _capture_all(llama, generation.ids, attention=True)
    for layer in range(3):
        np.testing.assert_allclose(
            generation.layer_attention(layer).numpy(), seen["attention"][layer][0].numpy(), atol=1e-5
        )


def test_sampled_generation_is_seeded(llama: HuggingFaceModel) -> None:
    """The same seed draws the same tokens; generating does not disturb the global RNG."""
    prompt = llama.tokenize("seed").ids
    sampling = Sampling(temperature=1.5)
    state = torch.random.get_rng_state()
    first = llama.generate(prompt, max_new_tokens=6, sampling=sampling, seed=3).ids
    assert torch.equal(torch.random.get_rng_state(), state)
    assert llama.generate(prompt, max_new_tokens=6, sampling=sampling, seed=3).ids == first


def test_encoders_do_not_generate(bert: HuggingFaceModel) -> None:
    with pytest.raises(ValueError, match="encoder"):
        bert.generate([101, 102], max_new_tokens=2)


def test_info_describes_the_model(llama: HuggingFaceModel, gemma: HuggingFaceModel) -> None:
    """The adapter is a `LanguageModel`; ModelInfo and the pool's figures come from the model."""
    assert isinstance(llama, LanguageModel)
    assert (llama.info.architecture, llama.info.n_layers, llama.info.n_heads) == ("LlamaForCausalLM", 3, 4)
    assert (gemma.info.architecture, gemma.info.n_layers) == ("Gemma3ForCausalLM", 2)
    assert llama.device == llama.info.device == "cpu" and llama.info.dtype == "float32"
    params = sum(p.numel() * p.element_size() for p in llama.hf_model.parameters())
    assert llama.nbytes >= params > 0


# Real bundled model (loaded once per session).


@pytest.mark.model
def test_smollm2_queries_keys_and_lens(smollm2: HuggingFaceModel) -> None:
    """SmolLM2: 9 query heads on 3 key/value heads of 64 dims; queries and keys give its
    attention; the last residual through its norm and lm_head gives its logits."""
    ids = smollm2.tokenize("Attention is all you need, they said, and then they measured it.").ids
    seen = _capture_all(smollm2, ids, attention=True, queries_keys=True, residual=True)
    queries, keys = seen["queries_keys"][17]
    assert queries.shape == (9, len(ids), 64) and keys.shape == (3, len(ids), 64)
    expected = _scores_to_weights(queries, keys, smollm2.attention_scale, window=None)
    torch.testing.assert_close(seen["attention"][17][0], expected, atol=1e-4, rtol=1e-3)
    hf = smollm2.hf_model
    with torch.inference_mode():
        (last,) = seen["residual"][29]
        lens = hf.lm_head(hf.model.norm(last.to(hf.dtype))).float().numpy()
    np.testing.assert_allclose(lens[-1:], smollm2.forward(ids).logits, atol=1e-3, rtol=1e-3)
