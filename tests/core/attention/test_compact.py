"""Compact attention: top-k, overview, byte bound, streaming, and the binary format."""

from __future__ import annotations

import itertools
import json
import struct

import numpy as np
import pytest

from core.attention.compact import (
    FORMAT_VERSION,
    HEADER_RESERVE,
    MAGIC,
    CompactAttention,
    CompactBuilder,
    compact_from_full,
    decode,
    encode,
    head_detail,
    index_dtype,
    nbytes,
    overview_edges,
    overview_map,
)
from core.attention.stats import STAT_NAMES, layer_head_stats

VALUE_TOLERANCE = 1 / 510 + 1e-6  # documented max error of uint8 top-k values


def _softmax_attention(
    rng: np.random.Generator, shape: tuple[int, ...], *, causal: bool = False
) -> np.ndarray:
    """Softmax of random logits over the last axis: float32, no ties off the causal mask."""
    seq_len = shape[-1]
    logits = rng.standard_normal(shape).astype(np.float32) * 3
    if causal:
        logits[..., np.triu(np.ones((seq_len, seq_len), bool), 1)] = -np.inf
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _cheap_layer(rng: np.random.Generator, n_heads: int, seq_len: int) -> np.ndarray:
    """Rows of uniform random weights normalised to 1, float16: fast to make at any length."""
    weights = rng.random((n_heads, seq_len, seq_len), dtype=np.float32)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights.astype(np.float16)


def _assert_equal(a: CompactAttention, b: CompactAttention) -> None:
    assert a.seq_len == b.seq_len
    for name in ("overview", "overview_scale", "topk_index", "topk_value"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype, name
        np.testing.assert_array_equal(left, right, err_msg=name)
    assert set(a.stats) == set(b.stats) == set(STAT_NAMES)
    for name in STAT_NAMES:
        np.testing.assert_array_equal(a.stats[name], b.stats[name], err_msg=name)


@pytest.mark.parametrize(
    ("seq_len", "k"),
    [(20, 8), (300, 8), (1000, 8), (256, 4)],  # one argpartition; chunks with a tail; without
)
def test_topk_positions_and_values(seq_len: int, k: int) -> None:
    """Top-k positions equal argsort's, most attended first; values within 1/510."""
    attention = _softmax_attention(np.random.default_rng(seq_len), (1, 2, seq_len, seq_len))
    compact = compact_from_full(attention, k=k)
    assert compact.k == k
    assert compact.topk_index.dtype == np.uint16
    expected = np.argsort(-attention, axis=-1, kind="stable")[..., :k]
    np.testing.assert_array_equal(compact.topk_index, expected)
    original = np.take_along_axis(attention, expected, axis=-1)
    error = np.abs(compact.topk_value / 255 - original)
    assert error.max() <= VALUE_TOLERANCE


def test_k_is_capped_by_seq_len() -> None:
    """With fewer tokens than k, every key is kept, in order."""
    attention = _softmax_attention(np.random.default_rng(3), (2, 1, 5, 5))
    compact = compact_from_full(attention, k=8)
    assert compact.k == 5
    np.testing.assert_array_equal(compact.topk_index, np.argsort(-attention, axis=-1))


def test_head_detail_is_sparse_top_k() -> None:
    """head_detail holds the dequantised top-k of each query and zeros elsewhere."""
    attention = _softmax_attention(np.random.default_rng(4), (2, 3, 40, 40), causal=True)
    compact = compact_from_full(attention, k=4)
    detail = head_detail(compact, 1, 2)
    assert detail.shape == (40, 40) and detail.dtype == np.float32
    index = compact.topk_index[1, 2].astype(np.intp)
    kept = np.zeros((40, 40), bool)
    np.put_along_axis(kept, index, True, axis=-1)
    assert not detail[~kept].any()
    np.testing.assert_array_equal(
        np.take_along_axis(detail, index, axis=-1), compact.topk_value[1, 2] / np.float32(255)
    )
    assert np.abs(detail[kept] - attention[1, 2][kept]).max() <= VALUE_TOLERANCE


@pytest.mark.parametrize("seq_len", [128, 100, 10])
def test_overview_is_block_mean_of_key_block_sums(seq_len: int) -> None:
    """Overview cells are the mean over query blocks of key-block sums; rows sum to ~1."""
    attention = _softmax_attention(np.random.default_rng(5), (1, 2, seq_len, seq_len), causal=True)
    compact = compact_from_full(attention)
    size = min(seq_len, 64)
    edges = overview_edges(seq_len, 64)
    assert compact.overview.shape == (1, 2, size, size) and compact.overview.dtype == np.uint8
    assert edges[0] == 0 and edges[-1] == seq_len and np.ptp(np.diff(edges)) <= 1
    blocks = [slice(lo, hi) for lo, hi in itertools.pairwise(edges)]
    for head in range(2):
        a = attention[0, head].astype(np.float64)
        expected = np.array([[a[qs, ks].sum(1).mean() for ks in blocks] for qs in blocks])
        scale = compact.overview_scale[0, head]
        np.testing.assert_allclose(scale, expected.max(), rtol=1e-6)
        got = overview_map(compact, 0, head)
        assert np.abs(got - expected).max() <= scale / 510 + 1e-6
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=size * scale / 510 + 1e-5)


def test_stats_are_those_of_core_stats() -> None:
    """Each stored statistic is layer_head_stats of its layer."""
    attention = _softmax_attention(np.random.default_rng(6), (3, 2, 30, 30), causal=True)
    compact = compact_from_full(attention)
    for layer in range(3):
        for name, value in layer_head_stats(attention[layer]).items():
            np.testing.assert_array_equal(compact.stats[name][layer], value)


def test_streaming_equals_all_at_once() -> None:
    """Layers added one by one, in any order, give exactly compact_from_full's result."""
    attention = _softmax_attention(np.random.default_rng(7), (4, 3, 150, 150), causal=True)
    builder = CompactBuilder(4, 3, 150, k=5, overview_size=32)
    for layer in (2, 0, 3, 1):
        builder.add_layer(layer, attention[layer])
    _assert_equal(builder.build(), compact_from_full(attention, k=5, overview_size=32))


def test_float16_gives_the_compact_form_of_its_values() -> None:
    """A float16 input compacts exactly like the same values in float32."""
    half = _softmax_attention(np.random.default_rng(8), (2, 2, 70, 70)).astype(np.float16)
    _assert_equal(compact_from_full(half), compact_from_full(half.astype(np.float32)))


def test_encode_decode_round_trip() -> None:
    """decode(encode(x)) reproduces every array exactly; the blob starts with magic + version."""
    attention = _softmax_attention(np.random.default_rng(9), (2, 3, 90, 90), causal=True)
    compact = compact_from_full(attention, k=6, overview_size=16)
    blob = encode(compact)
    assert blob[:4] == MAGIC and struct.unpack_from("<H", blob, 4)[0] == FORMAT_VERSION
    assert nbytes(compact) < len(blob) <= nbytes(compact) + HEADER_RESERVE
    _assert_equal(decode(blob), compact)


def test_index_dtype() -> None:
    """Positions are uint16 below 65536 tokens, uint32 from there."""
    assert index_dtype(65535) == np.uint16
    assert index_dtype(65536) == np.uint32


def _blank(builder: CompactBuilder) -> CompactAttention:
    """A compact form with the builder's planned shapes, without computing any layer."""
    heads = (builder.n_layers, builder.n_heads)
    size = min(builder.seq_len, 64)
    topk = (*heads, builder.seq_len, builder.k)
    return CompactAttention(
        seq_len=builder.seq_len,
        overview=np.zeros((*heads, size, size), np.uint8),
        overview_scale=np.zeros(heads, np.float32),
        topk_index=np.zeros(topk, index_dtype(builder.seq_len)),
        topk_value=np.zeros(topk, np.uint8),
        stats={name: np.zeros(heads, np.float32) for name in STAT_NAMES},
    )


def test_byte_bound_plan_30x9_at_4096_tokens() -> None:
    """30 layers x 9 heads at 4096 tokens: k drops to the largest that fits in 8 MiB."""
    max_bytes = 8 * 1024 * 1024
    builder = CompactBuilder(30, 9, 4096)
    assert builder.k == 2
    blank = _blank(builder)
    assert len(encode(blank)) <= nbytes(blank) + HEADER_RESERVE <= max_bytes
    per_k = 30 * 9 * 4096 * (2 + 1)  # uint16 position + uint8 value per query and head
    assert nbytes(blank) + HEADER_RESERVE + per_k > max_bytes  # k = 3 would not fit


def test_byte_bound_end_to_end_at_4096_tokens() -> None:
    """A real 4096-token build under a tight budget respects it and keeps exact top-k."""
    seq_len = 4096
    fixed = HEADER_RESERVE + 64 * 64 + 4 + 4 * len(STAT_NAMES)
    max_bytes = fixed + 3 * seq_len * 3 + 100  # room for k = 3, not 4
    layer = _cheap_layer(np.random.default_rng(10), 1, seq_len)
    builder = CompactBuilder(1, 1, seq_len, max_bytes=max_bytes)
    builder.add_layer(0, layer)
    compact = builder.build()
    assert compact.k == 3
    assert nbytes(compact) <= len(encode(compact)) <= max_bytes
    rows = np.arange(0, seq_len, 97)
    values = layer[0, rows].astype(np.float32)
    expected = np.sort(values, axis=-1)[:, ::-1][:, :3]
    picked = np.take_along_axis(values, compact.topk_index[0, 0, rows].astype(np.intp), axis=-1)
    np.testing.assert_array_equal(picked, expected)  # float16 ties: compare values, not positions


def test_k_can_drop_to_zero() -> None:
    """A budget with room for the overview and stats only keeps no top-k, and still encodes."""
    fixed = HEADER_RESERVE + 8 * 8 + 4 + 4 * len(STAT_NAMES)
    attention = _softmax_attention(np.random.default_rng(11), (1, 1, 8, 8))
    compact = compact_from_full(attention, max_bytes=fixed)
    assert compact.k == 0
    assert len(encode(compact)) <= fixed
    _assert_equal(decode(encode(compact)), compact)
    assert not head_detail(compact, 0, 0).any()


def test_budget_below_fixed_part_is_refused() -> None:
    """max_bytes below the overview and statistics is a ValueError that says what to change."""
    with pytest.raises(ValueError, match="raise max_bytes"):
        CompactBuilder(30, 9, 512, max_bytes=100_000)


def test_builder_rejects_misuse() -> None:
    """Wrong shape, unknown layer, a layer twice, and a missing layer are ValueErrors."""
    builder = CompactBuilder(2, 2, 6)
    layer = _softmax_attention(np.random.default_rng(12), (2, 6, 6))
    with pytest.raises(ValueError, match="shaped"):
        builder.add_layer(0, layer[:1])
    with pytest.raises(ValueError, match="layer must be"):
        builder.add_layer(2, layer)
    builder.add_layer(0, layer)
    with pytest.raises(ValueError, match="already"):
        builder.add_layer(0, layer)
    with pytest.raises(ValueError, match=r"\[1\] were never added"):
        builder.build()


def test_bad_arguments_are_refused() -> None:
    """A zero size, a 3-D array, and an inconsistent compact form are ValueErrors."""
    with pytest.raises(ValueError, match="at least 1"):
        CompactBuilder(1, 1, 4, k=0)
    with pytest.raises(ValueError, match="n_layers, n_heads"):
        compact_from_full(np.ones((2, 4, 4), np.float32))
    compact = compact_from_full(_softmax_attention(np.random.default_rng(14), (1, 1, 4, 4)))
    compact.overview_scale = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="overview_scale is shaped"):
        encode(compact)


def _with_header(blob: bytes, change: dict) -> bytes:
    """The blob with its JSON header updated by ``change``."""
    header_len = struct.unpack_from("<I", blob, 6)[0]
    header = json.loads(blob[10 : 10 + header_len])
    header.update(change)
    new = json.dumps(header).encode()
    return blob[:6] + struct.pack("<I", len(new)) + new + blob[10 + header_len :]


@pytest.fixture(scope="module")
def blob() -> bytes:
    attention = _softmax_attention(np.random.default_rng(13), (1, 2, 12, 12), causal=True)
    return encode(compact_from_full(attention, k=3))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda b: b"", "shorter"),
        (lambda b: b"PK\x03\x04" + b[4:], "magic"),
        (lambda b: b[:4] + struct.pack("<H", 99) + b[6:], "version 99"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b[:6] + struct.pack("<I", 10**9) + b[10:], "header"),
        (lambda b: b[:10] + b"{not json" + b[19:], "header"),
        (lambda b: _with_header(b, {"k": 4}), "array list|expected"),
        (lambda b: _with_header(b, {"seq_len": "12"}), "dimensions"),
        (lambda b: _with_header(b, {"k": 13}), "k > seq_len"),
        (lambda b: _with_header(b, {"arrays": []}), "array list"),
    ],
)
def test_malformed_blobs_raise_value_error(blob: bytes, corrupt, message: str) -> None:
    """Anything but an intact blob is a ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        decode(corrupt(blob))


def test_out_of_range_position_is_refused(blob: bytes) -> None:
    """A top-k position beyond seq_len (a flipped byte) is caught at decode time."""
    compact = decode(blob)
    compact.topk_index[0, 0, 0, 0] = 12
    with pytest.raises(ValueError, match="beyond seq_len"):
        decode(encode(compact))
