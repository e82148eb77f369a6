"""The compact form of attention: what is rendered and saved, bounded in bytes.

For attention ``[n_layers, n_heads, seq_len, seq_len]`` the compact form keeps, per head:

- all statistics of `core.attention.stats` (float32);
- an overview map ``[S, S]``, ``S = min(seq_len, overview_size)``: query and key positions
  are cut into ``S`` contiguous blocks (sizes differ by at most one, see `overview_edges`);
  cell ``(i, j)`` is the mean over the queries of block ``i`` of the attention summed over
  the keys of block ``j``, so each row still sums to 1. Stored as uint8 codes with one
  float32 scale per head: ``value = code / 255 * overview_scale[layer, head]``, where the
  scale is the head's largest cell. Max abs error: ``overview_scale / 510`` (<= 1/510);
- the ``k`` most attended keys of every query, most attended first: indices (uint16, or
  uint32 when ``seq_len >= 65536``) and uint8 values ``code = round(255 * a)``, so
  ``a = code / 255`` with max abs error ``1 / 510`` (about 0.00196) against the float32
  attention.

Byte bound: everything except the top-k is fixed by the shape, so ``k`` is what gives way.
With ``fixed = n_layers * n_heads * (S * S + 4 + 4 * len(STAT_NAMES)) + HEADER_RESERVE`` and
``per_k = n_layers * n_heads * seq_len * (index itemsize + 1)``, the builder uses
``k = min(requested k, seq_len, (max_bytes - fixed) // per_k)``. ``k`` may thus be 0 for
very long inputs (overview and statistics only; recompute a head for detail). Both
`nbytes` and ``len(encode(...))`` stay within ``max_bytes``; a ``max_bytes`` below
``fixed`` is refused.

Binary format (`encode` / `decode`), all integers little-endian, no pickle:

- 4 bytes magic ``b"HLCA"``, uint16 format version (`FORMAT_VERSION`), uint32 header length;
- the header: UTF-8 JSON ``{"n_layers", "n_heads", "seq_len", "overview_size", "k",
  "arrays": [{"name", "dtype", "shape"}, ...]}``, at most `HEADER_RESERVE` bytes;
- each array of ``arrays`` in that order, C order, raw little-endian bytes, nothing after.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from core.attention.stats import STAT_NAMES, LayerStatsAccumulator, check_layer_attention, query_blocks
from core.domain.compact import CompactAttention

MAGIC = b"HLCA"
FORMAT_VERSION = 1
# Bytes set aside for the encoded prefix and JSON header; real headers are well under 1 KiB.
HEADER_RESERVE = 4096
DEFAULT_K = 8
DEFAULT_OVERVIEW_SIZE = 64
DEFAULT_MAX_BYTES = 8 * 1024 * 1024

_PREFIX = struct.Struct("<4sHI")
# Below this many keys per chunk the two-stage top-k saves nothing over one argpartition.
_MIN_CHUNK = 4


def index_dtype(seq_len: int) -> np.dtype:
    """The dtype of top-k key positions: uint16 when ``seq_len < 65536``, else uint32."""
    return np.dtype(np.uint16) if seq_len < 2**16 else np.dtype(np.uint32)


def overview_edges(seq_len: int, overview_size: int) -> np.ndarray:
    """Block boundaries ``[S + 1]`` int64: overview block ``i`` is positions ``e[i] .. e[i+1]-1``.

    ``S = min(seq_len, overview_size)``; block sizes differ by at most one.
    """
    size = min(seq_len, overview_size)
    return np.arange(size + 1) * seq_len // size


def _layout(
    n_layers: int, n_heads: int, seq_len: int, overview_size: int, k: int
) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    """``(name, little-endian dtype, shape)`` of every stored array, in encoding order."""
    heads = (n_layers, n_heads)
    topk = (*heads, seq_len, k)
    arrays = [
        ("overview", np.dtype("u1"), (*heads, overview_size, overview_size)),
        ("overview_scale", np.dtype("<f4"), heads),
        ("topk_index", index_dtype(seq_len).newbyteorder("<"), topk),
        ("topk_value", np.dtype("u1"), topk),
    ]
    arrays += [(f"stats.{name}", np.dtype("<f4"), heads) for name in STAT_NAMES]
    return arrays


def _fit_k(n_layers: int, n_heads: int, seq_len: int, overview_size: int, k: int, max_bytes: int) -> int:
    """The largest ``k' <= min(k, seq_len)`` whose compact form fits in ``max_bytes``."""
    fixed = HEADER_RESERVE + sum(
        dtype.itemsize * int(np.prod(shape))
        for _, dtype, shape in _layout(n_layers, n_heads, seq_len, overview_size, 0)
    )
    if max_bytes < fixed:
        raise ValueError(
            f"max_bytes={max_bytes:,} is below the {fixed:,} bytes that the overview and "
            "statistics alone take; raise max_bytes or lower overview_size."
        )
    per_k = n_layers * n_heads * seq_len * (index_dtype(seq_len).itemsize + 1)
    return min(k, seq_len, (max_bytes - fixed) // per_k)


def _top_k(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Most attended keys of each query, largest first.

    ``block`` is ``[n_heads, rows, seq_len]`` float32; returns indices (int64) and values
    (float32), each ``[n_heads, rows, k]``. Ties are broken arbitrarily but deterministically.
    """
    lead, seq_len = block.shape[:-1], block.shape[-1]
    # Two stages, because one argpartition over whole rows is the slowest step otherwise.
    # Keys are dealt into n_chunks interleaved chunks (key j goes to chunk j % n_chunks) so
    # that chunk maxima are a cheap elementwise maximum over rows of the reshaped block. The
    # k chunks with the largest maxima hold a full top-k: a chunk holding a top-k entry but
    # not chosen is outranked by k chosen maxima, each itself >= the k-th largest value.
    n_chunks = int(np.sqrt(seq_len * k))  # balances n_chunks against k * seq_len / n_chunks
    members = seq_len // max(n_chunks, 1)
    if n_chunks <= k or members < _MIN_CHUNK:
        candidates = np.argpartition(block, seq_len - k, axis=-1)[..., seq_len - k :]
    else:
        body = members * n_chunks
        maxima = block[..., :body].reshape(*lead, members, n_chunks).max(axis=-2)
        rest = seq_len - body  # < n_chunks keys left over: one more member for chunks 0..rest-1
        np.maximum(maxima[..., :rest], block[..., body:], out=maxima[..., :rest])
        best = np.argpartition(maxima, n_chunks - k, axis=-1)[..., n_chunks - k :]
        members += rest > 0
        keys = (best[..., None] + n_chunks * np.arange(members)).reshape(*lead, k * members)
        # Chunks past `rest` have no last member: clip it and rank it below any attention.
        overhang = keys >= seq_len
        keys[overhang] = seq_len - 1
        values = np.take_along_axis(block, keys, axis=-1)
        values[overhang] = -1.0
        picked = np.argpartition(values, values.shape[-1] - k, axis=-1)[..., -k:]
        candidates = np.take_along_axis(keys, picked, axis=-1)
    values = np.take_along_axis(block, candidates, axis=-1)
    order = np.argsort(-values, axis=-1, kind="stable")
    return np.take_along_axis(candidates, order, axis=-1), np.take_along_axis(values, order, -1)


def _keys_used(block: np.ndarray, end: int, k: int) -> int:
    """How many leading keys hold all of ``block``'s attention: ``end`` if every key from ``end``
    on is exactly 0 (causal attention, ``end`` = the block's last query + 1), else all of them.

    ``block`` is ``[n_heads, rows, seq_len]`` float32 and non-negative, so its bit patterns read
    as int32 order like the values and their maximum is 0 only when all are +0.0; that read is
    cheaper than a float comparison. Never fewer than ``k`` keys, so a top-k still has ``k``.
    """
    seq_len = block.shape[-1]
    if end >= seq_len or end < k:
        return seq_len
    return end if int(block[..., end:].view(np.int32).max()) == 0 else seq_len


def _quantise_unit(values: np.ndarray) -> np.ndarray:
    """uint8 codes of values in [0, 1]: ``round(255 * v)``, clipped."""
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


class CompactBuilder:
    """Builds a `CompactAttention` one layer at a time, so full attention is never held.

    ``k`` is the requested number of top keys per query; the one used (`k`) may be smaller,
    by the byte-bound rule of the module docstring. Call `add_layer` once per layer, in any
    order, then `build`.
    """

    def __init__(
        self,
        n_layers: int,
        n_heads: int,
        seq_len: int,
        *,
        k: int = DEFAULT_K,
        overview_size: int = DEFAULT_OVERVIEW_SIZE,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if min(n_layers, n_heads, seq_len, k, overview_size) < 1:
            raise ValueError(
                "n_layers, n_heads, seq_len, k and overview_size must all be at least 1, got "
                f"{n_layers}, {n_heads}, {seq_len}, {k}, {overview_size}."
            )
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.seq_len = seq_len
        size = min(seq_len, overview_size)
        self.k = _fit_k(n_layers, n_heads, seq_len, size, k, max_bytes)
        self._edges = overview_edges(seq_len, size)
        self._block_sizes = np.diff(self._edges).astype(np.float32)
        heads = (n_layers, n_heads)
        self._overview = np.zeros((*heads, size, size), np.uint8)
        self._overview_scale = np.zeros(heads, np.float32)
        self._topk_index = np.zeros((*heads, seq_len, self.k), index_dtype(seq_len))
        self._topk_value = np.zeros((*heads, seq_len, self.k), np.uint8)
        self._stats = {name: np.zeros(heads, np.float32) for name in STAT_NAMES}
        self._added = np.zeros(n_layers, bool)

    def add_layer(self, layer: int, layer_attention: np.ndarray) -> None:
        """Reduce one layer's attention ``[n_heads, seq_len, seq_len]`` (float16 or float32)."""
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer must be in 0 .. {self.n_layers - 1}, got {layer}.")
        if self._added[layer]:
            raise ValueError(f"Layer {layer} was already added.")
        if check_layer_attention(layer_attention) != (self.n_heads, self.seq_len):
            raise ValueError(
                f"Layer attention must be shaped [{self.n_heads}, {self.seq_len}, "
                f"{self.seq_len}], got {list(layer_attention.shape)}."
            )
        stats = LayerStatsAccumulator(self.n_heads, self.seq_len)
        key_sums = np.zeros((self.n_heads, self.seq_len, len(self._block_sizes)), np.float32)
        for q0, block in query_blocks(layer_attention):
            end = q0 + block.shape[1]
            rows = slice(q0, end)
            stats.add(q0, block)
            # Causal attention is 0 past the block's last query: skip those keys (half the work).
            used = block[..., : _keys_used(block, end, self.k)]
            n_blocks = int(np.searchsorted(self._edges[:-1], used.shape[-1]))
            key_sums[:, rows, :n_blocks] = np.add.reduceat(used, self._edges[:n_blocks], axis=-1)
            if self.k:
                index, value = _top_k(used, self.k)
                self._topk_index[layer, :, rows] = index
                self._topk_value[layer, :, rows] = _quantise_unit(value)
        for name, value in stats.result().items():
            self._stats[name][layer] = value
        overview = np.add.reduceat(key_sums, self._edges[:-1], axis=1)
        overview /= self._block_sizes[:, None]
        scale = overview.max(axis=(1, 2))
        # A head whose map is all zero keeps scale 0 and codes 0.
        safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
        self._overview[layer] = _quantise_unit(overview / safe[:, None, None])
        self._overview_scale[layer] = scale
        self._added[layer] = True

    def build(self) -> CompactAttention:
        """The compact form, once every layer was added; the builder is done after this."""
        missing = np.flatnonzero(~self._added)
        if missing.size:
            raise ValueError(f"Layers {missing.tolist()} were never added; add every layer.")
        return CompactAttention(
            seq_len=self.seq_len,
            overview=self._overview,
            overview_scale=self._overview_scale,
            topk_index=self._topk_index,
            topk_value=self._topk_value,
            stats=self._stats,
        )


def compact_from_full(
    attention: np.ndarray,
    *,
    k: int = DEFAULT_K,
    overview_size: int = DEFAULT_OVERVIEW_SIZE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CompactAttention:
    """Compact form of full attention ``[n_layers, n_heads, seq_len, seq_len]``."""
    if not isinstance(attention, np.ndarray) or attention.ndim != 4:
        raise ValueError("Attention must be a numpy array shaped [n_layers, n_heads, seq_len, seq_len].")
    n_layers, n_heads, seq_len, _ = attention.shape
    builder = CompactBuilder(
        n_layers, n_heads, seq_len, k=k, overview_size=overview_size, max_bytes=max_bytes
    )
    for layer, layer_attention in enumerate(attention):
        builder.add_layer(layer, layer_attention)
    return builder.build()


def _arrays(compact: CompactAttention) -> dict[str, np.ndarray]:
    arrays = {
        "overview": compact.overview,
        "overview_scale": compact.overview_scale,
        "topk_index": compact.topk_index,
        "topk_value": compact.topk_value,
    }
    arrays.update({f"stats.{name}": compact.stats[name] for name in STAT_NAMES})
    return arrays


def nbytes(compact: CompactAttention) -> int:
    """Bytes held by the arrays; `encode` adds a header of at most `HEADER_RESERVE` bytes."""
    return sum(array.nbytes for array in _arrays(compact).values())


def encode(compact: CompactAttention) -> bytes:
    """Serialise to the binary format of the module docstring (no pickle)."""
    layout = _layout(compact.n_layers, compact.n_heads, compact.seq_len, compact.overview_size, compact.k)
    header = {
        "n_layers": compact.n_layers,
        "n_heads": compact.n_heads,
        "seq_len": compact.seq_len,
        "overview_size": compact.overview_size,
        "k": compact.k,
        "arrays": [{"name": name, "dtype": dtype.str, "shape": list(shape)} for name, dtype, shape in layout],
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    parts = [_PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)), header_bytes]
    arrays = _arrays(compact)
    for name, dtype, shape in layout:
        array = arrays[name]
        if array.shape != shape:
            raise ValueError(f"compact.{name} is shaped {list(array.shape)}, expected {shape}.")
        parts.append(np.ascontiguousarray(array, dtype=dtype).tobytes())
    return b"".join(parts)


def decode(blob: bytes) -> CompactAttention:
    """Read what `encode` wrote; raises ``ValueError`` for anything malformed or truncated."""
    if len(blob) < _PREFIX.size:
        raise ValueError("Not compact attention: the data is shorter than the format prefix.")
    magic, version, header_len = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("Not compact attention: wrong magic bytes.")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"Compact attention format version {version} is not supported; "
            f"this build reads version {FORMAT_VERSION}. Re-run the analysis."
        )
    start = _PREFIX.size + header_len
    if header_len > HEADER_RESERVE or start > len(blob):
        raise ValueError("Malformed compact attention: the header is truncated or too long.")
    try:
        header = json.loads(blob[_PREFIX.size : start].decode())
        dims = [header[key] for key in ("n_layers", "n_heads", "seq_len", "overview_size", "k")]
        arrays_meta = header["arrays"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"Malformed compact attention header: {exc}.") from exc
    if not all(type(d) is int for d in dims) or min(dims[:4]) < 1 or dims[4] < 0:
        raise ValueError(f"Malformed compact attention header: bad dimensions {dims}.")
    n_layers, n_heads, seq_len, overview_size, k = dims
    if overview_size > seq_len or k > seq_len:
        raise ValueError("Malformed compact attention header: overview_size or k > seq_len.")
    layout = _layout(n_layers, n_heads, seq_len, overview_size, k)
    expected = [{"name": name, "dtype": dtype.str, "shape": list(shape)} for name, dtype, shape in layout]
    if arrays_meta != expected:
        raise ValueError("Malformed compact attention header: unexpected array list.")
    total = start + sum(dtype.itemsize * int(np.prod(shape)) for _, dtype, shape in layout)
    if len(blob) != total:
        raise ValueError(
            f"Malformed compact attention: expected {total:,} bytes, got {len(blob):,} "
            "(truncated or with trailing data)."
        )
    arrays: dict[str, np.ndarray] = {}
    offset = start
    for name, dtype, shape in layout:
        count = int(np.prod(shape))
        raw = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
        arrays[name] = raw.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
        offset += count * dtype.itemsize
    if arrays["topk_index"].size and int(arrays["topk_index"].max()) >= seq_len:
        raise ValueError("Malformed compact attention: a top-k position is beyond seq_len.")
    return CompactAttention(
        seq_len=seq_len,
        overview=arrays["overview"],
        overview_scale=arrays["overview_scale"],
        topk_index=arrays["topk_index"],
        topk_value=arrays["topk_value"],
        stats={name: arrays[f"stats.{name}"] for name in STAT_NAMES},
    )


def overview_map(compact: CompactAttention, layer: int, head: int) -> np.ndarray:
    """One head's overview ``[S, S]`` float32, dequantised (query block, key block)."""
    scale = compact.overview_scale[layer, head]
    return compact.overview[layer, head].astype(np.float32) * (scale / np.float32(255))


def head_detail(compact: CompactAttention, layer: int, head: int) -> np.ndarray:
    """One head's attention ``[seq_len, seq_len]`` float32 rebuilt from its top-k.

    Entries outside each query's top-k are 0, so rows sum to at most 1; with ``k == 0`` the
    result is all zeros and the head should be recomputed for detail.
    """
    detail = np.zeros((compact.seq_len, compact.seq_len), np.float32)
    index = compact.topk_index[layer, head].astype(np.intp)
    values = compact.topk_value[layer, head].astype(np.float32) / np.float32(255)
    np.put_along_axis(detail, index, values, axis=-1)
    return detail
