"""Per-head attention statistics on tiny attention patterns whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from core.attention.stats import STAT_NAMES, head_stats, induction_score, layer_head_stats, query_blocks


def _identity(n_heads: int, seq_len: int) -> np.ndarray:
    """Every query attends only to itself: ``[n_heads, seq_len, seq_len]``."""
    return np.broadcast_to(np.eye(seq_len, dtype=np.float32), (n_heads, seq_len, seq_len)).copy()


def _uniform_causal(seq_len: int) -> np.ndarray:
    """Query q spreads evenly over keys 0..q: ``[1, seq_len, seq_len]``."""
    mask = np.tril(np.ones((seq_len, seq_len), np.float32))
    return (mask / mask.sum(axis=1, keepdims=True))[None]


def _previous_token(seq_len: int) -> np.ndarray:
    """Query 0 attends to itself, every later query to the token before it."""
    attention = np.zeros((1, seq_len, seq_len), np.float32)
    attention[0, 0, 0] = 1.0
    attention[0, np.arange(1, seq_len), np.arange(seq_len - 1)] = 1.0
    return attention


def _random_attention(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Softmax of random logits over the last axis, float32, causal."""
    seq_len = shape[-1]
    logits = rng.standard_normal(shape).astype(np.float32) * 3
    logits[..., np.triu(np.ones((seq_len, seq_len), bool), 1)] = -np.inf
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _reference(layer: np.ndarray) -> dict[str, np.ndarray]:
    """The definitions, written plainly in float64."""
    a = layer.astype(np.float64)
    seq_len = a.shape[-1]
    q = np.arange(seq_len)
    logs = np.log(np.where(a > 0, a, 1.0))
    return {
        "entropy": -(a * logs).sum(-1).mean(-1),
        "mean_distance": (a * np.abs(q[:, None] - q[None, :])).sum(-1).mean(-1),
        "previous_token": a[:, q[1:], q[1:] - 1].mean(-1),
        "first_token": a[:, :, 0].mean(-1),
        "self": a[:, q, q].mean(-1),
    }


def test_identity_attention() -> None:
    """Attention to self only: no entropy, no distance, self 1, previous 0."""
    stats = layer_head_stats(_identity(3, 7))
    assert set(stats) == set(STAT_NAMES)
    assert all(v.shape == (3,) and v.dtype == np.float32 for v in stats.values())
    np.testing.assert_allclose(stats["entropy"], 0.0, atol=1e-6)
    np.testing.assert_allclose(stats["mean_distance"], 0.0)
    np.testing.assert_allclose(stats["self"], 1.0)
    np.testing.assert_allclose(stats["previous_token"], 0.0)
    np.testing.assert_allclose(stats["first_token"], 1 / 7)


def test_uniform_causal_attention() -> None:
    """Uniform over keys 0..q: entropy log(q+1), distance q/2, sink and self 1/(q+1)."""
    seq_len = 9
    q = np.arange(seq_len)
    stats = layer_head_stats(_uniform_causal(seq_len))
    np.testing.assert_allclose(stats["entropy"], [np.log(q + 1).mean()], rtol=1e-6)
    np.testing.assert_allclose(stats["mean_distance"], [(q / 2).mean()], rtol=1e-6)
    np.testing.assert_allclose(stats["first_token"], [(1 / (q + 1)).mean()], rtol=1e-6)
    np.testing.assert_allclose(stats["self"], [(1 / (q + 1)).mean()], rtol=1e-6)
    np.testing.assert_allclose(stats["previous_token"], [(1 / (q[1:] + 1)).mean()], rtol=1e-6)


def test_previous_token_attention() -> None:
    """Exact previous-token head: previous 1, distance (n-1)/n, sink 2/n, self 1/n."""
    seq_len = 10
    stats = layer_head_stats(_previous_token(seq_len))
    np.testing.assert_allclose(stats["previous_token"], [1.0])
    np.testing.assert_allclose(stats["mean_distance"], [(seq_len - 1) / seq_len], rtol=1e-6)
    np.testing.assert_allclose(stats["first_token"], [2 / seq_len], rtol=1e-6)
    np.testing.assert_allclose(stats["self"], [1 / seq_len], rtol=1e-6)
    np.testing.assert_allclose(stats["entropy"], [0.0], atol=1e-6)


def test_single_token() -> None:
    """seq_len 1: the only query attends to itself; previous_token is defined as 0."""
    stats = layer_head_stats(np.ones((2, 1, 1), np.float16))
    expected = {"entropy": 0, "mean_distance": 0, "previous_token": 0, "first_token": 1, "self": 1}
    for name, value in expected.items():
        np.testing.assert_allclose(stats[name], [value, value], atol=1e-7)


def test_matches_reference_across_query_blocks() -> None:
    """Random attention long enough to span several query blocks matches the float64 definitions."""
    layer = _random_attention(np.random.default_rng(0), (9, 300, 300))
    assert len(list(query_blocks(layer))) > 2
    stats = layer_head_stats(layer)
    for name, expected in _reference(layer).items():
        np.testing.assert_allclose(stats[name], expected, rtol=2e-5, atol=1e-6, err_msg=name)


def test_float16_input_is_read_exactly() -> None:
    """Every float16 bit pattern (NaN and inf included) converts exactly as numpy's cast does."""
    patterns = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    layer = patterns.reshape(1, 256, 256)
    converted = np.concatenate([block for _, block in query_blocks(layer)], axis=1)
    assert converted.dtype == np.float32
    np.testing.assert_array_equal(converted.view(np.uint32), layer.astype(np.float32).view(np.uint32))


def test_float16_and_float32_agree() -> None:
    """A float16 layer gives exactly the stats of the same values in float32."""
    layer = _random_attention(np.random.default_rng(1), (4, 50, 50)).astype(np.float16)
    half, single = layer_head_stats(layer), layer_head_stats(layer.astype(np.float32))
    for name in STAT_NAMES:
        np.testing.assert_array_equal(half[name], single[name])


def test_head_stats_stacks_layers() -> None:
    """head_stats is layer_head_stats applied layer by layer: ``[n_layers, n_heads]``."""
    attention = _random_attention(np.random.default_rng(2), (3, 2, 16, 16))
    stats = head_stats(attention)
    assert stats.entropy.shape == stats.mean_distance.shape == (3, 2)
    for layer in range(3):
        expected = layer_head_stats(attention[layer])
        np.testing.assert_array_equal(stats.entropy[layer], expected["entropy"])
        np.testing.assert_array_equal(stats.mean_distance[layer], expected["mean_distance"])


def test_induction_score() -> None:
    """On a repeated block, an induction head scores 1 and a previous-token head 0."""
    period, seq_len = 5, 15
    induction = _uniform_causal(seq_len)[0]
    q = np.arange(period, seq_len)
    induction[q] = 0.0
    induction[q, q - period + 1] = 1.0
    layer = np.stack([induction, _previous_token(seq_len)[0]])
    np.testing.assert_allclose(induction_score(layer, period), [1.0, 0.0])


@pytest.mark.parametrize("period", [0, 15, -1])
def test_induction_score_rejects_bad_period(period: int) -> None:
    """A period that leaves no repeated token is a ValueError."""
    with pytest.raises(ValueError, match="period"):
        induction_score(_uniform_causal(15), period)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_attention(bad_value: float) -> None:
    """NaN or infinite attention (a float16 overflow upstream) is a ValueError, not garbage."""
    layer = _uniform_causal(6)
    layer[0, 4, 2] = bad_value
    with pytest.raises(ValueError, match="NaN or infinite"):
        layer_head_stats(layer)


def test_rejects_non_arrays_and_wrong_rank() -> None:
    """Lists (or tensors) and 3-D attention for head_stats are ValueErrors that say what to pass."""
    with pytest.raises(ValueError, match="numpy array"):
        layer_head_stats([[[1.0]]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_layers"):
        head_stats(_identity(2, 3))


@pytest.mark.parametrize(
    "bad",
    [np.ones((2, 3, 4), np.float32), np.ones((3, 3), np.float32), np.ones((1, 2, 2), np.int64)],
)
def test_rejects_bad_layers(bad: np.ndarray) -> None:
    """Wrong shapes and integer dtypes are ValueErrors."""
    with pytest.raises(ValueError, match="Layer attention"):
        layer_head_stats(bad)
