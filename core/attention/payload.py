"""What the attention view sends to the browser: JSON dicts with base64 arrays, bounded in bytes.

Two payloads (see docs/attention-view.md for the numbers measured on SmolLM2):

- `overview_payload`, sent with every render: tokens, per-head statistics, and one thumbnail
  ``[T, T]`` per head, ``T = min(seq_len, THUMB_SIZE)``. Thumbnail cell ``(i, j)`` is the mean
  over the queries of block ``i`` of the attention summed over the keys of block ``j``, with
  the blocks of `core.attention.compact.overview_edges` ``(seq_len, T)``. Stored as uint8 with one scale
  per head: ``value = code / 255 * thumb_scale[layer][head]``. Built from the full attention
  when the analysis kept it (max abs error ``scale / 510``), otherwise by pooling the compact
  overview maps: a thumbnail cell sums up to ``g`` of their key blocks (``g = 2`` with the
  default sizes), each off by up to 1 / 510, so the error is at most ``(g + 1) / 510``. Size:
  ``n_layers * n_heads * T * T`` bytes before base64, whatever ``seq_len`` is, plus the
  tokens' text.
- `detail_payload`, sent only for the selected head: its map ``[D, D]``, ``D = min(seq_len,
  max_side)`` (block means as above when ``seq_len > max_side``), quantised per query row:
  ``value = code / 255 * row_scale[q]`` with ``row_scale[q]`` the row's largest value, so a
  value is off by at most ``row_scale[q] / 510``; and the ``k`` most attended keys of every
  query from the unquantised map (exact positions, most attended first, uint8 values
  ``round(255 * a)``, off by at most ``1 / 510``). ``k`` gives way first so that the raw
  bytes ``D * D + 4 * D + seq_len * k * (index itemsize + 1)`` stay within ``max_bytes``.

Arrays are base64 of little-endian bytes in C order. Base64 adds a third, so a payload's
JSON is at most ``4 / 3`` of its raw bytes plus `JSON_OVERHEAD` (keys, small numbers) and,
for the overview, the tokens and statistics.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.attention import compact as compact_codec
from core.attention.stats import STAT_NAMES
from core.domain.analysis import Analysis
from core.domain.errors import HeadlightError

PAYLOAD_VERSION = 1
THUMB_SIZE = 32
DETAIL_MAX_SIDE = 2048
DETAIL_K = 8
# SmolLM2's longest input (2048 tokens) fits whole: 4 MiB of codes + 8 KiB of row scales
# + 48 KiB of top-k.
DETAIL_MAX_BYTES = 6 * 1024 * 1024
# Keys, versions and small integers of either payload, generously.
JSON_OVERHEAD = 1024

DetailSource = Literal["full", "recomputed", "top-k"]


@dataclass(frozen=True, eq=False)
class HeadDetail:
    """One head's attention ``weights`` ``[seq_len, seq_len]`` float32 (query, key).

    ``source`` says where it came from: the analysis's full attention, a recomputation of
    the layer, or (no model at hand) the compact top-k only, with every other entry 0.
    """

    layer: int
    head: int
    weights: np.ndarray
    source: DetailSource


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _quantise(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """uint8 codes ``round(255 * values / scale)``; a zero scale gives codes 0."""
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.rint(values / safe * 255.0), 0, 255).astype(np.uint8)


def _pool(maps: np.ndarray, sizes: np.ndarray, size: int) -> np.ndarray:
    """Pool block maps ``[..., S, S]`` to ``[..., size, size]`` by grouping neighbouring blocks.

    ``maps[..., i, j]`` is a mean over the queries of block ``i`` (``sizes[i]`` positions)
    of a sum over the keys of block ``j``; the result keeps that meaning for the groups
    ``overview_edges(S, size)``: keys are summed, queries averaged weighted by their count.
    """
    groups = compact_codec.overview_edges(maps.shape[-1], size)[:-1]
    key_sums = np.add.reduceat(maps, groups, axis=-1)
    weighted = key_sums * sizes.astype(np.float32)[:, None]
    pooled = np.add.reduceat(weighted, groups, axis=-2)
    return pooled / np.add.reduceat(sizes, groups).astype(np.float32)[:, None]


def thumbnails(analysis: Analysis, size: int = THUMB_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Every head's thumbnail: codes ``[n_layers, n_heads, T, T]`` uint8 and scales ``[n_layers, n_heads]``.

    ``T = min(seq_len, size)``; ``value = code / 255 * scale`` (module docstring).
    """
    seq_len = analysis.seq_len
    if analysis.attention is not None:
        ones = np.ones(seq_len, np.int64)
        # One layer at a time, so only one layer is ever held as float32.
        pooled = np.stack([_pool(layer.astype(np.float32), ones, size) for layer in analysis.attention])
    else:
        compact = analysis.compact
        scale = compact.overview_scale[..., None, None] / np.float32(255)
        overview = compact.overview.astype(np.float32) * scale
        sizes = np.diff(compact_codec.overview_edges(seq_len, compact.overview_size))
        pooled = _pool(overview, sizes, size)
    scale = pooled.max(axis=(-2, -1)).astype(np.float32)
    return _quantise(pooled, scale[..., None, None]), scale


def overview_payload(analysis: Analysis) -> dict:
    """What the view needs up front: tokens, statistics and every head's thumbnail.

    ``id`` identifies the analysis (model, revision, text, parameters), so the browser keeps
    what it drew when the same analysis is rendered again.
    """
    codes, scale = thumbnails(analysis)
    return {
        "version": PAYLOAD_VERSION,
        "id": analysis.request.cache_key(analysis.model.revision)[:16],
        "n_layers": analysis.model.n_layers,
        "n_heads": analysis.model.n_heads,
        "seq_len": analysis.seq_len,
        "prompt_len": analysis.prompt_len,
        "tokens": list(analysis.tokens),
        "thumb_size": int(codes.shape[-1]),
        "thumbs": _b64(codes),
        "thumb_scale": np.round(scale, 6).tolist(),
        "stats": {name: np.round(analysis.stats[name], 4).tolist() for name in STAT_NAMES},
    }


def _block_map(weights: np.ndarray, side: int) -> np.ndarray:
    """``weights`` ``[seq_len, seq_len]`` as ``[side, side]`` block means (identity if equal)."""
    seq_len = weights.shape[0]
    if side == seq_len:
        return weights
    return _pool(weights, np.ones(seq_len, np.int64), side)


def _top_k(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``[seq_len, k]`` int64 and values of each query's ``k`` largest, largest first."""
    seq_len = weights.shape[-1]
    if k == 0:
        empty = np.zeros((weights.shape[0], 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    candidates = np.argpartition(weights, seq_len - k, axis=-1)[:, seq_len - k :]
    values = np.take_along_axis(weights, candidates, axis=-1)
    order = np.argsort(-values, axis=-1, kind="stable")
    return np.take_along_axis(candidates, order, -1), np.take_along_axis(values, order, -1)


def detail_plan(
    seq_len: int, *, max_side: int = DETAIL_MAX_SIDE, max_bytes: int = DETAIL_MAX_BYTES
) -> tuple[int, int]:
    """``(D, k)`` of a detail payload: map side and top-k per query, by the module's byte rule."""
    side = min(seq_len, max_side)
    fixed = side * side + 4 * side
    if max_bytes < fixed:
        raise ValueError(
            f"max_bytes={max_bytes:,} is below the {fixed:,} bytes of a {side}x{side} map; "
            "raise max_bytes or lower max_side."
        )
    per_k = seq_len * (compact_codec.index_dtype(seq_len).itemsize + 1)
    return side, min(DETAIL_K, seq_len, (max_bytes - fixed) // per_k)


def detail_payload(
    detail: HeadDetail, *, max_side: int = DETAIL_MAX_SIDE, max_bytes: int = DETAIL_MAX_BYTES
) -> dict:
    """One head's map and top-k for the browser (module docstring); raw bytes <= ``max_bytes``."""
    weights = np.asarray(detail.weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1] or weights.shape[0] == 0:
        raise ValueError(f"weights must be shaped [seq_len, seq_len], got {list(weights.shape)}.")
    seq_len = weights.shape[0]
    side, k = detail_plan(seq_len, max_side=max_side, max_bytes=max_bytes)
    block_map = _block_map(weights, side)
    row_scale = block_map.max(axis=-1).astype(np.float32)
    index, value = _top_k(weights, k)
    return {
        "version": PAYLOAD_VERSION,
        "layer": detail.layer,
        "head": detail.head,
        "source": detail.source,
        "seq_len": seq_len,
        "size": side,
        "codes": _b64(_quantise(block_map, row_scale[:, None])),
        "row_scale": _b64(row_scale.astype("<f4")),
        "k": k,
        "index_bytes": compact_codec.index_dtype(seq_len).itemsize,
        "topk_index": _b64(index.astype(compact_codec.index_dtype(seq_len).newbyteorder("<"))),
        "topk_value": _b64(_quantise(value, np.float32(1.0))),
    }


def decode_detail(payload: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse of `detail_payload`, as the browser reads it.

    Returns the map ``[D, D]`` float32, top-k positions ``[seq_len, k]`` int64 and values
    ``[seq_len, k]`` float32.
    """
    side, seq_len, k = payload["size"], payload["seq_len"], payload["k"]
    codes = np.frombuffer(base64.b64decode(payload["codes"]), np.uint8).reshape(side, side)
    row_scale = np.frombuffer(base64.b64decode(payload["row_scale"]), "<f4")
    index_type = np.dtype(f"<u{payload['index_bytes']}")
    index = np.frombuffer(base64.b64decode(payload["topk_index"]), index_type).reshape(seq_len, k)
    value = np.frombuffer(base64.b64decode(payload["topk_value"]), np.uint8).reshape(seq_len, k)
    weights = codes.astype(np.float32) * (row_scale[:, None] / np.float32(255))
    return weights, index.astype(np.int64), value.astype(np.float32) / np.float32(255)


LayerRecompute = Callable[[int], np.ndarray]


def resolve_head_detail(
    analysis: Analysis, layer: int, head: int, *, recompute: LayerRecompute | None
) -> tuple[HeadDetail, str | None]:
    """The best detail available for one head, and a notice when it is not the full map.

    Full attention if the analysis kept it; else ``recompute(layer)`` (``[n_heads, seq_len,
    seq_len]``, e.g. `LanguageModel.layer_attention` behind a cache); else, when there is
    no ``recompute`` or it raises a `HeadlightError` (model unavailable, other revision),
    the compact top-k of each query.
    """
    info = analysis.model
    if not (0 <= layer < info.n_layers and 0 <= head < info.n_heads):
        raise ValueError(
            f"No head {head} in layer {layer}: the model has {info.n_layers} layers of {info.n_heads} heads."
        )
    if analysis.attention is not None:
        return HeadDetail(layer, head, analysis.attention[layer, head].astype(np.float32), "full"), None
    reason = "this analysis has no model to recompute it with"
    if recompute is not None:
        try:
            weights = recompute(layer)[head].astype(np.float32)
        except HeadlightError as exc:
            reason = str(exc)
        else:
            return HeadDetail(layer, head, weights, "recomputed"), None
    weights = compact_codec.head_detail(analysis.compact, layer, head)
    notice = (
        f"Showing only each token's {analysis.compact.k} most attended positions "
        f"(the full map could not be recomputed: {reason})"
    )
    return HeadDetail(layer, head, weights, "top-k"), notice
