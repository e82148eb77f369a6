"""Payloads of the attention view: thumbnails, one head's detail, byte bounds, detail sources."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest

from core.attention.compact import CompactAttention, compact_from_full, index_dtype, overview_edges
from core.attention.payload import (
    JSON_OVERHEAD,
    THUMB_SIZE,
    HeadDetail,
    decode_detail,
    detail_payload,
    detail_plan,
    overview_payload,
    resolve_head_detail,
    thumbnails,
)
from core.attention.stats import STAT_NAMES
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError
from tests.factories import make_analysis
from ui.attention_view import FRONTEND

QUANT = 1 / 510  # uint8 rounding: half a code step


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def _compact_only(analysis: Analysis) -> Analysis:
    """The same analysis as storage gives it back for long inputs: compact form, no full map."""
    return Analysis(
        request=analysis.request,
        model=analysis.model,
        text=analysis.text,
        tokens=analysis.tokens,
        token_ids=analysis.token_ids,
        offsets=analysis.offsets,
        prompt_len=analysis.prompt_len,
        compact=compact_from_full(analysis.attention),
        next_tokens=analysis.next_tokens,
    )


def _block_means(attention: np.ndarray, size: int) -> np.ndarray:
    """Reference pooling, loop by loop: mean over a query block of the sum over a key block."""
    edges = overview_edges(attention.shape[-1], size)
    out = np.zeros((*attention.shape[:-2], len(edges) - 1, len(edges) - 1), np.float64)
    for i in range(len(edges) - 1):
        for j in range(len(edges) - 1):
            block = attention[..., edges[i] : edges[i + 1], edges[j] : edges[j + 1]].astype(np.float64)
            out[..., i, j] = block.sum(axis=-1).mean(axis=-1)
    return out


def _decoded_thumbs(payload: dict) -> np.ndarray:
    n_layers, n_heads, size = payload["n_layers"], payload["n_heads"], payload["thumb_size"]
    codes = np.frombuffer(base64.b64decode(payload["thumbs"]), np.uint8)
    codes = codes.reshape(n_layers, n_heads, size, size).astype(np.float64)
    return codes / 255 * np.asarray(payload["thumb_scale"])[..., None, None]


def _softmax_rows(rng: np.random.Generator, seq_len: int) -> np.ndarray:
    """A causal head ``[seq_len, seq_len]`` float32 with no ties among a row's weights."""
    logits = rng.standard_normal((seq_len, seq_len)) * 3
    logits[np.triu_indices(seq_len, 1)] = -np.inf
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("n_words", [20, 90, 150])
def test_thumbnails_from_full_attention_are_block_means(n_words: int) -> None:
    """From the full map, each cell is the block mean within scale / 510."""
    analysis = make_analysis(_words(n_words), n_layers=2, n_heads=3)
    payload = overview_payload(analysis)
    assert payload["thumb_size"] == min(n_words, THUMB_SIZE)
    expected = _block_means(analysis.attention, THUMB_SIZE)
    tolerance = np.asarray(payload["thumb_scale"])[..., None, None] * QUANT + 1e-6
    assert np.all(np.abs(_decoded_thumbs(payload) - expected) <= tolerance)


@pytest.mark.parametrize("n_words", [40, 150])
def test_thumbnails_from_compact_form_are_block_means(n_words: int) -> None:
    """Reopened without the full map, the compact overview pooled is within 3 / 510 of the truth."""
    analysis = make_analysis(_words(n_words), n_layers=2, n_heads=3, seed=4)
    stored = _compact_only(analysis)
    assert stored.attention is None
    expected = _block_means(analysis.attention, THUMB_SIZE)
    assert np.max(np.abs(_decoded_thumbs(overview_payload(stored)) - expected)) <= 3 * QUANT + 1e-6


def test_overview_payload_is_json_with_tokens_verbatim() -> None:
    """Tokens travel as JSON strings, untouched (the browser sets them as text), stats per head."""
    analysis = make_analysis('<script>alert(1)</script> & "quotes" </b> ok', n_layers=2, n_heads=3)
    payload = json.loads(json.dumps(overview_payload(analysis)))
    assert payload["tokens"] == analysis.tokens
    assert payload["tokens"][0] == "<script>alert(1)</script>"
    assert payload["seq_len"] == analysis.seq_len and payload["prompt_len"] == analysis.prompt_len
    assert set(payload["stats"]) == set(STAT_NAMES)
    assert np.asarray(payload["stats"]["entropy"]).shape == (2, 3)
    assert payload["id"] == analysis.request.cache_key(analysis.model.revision)[:16]


def _blank_long_analysis(n_layers: int, n_heads: int, seq_len: int) -> Analysis:
    """A stored long analysis without computing any attention (all-zero compact form)."""
    shape = (n_layers, n_heads)
    size = min(seq_len, 64)
    compact = CompactAttention(
        seq_len=seq_len,
        overview=np.zeros((*shape, size, size), np.uint8),
        overview_scale=np.zeros(shape, np.float32),
        topk_index=np.zeros((*shape, seq_len, 8), index_dtype(seq_len)),
        topk_value=np.zeros((*shape, seq_len, 8), np.uint8),
        stats={name: np.zeros(shape, np.float32) for name in STAT_NAMES},
    )
    template = make_analysis("a b", n_layers=n_layers, n_heads=n_heads)
    tokens = [f" t{i}" for i in range(seq_len)]
    return Analysis(
        request=template.request,
        model=template.model,
        text="".join(tokens),
        tokens=tokens,
        token_ids=list(range(seq_len)),
        offsets=[(0, 0)] * seq_len,
        prompt_len=seq_len,
        compact=compact,
    )


@pytest.mark.parametrize("seq_len", [128, 2048, 8192])
def test_overview_payload_bytes_do_not_grow_with_length_beyond_tokens(seq_len: int) -> None:
    """30 x 9 heads: thumbnails stay 4/3 * 30 * 9 * 32 * 32 bytes; only the tokens' text grows."""
    payload = overview_payload(_blank_long_analysis(30, 9, seq_len))
    size = len(json.dumps(payload))
    thumbs = 4 * math.ceil(30 * 9 * THUMB_SIZE**2 / 3)
    assert len(payload["thumbs"]) == thumbs
    per_head_numbers = 30 * 9 * (1 + len(STAT_NAMES)) * 16
    assert size <= thumbs + per_head_numbers + len(json.dumps(payload["tokens"])) + JSON_OVERHEAD


def _assert_top_k(weights: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Top-k positions are exact: the k largest weights, largest first (masked zeros may tie)."""
    k = index.shape[-1]
    picked = np.take_along_axis(weights, index, axis=-1)
    np.testing.assert_array_equal(picked, -np.sort(-weights, axis=-1)[:, :k])
    expected = np.argsort(-weights, axis=-1, kind="stable")[:, :k]
    np.testing.assert_array_equal(index[picked > 0], expected[picked > 0])
    return picked


@pytest.mark.parametrize("seq_len", [1, 9, 300])
def test_detail_round_trip_within_tolerance_and_top_k_exact(seq_len: int) -> None:
    """decode(encode(head)): each value within its row's scale / 510; top-k positions exact."""
    weights = _softmax_rows(np.random.default_rng(seq_len), seq_len)
    payload = json.loads(json.dumps(detail_payload(HeadDetail(1, 2, weights, "full"))))
    assert (payload["layer"], payload["head"], payload["source"]) == (1, 2, "full")
    decoded, index, value = decode_detail(payload)
    assert decoded.shape == (seq_len, seq_len)
    tolerance = weights.max(axis=-1, keepdims=True) * QUANT + 1e-7
    assert np.all(np.abs(decoded - weights) <= tolerance)
    k = min(8, seq_len)
    assert index.shape == (seq_len, k)
    picked = _assert_top_k(weights, index)
    assert np.all(np.abs(value - picked) <= QUANT + 1e-7)


def test_long_detail_is_downsampled_to_block_means_within_the_byte_bound() -> None:
    """Past max_side the map becomes block means; raw bytes stay within max_bytes, k gives way."""
    seq_len, side = 300, 64
    weights = _softmax_rows(np.random.default_rng(1), seq_len)
    max_bytes = side * side + 4 * side + seq_len * 3 * 3  # room for k = 3
    assert detail_plan(seq_len, max_side=side, max_bytes=max_bytes) == (side, 3)
    payload = detail_payload(HeadDetail(0, 0, weights, "recomputed"), max_side=side, max_bytes=max_bytes)
    decoded, index, _ = decode_detail(payload)
    expected = _block_means(weights, side)
    tolerance = expected.max(axis=-1, keepdims=True) * QUANT + 1e-6
    assert decoded.shape == (side, side) and np.all(np.abs(decoded - expected) <= tolerance)
    _assert_top_k(weights, index)
    arrays = ("codes", "row_scale", "topk_index", "topk_value")
    raw = sum(len(base64.b64decode(payload[name])) for name in arrays)
    assert raw <= max_bytes
    assert len(json.dumps(payload)) <= 4 * math.ceil(max_bytes / 3) + JSON_OVERHEAD


def test_default_detail_at_2048_tokens_is_full_resolution() -> None:
    """SmolLM2's longest input keeps every cell and 8 keys per query within 6 MiB."""
    assert detail_plan(2048) == (2048, 8)


def test_detail_refuses_bad_shapes_and_budgets() -> None:
    """A non-square map or a budget below the map itself is a ValueError saying what to change."""
    with pytest.raises(ValueError, match="seq_len, seq_len"):
        detail_payload(HeadDetail(0, 0, np.zeros((3, 4), np.float32), "full"))
    with pytest.raises(ValueError, match="raise max_bytes"):
        detail_plan(100, max_bytes=1000)


def test_detail_source_full_when_kept() -> None:
    """An analysis that kept its full map serves it, without recomputing."""
    analysis = make_analysis(_words(12), n_layers=2, n_heads=3)

    def fail(_layer: int) -> np.ndarray:
        raise AssertionError("must not recompute")

    detail, notice = resolve_head_detail(analysis, 1, 2, recompute=fail)
    assert detail.source == "full" and notice is None
    np.testing.assert_array_equal(detail.weights, analysis.attention[1, 2].astype(np.float32))


def test_detail_source_recomputed_for_stored_analyses() -> None:
    """Without the full map, only the selected layer is recomputed."""
    analysis = make_analysis(_words(12), n_layers=2, n_heads=3)
    stored = _compact_only(analysis)
    calls: list[int] = []

    def recompute(layer: int) -> np.ndarray:
        calls.append(layer)
        return analysis.attention[layer].astype(np.float32)

    detail, notice = resolve_head_detail(stored, 1, 0, recompute=recompute)
    assert calls == [1] and detail.source == "recomputed" and notice is None
    np.testing.assert_array_equal(detail.weights, analysis.attention[1, 0].astype(np.float32))


def test_detail_falls_back_to_top_k_with_a_notice() -> None:
    """No model (or another revision): each query's top-k from the compact form, and why."""
    stored = _compact_only(make_analysis(_words(12), n_layers=2, n_heads=3))

    def unavailable(_layer: int) -> np.ndarray:
        raise HeadlightError("the model is not installed here")

    detail, notice = resolve_head_detail(stored, 0, 1, recompute=unavailable)
    assert detail.source == "top-k"
    assert notice is not None and "not installed here" in notice
    rows = (detail.weights > 0).sum(axis=-1)
    assert np.all(rows <= stored.compact.k)
    detail, notice = resolve_head_detail(stored, 0, 1, recompute=None)
    assert detail.source == "top-k" and "no model" in (notice or "")


def test_detail_rejects_heads_outside_the_model() -> None:
    """Layer or head out of range is a ValueError naming the model's shape."""
    analysis = make_analysis(_words(5), n_layers=2, n_heads=3)
    with pytest.raises(ValueError, match="2 layers of 3 heads"):
        resolve_head_detail(analysis, 2, 0, recompute=None)
    with pytest.raises(ValueError, match="2 layers of 3 heads"):
        resolve_head_detail(analysis, 0, -1, recompute=None)


def test_thumbnails_shape_and_zero_heads() -> None:
    """An all-zero head keeps scale 0 and codes 0 (no division by zero)."""
    codes, scale = thumbnails(_blank_long_analysis(2, 2, 100))
    assert codes.shape == (2, 2, THUMB_SIZE, THUMB_SIZE) and codes.dtype == np.uint8
    assert not codes.any() and not scale.any()


def test_frontend_is_offline_and_never_parses_html() -> None:
    """The component's files load nothing from the network and never build HTML from strings."""
    files = [path for path in FRONTEND.rglob("*") if path.suffix in {".html", ".js", ".css"}]
    assert {path.name for path in files} >= {"index.html", "main.js", "streamlit.js"}
    for path in files:
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", source), path
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", source), path
